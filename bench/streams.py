"""Benchmark: token streaming through the server, one stream at a time and hundreds at once.

The graph (``bench/streaming/graph.py``) has one node whose fake chat model streams exactly 20 tokens with
no delay. Through ``langgraph_sdk`` over HTTP, with ``stream_mode=["messages-tuple", "values"]``, it measures

* one stream at a time (``--streams``, each on a new thread; ``threads.create`` is not timed): time to the
  first event (``metadata``), to the first token (first ``messages`` event), to the last event, and the
  events per second of one stream;
* ``--concurrent`` streams started together against the same server: wall time, events per second in
  total, time to first token under that load, and every error or lost event;
* the server process's memory: RSS when idle and after each phase, and its peak (``VmHWM``).

Every stream is checked: metadata first, the 20 tokens in order, the final ``values`` holding the whole
answer, nothing else, no reconnect. Any failure makes the exit code 1, so a broken server cannot report
numbers. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))  # bench/_common.py

from bench._cluster import free_port  # noqa: E402
from bench._common import (  # noqa: E402
    BenchError,
    Process,
    environment,
    run_in_temp_dir,
    spawn,
    stop,
    wait_ok,
)
from bench._streams_client import Client, OpenStreams, Stream, run_stream  # noqa: E402
from bench._streams_report import (  # noqa: E402
    print_concurrent,
    print_header,
    print_process,
    print_sequential,
    reconnects,
    summarize_concurrent,
    summarize_sequential,
)

GRAPH_FILE = BENCH_DIR / "streaming" / "graph.py"
CONFIG_FILE = BENCH_DIR / "streaming" / "langgraph.json"
STOP_GRACE_S = 15.0


def load_tokens() -> tuple[str, ...]:
    """The tokens the graph's model streams, read from ``bench/streaming/graph.py`` itself."""
    spec = importlib.util.spec_from_file_location("bench_streaming_graph", GRAPH_FILE)
    if spec is None or spec.loader is None:
        raise BenchError(f"cannot import {GRAPH_FILE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # LangGraph resolves the state's annotations through it
    spec.loader.exec_module(module)
    return tuple(str(token) for token in module.TOKENS)


# --- one stream -----------------------------------------------------------------------------------------

# --- the two phases -------------------------------------------------------------------------------------


async def new_thread(client: Client) -> str:
    thread = await client.sdk(0).threads.create()
    return str(thread["thread_id"])


async def sequential(client: Client, count: int, expected: Sequence[str]) -> list[Stream]:
    """``count`` streams one after the other, each on a new thread; the first wrong one stops the bench."""
    done: list[Stream] = []
    for _ in range(count):
        stream = await run_stream(client, 0, await new_thread(client), OpenStreams())
        if problems := stream.problems(expected):
            raise BenchError(f"sequential stream {len(done) + 1}: {'; '.join(problems)}")
        done.append(stream)
    return done


async def concurrent(client: Client, count: int, max_seconds: float) -> tuple[list[Stream], float, int]:
    """``count`` streams released at once, each on its own thread (made beforehand, not timed).

    Returns every stream, the wall time from release to the last close (s) and the peak number of streams
    open at once (first event received, not yet closed).
    """
    threads = [await new_thread(client) for _ in range(count)]
    go = asyncio.Event()
    open_streams = OpenStreams()

    async def one(n: int, thread_id: str) -> Stream:
        await go.wait()
        return await run_stream(client, n, thread_id, open_streams)

    tasks = [asyncio.create_task(one(n, t), name=f"bench-stream-{n}") for n, t in enumerate(threads)]
    await asyncio.sleep(0)  # every task is now waiting on `go`
    begin = time.perf_counter()
    go.set()
    finished, pending = await asyncio.wait(tasks, timeout=max_seconds)
    wall = time.perf_counter() - begin
    for task in pending:
        task.cancel()
    late = f"not finished after {max_seconds:.0f} s"
    results = [task.result() if task in finished else Stream(error=late) for task in tasks]
    return results, wall, open_streams.peak


# --- summaries ------------------------------------------------------------------------------------------

# --- the server -----------------------------------------------------------------------------------------


def snapshot(pid: int | None) -> dict[str, float | None]:
    """The server's RSS and peak RSS (``VmRSS``, ``VmHWM``; MB) and CPU time (user + system; s), read
    from ``/proc/<pid>``, with this client process's CPU time (s). Server fields are None without a pid."""
    found: dict[str, float | None] = {"rss_mb": None, "peak_rss_mb": None, "server_cpu_s": None}
    found["client_cpu_s"] = time.process_time()
    if pid is None:
        return found
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            key = "rss_mb" if name == "VmRSS" else "peak_rss_mb"
            found[key] = int(value.split()[0]) / 1024  # the kernel reports kB
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()  # fields 3.. of proc(5)
    found["server_cpu_s"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


@contextlib.asynccontextmanager
async def own_server(data_dir: Path, worker_concurrency: int) -> AsyncIterator[tuple[str, Process]]:
    """``graphrun dev`` started by the bench: its own data dir, our port, output kept for error reports;
    stopped on exit (SIGTERM, then SIGKILL if it is still alive after 15 s). Yields its URL and process."""
    port = free_port()
    env = {
        **os.environ,
        "GRAPHRUN_DATA_DIR": str(data_dir),
        "GRAPHRUN_LOG_LEVEL": "WARNING",
        "GRAPHRUN_WORKER_CONCURRENCY": str(worker_concurrency),
        "PYTHONUNBUFFERED": "1",
    }
    server = await spawn("server", ["dev", "--config", str(CONFIG_FILE), "--port", str(port)], env)
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_ok(url, server)
        yield url, server
    finally:
        await stop([server], STOP_GRACE_S)


# --- the run --------------------------------------------------------------------------------------------


async def bench(
    args: argparse.Namespace, url: str, pid: int | None, expected: Sequence[str]
) -> dict[str, Any]:
    """Warm up, then both phases against ``url``, reading the server's memory and CPU around them."""
    client = Client(url, args.concurrent, args.pool_size)
    process = {"idle": snapshot(pid)}
    try:
        await sequential(client, args.warmup, expected)
        client.requests.counts.clear()
        seq = summarize_sequential(await sequential(client, args.streams, expected))
        seq["requests"] = dict(client.requests.counts)
        process["after_sequential"] = snapshot(pid)
        print_sequential(args, seq)
        client.requests.counts.clear()
        streams, wall, peak = await concurrent(client, args.concurrent, args.max_seconds)
        conc = summarize_concurrent(streams, wall, peak, expected)
        conc["requests"] = dict(client.requests.counts)
        process["after_concurrent"] = snapshot(pid)
    except (httpx.HTTPError, OSError) as exc:
        raise BenchError(f"request to {url} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        await client.aclose()
    print_concurrent(args, conc)
    print_process(pid, conc, process)
    return {"sequential": seq, "concurrent": conc, "process": process}


def failed(report: dict[str, Any]) -> bool:
    """Whether anything was lost: an error, a lost event or a wrong stream under load, or a reconnect.

    (A wrong stream in the sequential phase has already stopped the bench.)"""
    conc = report["concurrent"]
    lost = conc["errors"] or conc["lost_events"] or conc["failed_streams"]
    return bool(lost or reconnects(conc) or reconnects(report["sequential"]))


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Bench ``--url``, or a server of our own in ``workdir`` that is always stopped afterwards."""
    expected = load_tokens()
    print_header(args, len(expected))
    if args.url:
        return await bench(args, args.url.rstrip("/"), None, expected)
    async with own_server(workdir, args.worker_concurrency) as (url, server):
        try:
            report = await bench(args, url, server.proc.pid, expected)
        except BenchError as exc:
            raise BenchError(f"{exc}\nlast server output:\n{server.output()}") from exc
    report["server_output_lines"] = server.lines
    report["server_output_tail"] = list(server.tail)
    print(f"server output during the bench (log level WARNING): {server.lines} lines")
    if server.lines and failed(report):
        print(f"last server output:\n{server.output()}", file=sys.stderr)
    return report


# --- reporting ------------------------------------------------------------------------------------------

# --- entry point ----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options; the defaults finish in about a minute on 2 cores."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--streams", type=int, default=200, help="sequential streams (default 200)")
    parser.add_argument("--concurrent", type=int, default=500, help="streams at once (default 500)")
    parser.add_argument(
        "--pool-size", type=int, default=50, help="connections per SDK client (default 50, see README)"
    )
    parser.add_argument("--warmup", type=int, default=20, help="untimed streams first (default 20)")
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        help="GRAPHRUN_WORKER_CONCURRENCY of the server this script starts (default: --concurrent)",
    )
    parser.add_argument(
        "--max-seconds", type=float, default=300.0, help="give up on the concurrent phase after this (s)"
    )
    parser.add_argument("--url", help="bench this running server instead of starting one")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = parser.parse_args(argv)
    if min(args.streams, args.concurrent, args.pool_size) < 1 or args.warmup < 0:
        parser.error("--streams, --concurrent and --pool-size must be at least 1, --warmup at least 0")
    if args.url and args.worker_concurrency is not None:
        parser.error("--worker-concurrency applies only to the server this script starts, not --url")
    if args.worker_concurrency is None:
        args.worker_concurrency = args.concurrent
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """0 when every stream was exactly right; 1 when any was not, or the bench could not run."""
    args = parse_args(argv)
    report = run_in_temp_dir(lambda workdir: run(args, workdir), "graphrun-bench-streams-")
    if report is None:
        return 1
    if args.json:
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        args.json.write_text(
            json.dumps(
                {
                    "settings": settings,
                    "environment": environment(("langgraph", "langgraph-sdk", "langchain-core")),
                    **report,
                },
                indent=2,
            )
        )
    if failed(report):
        print(
            "\nFAILED: streams errored, lost events or reconnected (see above)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
