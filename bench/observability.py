"""Benchmark: what observability costs in production mode (``bench/production.py``'s ``runs.wait``
on a new thread, one ``graphrun api`` and one ``graphrun worker`` on PostgreSQL and Redis).

Two variants, run alternately ``--rounds`` times so that drift in the machine's load hits both:

* ``off``: no trace exporter (``OTEL_TRACES_EXPORTER=none``), logs at WARNING, node I/O off. What stays on
  cannot be turned off: the Prometheus metrics, and spans made but not exported (they give log lines and
  responses their trace ids).
* ``on``: what the issue names: traces exported over OTLP/HTTP to a local receiver that answers 200 and
  drops them, JSON logs at INFO (a line per request and per run event), the metrics.
* ``on+node_io``: ``on`` with each node's input and output recorded (``GRAPHRUN_NODE_IO=summary``: two
  more log lines and two span events per node), for information.

It prints the throughput (runs/s) of each round and the median of each variant, and the cost:
1 - on/off. The target is a cost of at most 10 % at concurrency 16. Exit code 1 if a run failed.

    .venv/bin/python bench/observability.py                 # 3 rounds of 1000 runs each, concurrency 16
    .venv/bin/python bench/observability.py --rounds 5 --runs 2000 --json obs.json
"""

from __future__ import annotations

import argparse
import http.server
import json
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # bench/_common.py

from bench._cluster import free_port  # noqa: E402


class _Sink(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that takes every export and keeps nothing."""

    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        _Sink.received += 1
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


VARIANTS: dict[str, list[str]] = {
    "off": ["OTEL_TRACES_EXPORTER=none", "GRAPHRUN_LOG_LEVEL=WARNING", "GRAPHRUN_NODE_IO=off"],
    "on": ["GRAPHRUN_LOG_LEVEL=INFO", "GRAPHRUN_LOG_FORMAT=json", "GRAPHRUN_NODE_IO=off"],
    "on+node_io": ["GRAPHRUN_LOG_LEVEL=INFO", "GRAPHRUN_LOG_FORMAT=json", "GRAPHRUN_NODE_IO=summary"],
}


def _round(variant: str, args: argparse.Namespace, otlp: str, out: Path) -> float:
    env = list(VARIANTS[variant])
    if variant != "off":
        env.append(f"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT={otlp}")
    command = [
        sys.executable,
        str(HERE / "production.py"),
        "--skip-raw",
        "--no-two-requests",
        "--background-runs",
        "0",
        "--rounds",
        "1",
        "--concurrency",
        str(args.concurrency),
        "--runs",
        str(args.runs),
        "--json",
        str(out),
        *[arg for e in env for arg in ("--server-env", e)],
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"bench/production.py failed for {variant}")
    rows = json.loads(out.read_text())["rows"]
    throughput: float = rows[0]["throughput"]
    return throughput


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    otlp = f"http://127.0.0.1:{port}/v1/traces"
    results: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            names = list(VARIANTS)
            for variant in names if i % 2 == 0 else reversed(names):
                runs_s = _round(variant, args, otlp, Path(tmp) / f"{variant}-{i}.json")
                results[variant].append(runs_s)
                print(f"round {i + 1} {variant:>10}: {runs_s:7.1f} runs/s", flush=True)
    server.shutdown()
    median = {name: statistics.median(values) for name, values in results.items()}
    off, on = median["off"], median["on"]
    cost = 1 - on / off
    print("median runs/s at concurrency", args.concurrency, {k: round(v, 1) for k, v in median.items()})
    print(f"cost of observability: {cost:.1%} (target <= 10%: {'MET' if cost <= 0.10 else 'NOT MET'})")
    print(f"cost with node I/O recorded too: {1 - median['on+node_io'] / off:.1%}")
    print(f"OTLP exports received: {_Sink.received}")
    if args.json:
        args.json.write_text(json.dumps({"runs_s": results, "median": median, "cost": cost}))


if __name__ == "__main__":
    main()
