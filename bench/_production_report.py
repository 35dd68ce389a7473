"""What ``bench/production.py`` reports: part 2's result (``Background``), graphrun's throughput over
the raw baseline's per round, the rows, the CPU each process used, the verdict against the target and the
JSON report."""

from __future__ import annotations

import argparse
import json
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench._common import (
    Row,
)

RAW = "raw ainvoke+AsyncPostgresSaver"
RAW_SYNC = "raw ainvoke+AsyncPostgresSaver sync"
SERVER = "graphrun runs.wait, new thread"
TARGET_RATIO = 0.8
SHOWN_OUTPUT_LINES = 10  # per process, at the end
NOISE_SHARE = 0.10  # of the CPUs, used by other processes during a level, above which it is marked


@dataclass(frozen=True)
class Background:
    """Part 2: background runs drained by the workers. Times in seconds, latencies in milliseconds."""

    runs: int
    workers: int
    create_concurrency: int
    create_seconds: float
    window_seconds: float
    throughput: float
    queue_wait_p50_ms: float
    queue_wait_p99_ms: float
    queue_wait_max_ms: float
    execution_p50_ms: float
    execution_p99_ms: float
    end_to_end_p50_ms: float
    end_to_end_p99_ms: float
    retried_runs: int  # attempted more than once (a lease lost, a worker gone)
    restarted_runs: int  # executed from their input more than once
    cpu: dict[str, float] = field(default_factory=dict)


# --- pure helpers ---------------------------------------------------------------------------------------


def round_ratios(rows: Sequence[Row], raw_variant: str) -> dict[int, list[float]]:
    """graphrun/raw throughput of each round, at every concurrency level where both were measured in it
    (the two measured back to back, so that both met the machine in the same state)."""
    found = {(r.variant, r.concurrency, r.round): r.throughput for r in rows}
    by_level: dict[int, list[float]] = {}
    for variant, level, rnd in found:
        if variant == SERVER and (raw_variant, level, rnd) in found:
            ratio = found[(SERVER, level, rnd)] / found[(raw_variant, level, rnd)]
            by_level.setdefault(level, []).append(ratio)
    return by_level


def ratios(rows: Sequence[Row], raw_variant: str) -> dict[int, float]:
    """The median of each level's per-round ratios."""
    return {level: statistics.median(found) for level, found in round_ratios(rows, raw_variant).items()}


# --- reporting ------------------------------------------------------------------------------------------

LEAD = "{:<36}{:>6}{:>6}"  # variant, round, concurrency
HEADER = LEAD.format("variant", "round", "conc") + "{:>7}{:>10}{:>10}{:>9}{:>9}".format(
    "runs", "seconds", "runs/s", "p50 ms", "p99 ms"
)
CPU_KEYS = ("bench", "api", "worker1", "postgres", "redis", "other", "machine")


def busy_elsewhere(cpu: Mapping[str, float], seconds: float) -> bool:
    """Whether processes outside the benchmark used more than ``NOISE_SHARE`` of the machine meanwhile."""
    return cpu.get("other", 0.0) > NOISE_SHARE * seconds * (os.cpu_count() or 1)


def print_row(row: Row) -> None:
    """One table line; ``(time cap)`` marks a level stopped by ``--max-seconds`` before all runs were done,
    ``(machine busy)`` one during which other processes used more than 10 % of the CPUs."""
    mark = "  (time cap)" if row.capped else ""
    if busy_elsewhere(row.cpu, row.seconds):
        mark += f"  (machine busy: {row.cpu['other']:.1f} CPU-s elsewhere)"
    lead = LEAD.format(row.variant, row.round, row.concurrency)
    print(
        f"{lead}{row.runs:>7}{row.seconds:>10.2f}{row.throughput:>10.1f}{row.p50_ms:>9.2f}{row.p99_ms:>9.2f}{mark}",
        flush=True,
    )


