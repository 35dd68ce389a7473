"""What ``bench/streams.py`` reports: the spreads of each phase's times (``summarize_*``) and the
printed tables, the server's memory among them."""

from __future__ import annotations

import argparse
import collections
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

from bench._common import percentile
from bench._streams_client import EVENTS_PER_STREAM, STREAM_MODE, Stream

SHOWN_PROBLEMS = 10


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


def reconnects(phase: dict[str, Any]) -> int:
    count: int = phase["requests"].get("reconnect", 0)
    return count
