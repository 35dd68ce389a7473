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
import collections
import contextlib
import importlib.metadata
import importlib.util
import json
import math
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from langgraph_sdk.client import LangGraphClient

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))  # bench/_common.py

from bench._cluster import free_port  # noqa: E402
from bench._common import (  # noqa: E402
    BenchError,
    Process,
    environment,
    percentile,
    run_in_temp_dir,
    spawn,
    stop,
    wait_ok,
)

GRAPH_FILE = BENCH_DIR / "streaming" / "graph.py"
CONFIG_FILE = BENCH_DIR / "streaming" / "langgraph.json"
ASSISTANT_ID = "streaming"
STREAM_MODE: list[Any] = ["messages-tuple", "values"]
INPUT: dict[str, Any] = {"messages": [{"role": "human", "content": "go"}]}
EVENTS_PER_STREAM = 23  # metadata, values (input), 20 x messages, values (final)

STOP_GRACE_S = 15.0
CONNECT_TIMEOUT_S = 30.0
READ_TIMEOUT_S = 120.0  # longest silence within one stream (the server sends a heartbeat every 5 s)
SHOWN_PROBLEMS = 10


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


@dataclass
class Stream:
    """What one stream delivered. Times are seconds since its request was started."""

    events: int = 0
    first_event_s: float | None = None
    first_token_s: float | None = None
    last_event_s: float | None = None
    server_closed_s: float | None = None
    closed_s: float | None = None
    run_id: str | None = None
    metadata_ok: bool = False
    tokens: list[str] = field(default_factory=list)
    final: Any = None
    error: str | None = None
    unexpected: list[str] = field(default_factory=list)

    def lost(self, expected: Sequence[str]) -> int:
        """Events that never arrived: the metadata, tokens, the final values."""
        missing_tokens = max(len(expected) - len(self.tokens), 0)
        return (not self.metadata_ok) + missing_tokens + (not final_ok(self.final, "".join(expected)))

    def problems(self, expected: Sequence[str]) -> list[str]:
        """Everything wrong with this stream; empty when it is exactly what the graph streams."""
        found = [f"error: {self.error}"] if self.error else []
        if not self.metadata_ok:
            found.append("no metadata event first")
        if self.tokens != list(expected):
            found.append(f"tokens {self.tokens!r} (want {len(expected)})")
        if not final_ok(self.final, "".join(expected)):
            found.append(f"final values {str(self.final)[:200]}")
        if self.events != EVENTS_PER_STREAM:
            found.append(f"{self.events} events (want {EVENTS_PER_STREAM})")
        return found + [f"unexpected event {name}" for name in self.unexpected]


def final_ok(values: Any, text: str) -> bool:
    """The last ``values`` event holds the human input and the model's whole answer."""
    if not isinstance(values, dict) or not isinstance(values.get("messages"), list):
        return False
    messages = values["messages"]
    return len(messages) == 2 and messages[-1].get("type") == "ai" and messages[-1].get("content") == text


def record(stream: Stream, event: str, data: Any, now: float) -> None:
    """Fold one SSE event into ``stream``."""
    stream.events += 1
    stream.last_event_s = now
    if event == "metadata":
        stream.first_event_s = stream.first_event_s or now
        stream.metadata_ok = stream.events == 1 and isinstance(data, dict) and "run_id" in data
        stream.run_id = str(data["run_id"]) if stream.metadata_ok else None
    elif event == "messages":
        if stream.first_token_s is None:
            stream.first_token_s = now
        stream.tokens.append(token_of(data))
    elif event == "values":
        stream.final = data
    else:
        stream.unexpected.append(f"{event}: {str(data)[:200]}")


def token_of(data: Any) -> str:
    """The text of a `messages` event's `[chunk, metadata]`; a placeholder when it is not a model chunk."""
    chunk = data[0] if isinstance(data, list) and data else None
    if (
        isinstance(chunk, dict)
        and chunk.get("type") == "AIMessageChunk"
        and isinstance(chunk.get("content"), str)
    ):
        return str(chunk["content"])
    return f"(not a token: {str(data)[:100]})"


@dataclass
class OpenStreams:
    """Streams between their first event and their close: how many now, and the most at once."""

    now: int = 0
    peak: int = 0

    def opened(self) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)


async def run_stream(client: Client, n: int, thread_id: str, open_streams: OpenStreams) -> Stream:
    """Stream one run on ``thread_id`` and record every event; failures are recorded, not raised.

    The server ends a stream by closing it (no ``end`` event); the SDK then asks for the run's status
    before its iterator ends. ``server_closed_s`` is when that request went out.
    """
    stream = Stream()
    start = time.perf_counter()
    parts = client.sdk(n).runs.stream(thread_id, ASSISTANT_ID, input=INPUT, stream_mode=STREAM_MODE)
    try:
        async for part in parts:
            if stream.events == 0:
                open_streams.opened()
            record(stream, part.event, part.data, time.perf_counter() - start)
    except Exception as exc:  # any failure is this stream's result; it is counted and fails the bench
        stream.error = f"{type(exc).__name__}: {exc}"
    stream.closed_s = time.perf_counter() - start
    if stream.events:
        open_streams.now -= 1
    checked = client.requests.status_checks.pop(f"/threads/{thread_id}/runs/{stream.run_id}", None)
    stream.server_closed_s = None if checked is None else checked - start
    return stream