def print_cpu(rows: Sequence[Row]) -> None:
    """CPU seconds each process used per level, beside the wall time x CPUs available."""
    print("\nCPU seconds used during each level (wall x CPUs is what the machine had):")
    columns = "".join(f"{k:>10}" for k in CPU_KEYS)
    print(LEAD.format("variant", "round", "conc") + columns + f"{'wall x cpus':>13}")
    for r in rows:
        cells = "".join(f"{r.cpu[k]:>10.2f}" if k in r.cpu else f"{'-':>10}" for k in CPU_KEYS)
        lead = LEAD.format(r.variant, r.round, r.concurrency)
        print(f"{lead}{cells}{r.seconds * (os.cpu_count() or 1):>13.2f}")


def print_background(b: Background) -> None:
    """Part 2's figures."""

    def line(label: str, *values: float) -> None:
        print(f"  {label:<47}" + "".join(f"{v:>10.1f}" for v in values))

    print(f"\npart 2: {b.runs} background runs (runs.create, a new thread each), {b.workers} workers")
    line(f"creates sent (client, {b.create_concurrency} in flight), s", b.create_seconds)
    line("first run created -> last run finished, s", b.window_seconds)
    line("runs/s", b.throughput)
    print(f"  {'':<47}{'p50':>10}{'p99':>10}")
    line("queue wait (created -> input checkpoint), ms", b.queue_wait_p50_ms, b.queue_wait_p99_ms)
    line("execution (input checkpoint -> finished), ms", b.execution_p50_ms, b.execution_p99_ms)
    line("end to end (created -> finished), ms", b.end_to_end_p50_ms, b.end_to_end_p99_ms)
    line("queue wait max, ms", b.queue_wait_max_ms)
    print(
        f"  runs attempted more than once: {b.retried_runs}; executed from the start more than once: "
        f"{b.restarted_runs}"
    )
    if busy_elsewhere(b.cpu, b.window_seconds):
        print(f"  (machine busy: {b.cpu['other']:.1f} CPU-s used elsewhere during the window)")
    print("  CPU s during the window: " + ", ".join(f"{k} {v:.1f}" for k, v in b.cpu.items()), flush=True)


def print_server_output(output: Mapping[str, Sequence[str]]) -> None:
    """What the graphrun processes logged (level WARNING and above): a count each, then the lines."""
    print(
        "graphrun output lines (log level WARNING): " + ", ".join(f"{k} {len(v)}" for k, v in output.items())
    )
    for name, lines in output.items():
        for line in lines[:SHOWN_OUTPUT_LINES]:
            print(f"  {name}: {line[:400]}")


def verdict(rows: Sequence[Row]) -> dict[str, Any]:
    """graphrun/raw throughput at every level (headline: raw with LangGraph's default durability) and
    whether every headline ratio meets the target."""
    headline = ratios(rows, RAW)
    return {
        "ratios": {str(k): v for k, v in headline.items()},
        "round_ratios": {str(k): v for k, v in round_ratios(rows, RAW).items()},
        "ratios_vs_raw_sync": {str(k): v for k, v in ratios(rows, RAW_SYNC).items()},
        "target_ratio": TARGET_RATIO,
        "target_met": (min(headline.values()) >= TARGET_RATIO) if headline else None,
    }


def print_verdict(summary: dict[str, Any]) -> None:
    print()
    for level, ratio in summary["ratios"].items():
        each = ", ".join(f"{r:.2f}" for r in summary["round_ratios"][level])
        print(f"ratio graphrun/raw throughput at concurrency {level}: {ratio:.2f} (median of rounds: {each})")
    for level, ratio in summary["ratios_vs_raw_sync"].items():
        print(f"ratio graphrun/raw(durability=sync) at concurrency {level}: {ratio:.2f} (information)")
    met = summary["target_met"]
    state = "UNKNOWN" if met is None else ("MET" if met else "NOT MET")
    print(f"target (graphrun / raw >= {TARGET_RATIO} at every level): {state}")


def write_json(
    path: Path,
    env: dict[str, Any],
    args: argparse.Namespace,
    rows: Sequence[Row],
    background: Background | None,
    extra: dict[str, Any],
) -> None:
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "json"}
    report = {
        "settings": settings,
        "environment": env,
        "rows": [asdict(r) for r in rows],
        "background": asdict(background) if background else None,
        **extra,
    }
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
