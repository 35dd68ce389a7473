"""Chaos drills: faults injected into the production topology under steady load, and what clients saw.

The topology is the one ``docs/deploy.md`` describes, on servers of the drill's own so that it may stop
them: two ``graphrun api`` and two ``graphrun worker`` processes, a PostgreSQL cluster (``initdb``/``pg_ctl``,
on a free port) and a ``redis-server``. The graph (``bench/drills/graph.py``) calls a chat model wrapped by
``graphrun.testing.FaultyChatModel`` whose faults file the drill rewrites. Clients (the official SDK,
``--concurrency`` of them, alternating between the two APIs) each create a thread and a background run,
join it and read the thread back, over and over. Each drill keeps that load up, then:

* ``model_outage``: every model call fails 503 for ``--fault-s``; breakers open, runs fail fast; then the
  model comes back;
* ``rate_limit_storm``: half the calls answer 429 with ``Retry-After: 1`` for ``--fault-s``;
* ``worker_kill``: SIGKILL one worker, start it again after 5 s (as an orchestrator would);
* ``postgres_restart``: ``pg_ctl stop -m fast``, 3 s down, start again;
* ``redis_outage``: Redis killed, 8 s down, started again (empty).

(A little over 400 lines: the drills, their load and their one command line read together; the topology is in
``bench/_cluster.py`` and the history checks in ``bench/_history.py``.)

Per drill it prints: runs sent, succeeded, failed with a clear error (the run ended ``error``/``timeout``
with a message, or its creation was refused with a 4xx/503 and a message), lost (created but never
finished, or finished without its answer: must be 0), duplicated (an answer written twice: must be 0),
unclear failures (any other answer, e.g. a 500), p99 latency of the runs started during the fault, and the
time to recover (from the fault's end to the first run started after it that succeeded). Every other run
is created ``stream_resumable``, its stream read, cut after the first event and resumed with
``Last-Event-ID``. After each drill the history checker (``bench/_history.py``) reads the ``runs`` table,
each thread's checkpoints and the graph's record of node executions, and reports invariant violations
(must be 0): a run without exactly one final status, a completed node run again, a message twice in a
thread, a resume that skipped, repeated or reordered events. Exit code 1 when a run was lost or
duplicated, an answer was unclear or an invariant was violated.

    .venv/bin/python bench/chaos.py                       # every drill, about 4 minutes
    .venv/bin/python bench/chaos.py --drills worker_kill,redis_outage --concurrency 16
    .venv/bin/python bench/chaos.py --drills worker_kill --concurrency 2 --max-runs 20 --pace-s 0.5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from langgraph_sdk.client import LangGraphClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # bench/_cluster.py, bench/_servers.py

from bench._cluster import Cluster, Procs, production_env  # noqa: E402
from bench._history import AcceptedRun, Resume, check, event_ids, gather, resumed  # noqa: E402
from bench._servers import LocalPostgres, LocalRedis  # noqa: E402

CONFIG = ROOT / "bench" / "drills" / "langgraph.json"
FINISHED = ("success", "error", "timeout", "interrupted")
STEADY = {"latency_ms": [20, 80]}  # the model's latency when nothing is wrong
DRILLS = ("model_outage", "rate_limit_storm", "worker_kill", "postgres_restart", "redis_outage")


@dataclass
class Outcome:
    started: float
    ended: float
    result: str  # success, failed_clear, refused_clear, unclear, lost, duplicated
    detail: str = ""
    gaps: list[float] = field(default_factory=list)
    run: AcceptedRun | None = None  # None: the API did not accept it
    messages: list[dict[str, Any]] = field(default_factory=list)  # the thread's state at the end
    resume: Resume | None = None


@dataclass
class Report:
    drill: str
    outcomes: list[Outcome]
    fault_start: float
    fault_end: float
    violations: dict[str, list[str]] = field(default_factory=dict)
    checked: dict[str, int] = field(default_factory=dict)  # what the history checker looked at

    def count(self, *results: str) -> int:
        return sum(1 for o in self.outcomes if o.result in results)

    def during(self) -> list[Outcome]:
        return [o for o in self.outcomes if self.fault_start <= o.started <= self.fault_end]

    def p99_during_s(self) -> float | None:
        latencies = sorted(o.ended - o.started for o in self.during() if o.result != "lost")
        if not latencies:
            return None
        return latencies[min(len(latencies) - 1, math.ceil(0.99 * len(latencies)) - 1)]

    def recovery_s(self) -> float | None:
        after = [o for o in self.outcomes if o.started >= self.fault_end and o.result == "success"]
        return min(o.ended for o in after) - self.fault_end if after else None

    def summary(self) -> dict[str, Any]:
        retried = [g for o in self.outcomes for g in o.gaps]
        details = Counter(o.detail for o in self.outcomes if o.result not in ("success",))
        p99, recovery = self.p99_during_s(), self.recovery_s()
        return {
            "drill": self.drill,
            "sent": len(self.outcomes),
            "succeeded": self.count("success"),
            "failed_clear": self.count("failed_clear", "refused_clear"),
            "lost": self.count("lost"),
            "duplicated": self.count("duplicated"),
            "unclear": self.count("unclear"),
            "fault_s": round(self.fault_end - self.fault_start, 2),
            "p99_during_fault_s": None if p99 is None else round(p99, 3),
            "recovery_s": None if recovery is None else round(recovery, 2),
            "retries": len(retried),
            "shortest_retry_wait_s": round(min(retried), 3) if retried else None,
            "errors": dict(details.most_common(6)),
            "violations": sum(len(v) for v in self.violations.values()),
            "violations_by_check": {name: found[:5] for name, found in self.violations.items() if found},
            "checked": self.checked,
        }


def _describe(exc: BaseException) -> tuple[str, str]:
    """(result, detail) of a refused request: clear when the server said what was wrong."""
    if isinstance(exc, httpx.HTTPStatusError):
        code = exc.response.status_code
        try:
            message = str(exc.response.json().get("detail") or "")
        except ValueError:
            message = ""
        clear = bool(message) and (400 <= code < 500 or code == 503)
        return ("refused_clear" if clear else "unclear"), f"HTTP {code}: {message[:80]}"
    if isinstance(exc, (httpx.TransportError, OSError)):
        return "refused_clear", f"connection: {type(exc).__name__}"  # no answer at all: the client knows
    return "unclear", f"{type(exc).__name__}: {str(exc)[:80]}"


async def _retrying(call: Callable[[], Awaitable[Any]], deadline: float) -> Any:
    """``call()`` until it answers or ``deadline`` passes (reads only: they are safe to repeat)."""
    while True:
        try:
            return await call()
        except (httpx.HTTPError, OSError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def one_run(client: LangGraphClient, n: int, finish_within_s: float) -> Outcome:
    started = time.monotonic()
    question: dict[str, Any] = {"messages": [{"role": "user", "content": f"question {n}"}]}
    try:
        thread_id = (await client.threads.create())["thread_id"]
        # Every other run is streamed with a resume: it keeps its events for that (stream_resumable).
        run = await client.runs.create(thread_id, "drill", input=question, stream_resumable=n % 2 == 0)
    except Exception as exc:
        result, detail = _describe(exc)
        return Outcome(started, time.monotonic(), result, detail)
    outcome = await _followed(client, thread_id, run["run_id"], started, finish_within_s, resume=n % 2 == 0)
    if outcome.run is None:  # lost: its client never saw it end
        outcome.run = AcceptedRun(run["run_id"], thread_id, None)
    return outcome


async def _followed(
    client: LangGraphClient, thread_id: str, run_id: str, started: float, within_s: float, *, resume: bool
) -> Outcome:
    """What became of an accepted run: its outcome, the thread's messages and (every other run) a stream
    resume, checked against the whole stream read again once the run has ended. A stream that fails (its
    server down during the fault) is no resume to check: the run itself is followed by polling."""
    deadline = started + within_s
    cut: tuple[list[str], list[str]] | None = None
    if resume:
        with contextlib.suppress(Exception):
            cut = await asyncio.wait_for(resumed(client, thread_id, run_id), within_s)
    try:

        async def finished() -> dict[str, Any]:
            while True:
                await client.runs.join(thread_id, run_id)
                got = dict(await client.runs.get(thread_id, run_id))
                if got["status"] in FINISHED:
                    return got
                if time.monotonic() > deadline:
                    raise TimeoutError
                await asyncio.sleep(0.2)

        final = await _retrying(finished, deadline)
        ended = time.monotonic()
        state = await _retrying(lambda: client.threads.get_state(thread_id), deadline + 30)
    except Exception as exc:
        return Outcome(started, time.monotonic(), "lost", f"never finished: {type(exc).__name__}")
    outcome = await _judged(client, thread_id, final, state, started, ended, deadline)
    outcome.run = AcceptedRun(run_id, thread_id, str(final["status"]))
    if cut is not None and cut[0]:
        with contextlib.suppress(Exception):
            full = await asyncio.wait_for(event_ids(client, thread_id, run_id, "-1", 10_000), 30)
            outcome.resume = Resume(run_id, tuple(cut[0]), tuple(cut[1]), tuple(full))
    return outcome


async def _judged(
    client: LangGraphClient,
    thread_id: str,
    final: dict[str, Any],
    state: Any,
    started: float,
    ended: float,
    deadline: float,
) -> Outcome:
    values = state["values"] if isinstance(state["values"], dict) else {}
    messages = list(values.get("messages", []))
    answers = [m for m in messages if m.get("type") == "ai"]
    gaps = [float(g) for g in values.get("gaps", [])]
    if final["status"] == "success":
        if len(answers) == 1:
            return Outcome(started, ended, "success", gaps=gaps, messages=messages)
        result = "duplicated" if len(answers) > 1 else "lost"
        return Outcome(started, ended, result, f"{len(answers)} answers", gaps, messages=messages)
    joined = await _retrying(lambda: client.runs.join(thread_id, final["run_id"]), deadline + 30)
    error = joined.get("__error__", {}) if isinstance(joined, dict) else {}
    if error.get("message") and final["status"] in ("error", "timeout"):
        return Outcome(started, ended, "failed_clear", f"{error.get('error')}", gaps, messages=messages)
    return Outcome(started, ended, "unclear", f"{final['status']}: {error}", gaps, messages=messages)


class Load:
    """``concurrency`` clients running ``one_run`` back to back until ``stop``."""

    def __init__(
        self,
        clients: Sequence[LangGraphClient],
        concurrency: int,
        finish_within_s: float,
        most: int | None = None,
        pace_s: float = 0.0,
    ) -> None:
        self._clients, self._concurrency, self._within = clients, concurrency, finish_within_s
        self._most, self._pace_s = most, pace_s  # runs sent in all (None: as many as fit), pause between
        self.outcomes: list[Outcome] = []
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._n = 0

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._client(i)) for i in range(self._concurrency)]

    async def _client(self, index: int) -> None:
        client = self._clients[index % len(self._clients)]
        while not self._stopping.is_set() and (self._most is None or self._n < self._most):
            self._n += 1
            outcome = await one_run(client, self._n, self._within)
            self.outcomes.append(outcome)
            if outcome.result != "success":
                await asyncio.sleep(0.2)  # a client backs off a little after a failure
            await asyncio.sleep(self._pace_s)

    async def stop(self) -> list[Outcome]:
        self._stopping.set()
        await asyncio.gather(*self._tasks)
        return self.outcomes


class Drills:
    def __init__(self, cluster: Cluster, pg: LocalPostgres, redis: LocalRedis, faults: Path, fault_s: float):
        self.cluster, self.pg, self.redis, self.faults, self.fault_s = cluster, pg, redis, faults, fault_s

    def set_faults(self, faults: dict[str, Any]) -> None:
        tmp = self.faults.with_suffix(".tmp")
        tmp.write_text(json.dumps({**STEADY, **faults}))
        tmp.replace(self.faults)  # workers read it whole or not at all

    async def model_outage(self) -> None:
        self.set_faults({"outage": True})
        await asyncio.sleep(self.fault_s)
        self.set_faults({})

    async def rate_limit_storm(self) -> None:
        self.set_faults({"rate_limit": 0.5, "retry_after": 1})
        await asyncio.sleep(self.fault_s)
        self.set_faults({})

    async def worker_kill(self) -> None:
        victim = self.cluster.workers[0]
        victim.stop(kill=True)
        await asyncio.sleep(5)
        await asyncio.to_thread(self.cluster.ensure_running)

    async def postgres_restart(self) -> None:
        await asyncio.to_thread(self.pg.stop, "fast")
        await asyncio.sleep(3)
        await asyncio.to_thread(self.pg.start)

    async def redis_outage(self) -> None:
        await asyncio.to_thread(self.redis.kill)
        await asyncio.sleep(8)
        await asyncio.to_thread(self.redis.start)


async def drill(
    name: str, drills: Drills, clients: Sequence[LangGraphClient], args: argparse.Namespace
) -> Report:
    load = Load(clients, args.concurrency, args.finish_within_s, args.max_runs, args.pace_s)
    load.start()
    await asyncio.sleep(args.before_s)
    fault_start = time.monotonic()
    await getattr(drills, name)()
    fault_end = time.monotonic()
    await asyncio.sleep(args.after_s)
    outcomes = await load.stop()
    accepted = [o for o in outcomes if o.run is not None]
    history = await gather(
        clients[0],
        drills.pg.uri,
        [o.run for o in accepted if o.run is not None],
        {o.run.thread_id: o.messages for o in accepted if o.run is not None},
    )
    history.resumes = [o.resume for o in outcomes if o.resume is not None]
    return Report(name, outcomes, fault_start, fault_end, check(history), history.counts())


def print_report(summary: dict[str, Any]) -> None:
    def num(value: Any, unit: str) -> str:
        return "-" if value is None else f"{value}{unit}"

    print(
        f"{summary['drill']:<17} sent {summary['sent']:>4}  ok {summary['succeeded']:>4}  "
        f"failed-clear {summary['failed_clear']:>4}  lost {summary['lost']}  dup {summary['duplicated']}  "
        f"unclear {summary['unclear']}  fault {summary['fault_s']}s  "
        f"p99-during {num(summary['p99_during_fault_s'], 's')}  recover {num(summary['recovery_s'], 's')}  "
        f"retries {summary['retries']} (shortest wait {num(summary['shortest_retry_wait_s'], 's')})"
    )
    for detail, count in summary["errors"].items():
        print(f"{'':<19}{count:>5} x {detail}")
    print(
        f"{'':<19}invariant violations {summary['violations']}, checked: "
        + ", ".join(f"{n} {what}" for what, n in summary["checked"].items())
    )
    for name, found in summary["violations_by_check"].items():
        for violation in found:
            print(f"{'':<19}{name}: {violation}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--drills", default=",".join(DRILLS), help="comma-separated, of: " + ", ".join(DRILLS)
    )
    parser.add_argument("--concurrency", type=int, default=8, help="clients running runs back to back")
    parser.add_argument("--fault-s", type=float, default=15.0, help="how long the model faults last")
    parser.add_argument("--before-s", type=float, default=5.0, help="steady load before each fault")
    parser.add_argument("--after-s", type=float, default=15.0, help="load after each fault ends")
    parser.add_argument("--max-runs", type=int, help="runs sent per drill in all (default: no bound)")
    parser.add_argument("--pace-s", type=float, default=0.0, help="each client's pause between runs")
    parser.add_argument("--finish-within-s", type=float, default=120.0, help="a run not done by then is lost")
    parser.add_argument("--json", type=Path, help="write the reports here too")
    args = parser.parse_args(argv)
    unknown = set(args.drills.split(",")) - set(DRILLS)
    if unknown:
        parser.error(f"unknown drills: {', '.join(sorted(unknown))}")
    return args


async def run(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    for missing in (LocalPostgres.missing(), LocalRedis.missing()):
        if missing:
            raise SystemExit(f"chaos: {missing}")
    procs = Procs(log_dir=work / "logs", work_dir=work / "work")
    pg = LocalPostgres()
    faults = work / "faults.json"
    summaries: list[dict[str, Any]] = []
    try:
        pg.start()
        redis = LocalRedis(procs)
        redis.start()
        env = production_env(
            pg.uri,
            redis.uri,
            GRAPHRUN_FAULTS_FILE=str(faults),
            GRAPHRUN_BREAKER_FAILURES="5",
            GRAPHRUN_BREAKER_WINDOW_S="10",
            GRAPHRUN_BREAKER_RESET_S="3",
        )
        cluster = Cluster(procs, env, config=CONFIG)
        drills = Drills(cluster, pg, redis, faults, args.fault_s)
        drills.set_faults({})
        cluster.migrate()
        for _ in range(2):
            cluster.add_api()
            cluster.add_worker()
        await asyncio.to_thread(cluster.ensure_running)
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(cluster.client(i)) for i in range(2)]
            for name in args.drills.split(","):
                report = await drill(name, drills, clients, args)
                summaries.append(report.summary())
                print_report(summaries[-1])
                await asyncio.to_thread(cluster.ensure_running)
    finally:
        procs.stop_all()
        pg.destroy()
    return summaries


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="graphrun-chaos-") as tmp:
        summaries = asyncio.run(run(args, Path(tmp)))
    if args.json:
        args.json.write_text(json.dumps(summaries, indent=2))
    bad = [s["drill"] for s in summaries if s["lost"] or s["duplicated"] or s["unclear"] or s["violations"]]
    if bad:
        print(f"chaos: runs lost, duplicated, answered unclearly or invariants violated in: {', '.join(bad)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