# --- the client -----------------------------------------------------------------------------------------


class Requests:
    """An httpx request hook that counts the SDK's requests by kind (a reconnect is a stream that dropped)
    and remembers when each run-status check went out (``time.perf_counter()``, by URL path)."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.status_checks: dict[str, float] = {}

    async def __call__(self, request: httpx.Request) -> None:
        path = request.url.path
        if request.method == "POST" and path.endswith("/runs/stream"):
            self.counts["stream"] += 1
        elif request.method == "GET" and path.endswith("/stream"):
            self.counts["reconnect"] += 1
        elif request.method == "POST" and path == "/threads":
            self.counts["threads.create"] += 1
        elif request.method == "GET" and "/runs/" in path:
            self.counts["status check"] += 1
            self.status_checks[path] = time.perf_counter()
        else:
            self.counts[f"{request.method} other"] += 1


class Client:
    """SDK clients that share the load of the streams, and the hook that watches their requests.

    One ``httpx.AsyncClient`` pool scans all of its connections several times per request and response
    (httpcore 1.0), so a single pool of 500 connections costs the client more CPU than the server uses;
    ``pool_size`` connections per client keeps that cost small.
    """

    def __init__(self, url: str, connections: int, pool_size: int) -> None:
        self.requests = Requests()
        sizes = [min(pool_size, connections - start) for start in range(0, connections, pool_size)]
        self.pool = [self._sdk(url, size) for size in sizes]

    def _sdk(self, url: str, connections: int) -> LangGraphClient:
        """An SDK client whose pool really holds ``connections`` streams at once.

        ``get_client`` gives httpx's default limits (100 connections, 5 s pool timeout): stream 101 would
        wait for a free connection and fail after 5 s. No retries either: a refused connection is an error
        here, not a silent second try.
        """
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        http = httpx.AsyncClient(
            base_url=url,
            transport=httpx.AsyncHTTPTransport(limits=limits, retries=0),
            timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S, pool=CONNECT_TIMEOUT_S),
            event_hooks={"request": [self.requests]},
        )
        return LangGraphClient(http)

    def sdk(self, n: int) -> LangGraphClient:
        """The SDK client for stream number ``n`` (round robin)."""
        return self.pool[n % len(self.pool)]

    async def aclose(self) -> None:
        for sdk in self.pool:
            await sdk.aclose()


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


def spread(values: Sequence[float | None], scale: float = 1000.0) -> dict[str, float | None]:
    """p50 and p99 of the values that exist, times ``scale`` (seconds -> ms by default)."""
    present = [v * scale for v in values if v is not None]
    if not present:
        return {"p50": None, "p99": None}
    return {"p50": percentile(present, 50), "p99": percentile(present, 99)}


def summarize_sequential(streams: Sequence[Stream]) -> dict[str, Any]:
    """Latencies in ms (p50, p99) and one stream's events per second: its 23 events over the time to its
    last event, for the median stream (p50) and the slow one (p99)."""
    last = spread([s.last_event_s for s in streams])
    return {
        "streams": len(streams),
        "first_event_ms": spread([s.first_event_s for s in streams]),
        "first_token_ms": spread([s.first_token_s for s in streams]),
        "last_event_ms": last,
        "server_closed_ms": spread([s.server_closed_s for s in streams]),
        "closed_ms": spread([s.closed_s for s in streams]),
        "events_per_s": {k: EVENTS_PER_STREAM * 1000 / v if v else None for k, v in last.items()},
    }


def summarize_concurrent(
    streams: Sequence[Stream], wall_s: float, peak_open: int, expected: Sequence[str]
) -> dict[str, Any]:
    """Wall time (s), total events/s, latencies under load (ms) and every failure, counted."""
    failed = [(i, p) for i, s in enumerate(streams) if (p := s.problems(expected))]
    return {
        "streams": len(streams),
        "wall_s": wall_s,
        "events": sum(s.events for s in streams),
        "events_per_s": sum(s.events for s in streams) / wall_s,
        "first_event_ms": spread([s.first_event_s for s in streams]),
        "first_token_ms": spread([s.first_token_s for s in streams]),
        "last_event_ms": spread([s.last_event_s for s in streams]),
        "server_closed_ms": spread([s.server_closed_s for s in streams]),
        "closed_ms": spread([s.closed_s for s in streams]),
        "peak_open": peak_open,
        "errors": sum(1 for s in streams if s.error),
        "error_kinds": dict(collections.Counter(s.error.partition(":")[0] for s in streams if s.error)),
        "lost_events": sum(s.lost(expected) for s in streams),
        "failed_streams": len(failed),
        "failures": [f"stream {i}: {'; '.join(p)}" for i, p in failed[:SHOWN_PROBLEMS]],
    }


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


def reconnects(phase: dict[str, Any]) -> int:
    count: int = phase["requests"].get("reconnect", 0)
    return count


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


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def print_header(args: argparse.Namespace, tokens: int) -> None:
    setting = (
        f"GRAPHRUN_WORKER_CONCURRENCY={args.worker_concurrency} (set by this script)"
        if not args.url
        else "GRAPHRUN_WORKER_CONCURRENCY: whatever that server was started with (default 32)"
    )
    print(f"{tokens} tokens per stream, stream_mode={STREAM_MODE}, {EVENTS_PER_STREAM} events per stream")
    print(f"server: {args.url or 'graphrun dev started by this script'}; {setting}", flush=True)


LABEL_WIDTH = 46


def print_spreads(rows: Sequence[tuple[str, dict[str, float | None]]]) -> None:
    """Rows of p50 / p99 under a small header."""
    print(f"  {'':<{LABEL_WIDTH}}{'p50':>10}{'p99':>10}")
    for label, values in rows:
        print(f"  {label:<{LABEL_WIDTH}}{fmt(values['p50']):>10}{fmt(values['p99']):>10}")


def print_value(label: str, value: object) -> None:
    print(f"  {label:<{LABEL_WIDTH}}{value!s:>10}")


def print_sequential(args: argparse.Namespace, seq: dict[str, Any]) -> None:
    print(
        f"\nsequential: {seq['streams']} streams one at a time, each on a new thread "
        f"(threads.create not timed), after {args.warmup} untimed warm-up streams"
    )
    print_spreads(
        [
            ("time to first event (metadata), ms", seq["first_event_ms"]),
            ("time to first token (messages), ms", seq["first_token_ms"]),
            ("time to last event (final values), ms", seq["last_event_ms"]),
            ("time to stream closed by the server, ms", seq["server_closed_ms"]),
            ("time to SDK iterator done (status GET), ms", seq["closed_ms"]),
            (f"events/s of one stream ({EVENTS_PER_STREAM} / time to last)", seq["events_per_s"]),
        ]
    )
    print(f"  requests: {seq['requests']}", flush=True)


def print_concurrent(args: argparse.Namespace, conc: dict[str, Any]) -> None:
    clients = math.ceil(args.concurrent / args.pool_size)
    print(
        f"\nconcurrent: {conc['streams']} streams released at once against one server process "
        f"({clients} SDK clients of up to {args.pool_size} connections each)"
    )
    print_value("wall time, s", f"{conc['wall_s']:.2f}")
    print_value("events received", conc["events"])
    print_value("events/s, all streams together", f"{conc['events_per_s']:.1f}")
    print_spreads(
        [
            ("time to first event (metadata), ms", conc["first_event_ms"]),
            ("time to first token (messages), ms", conc["first_token_ms"]),
            ("time to last event (final values), ms", conc["last_event_ms"]),
            ("time to stream closed by the server, ms", conc["server_closed_ms"]),
            ("time to SDK iterator done (status GET), ms", conc["closed_ms"]),
        ]
    )
    print_value("peak streams open at once", conc["peak_open"])
    print_value("errors", conc["errors"])
    if conc["error_kinds"]:
        print(f"  errors by kind: {conc['error_kinds']}")
    print_value("lost events", conc["lost_events"])
    print_value("streams not exactly as expected", conc["failed_streams"])
    print_value("SDK reconnects", reconnects(conc))
    print(f"  requests: {conc['requests']}")
    for line in conc["failures"]:
        print(f"  {line}", file=sys.stderr)


def print_process(pid: int | None, conc: dict[str, Any], process: dict[str, dict[str, float | None]]) -> None:
    """Server memory (MB) after each phase and its peak; CPU seconds of server and client under load."""
    before, after = process["after_sequential"], process["after_concurrent"]
    print()
    if pid is None:
        print("server memory and CPU: not measured (--url: the server's pid is not known)")
    else:
        rss = ", ".join(f"{phase.replace('_', ' ')} {fmt(p['rss_mb'], 1)}" for phase, p in process.items())
        print(f"server memory (pid {pid}), MB: RSS {rss}; peak RSS (VmHWM) {fmt(after['peak_rss_mb'], 1)}")
    used = [
        f"{who} {(after[f'{who}_cpu_s'] or 0.0) - (before[f'{who}_cpu_s'] or 0.0):.1f}"
        for who in ("server", "client")
        if pid is not None or who == "client"
    ]
    wall = f"wall {conc['wall_s']:.1f} s x {os.cpu_count()} CPUs"
    print(f"CPU time during the concurrent phase, s: {', '.join(used)} ({wall})", flush=True)


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
