"""Checkpoint storage of one conversation, turn by turn: a ``DeltaChannel`` graph beside the same graph
with plain ``add_messages`` (``bench/delta/graphs.py``).

Each turn is one short human message and one canned reply (``ainvoke`` on a thread, the savers graphrun
uses: SQLite as embedded mode, and PostgreSQL with ``--postgres URI``). After each reported turn the
saver's own tables are measured (bytes of the stored checkpoints, blobs and writes, as the database
holds them), and the script prints the bytes that turn added and the total so far.

    .venv/bin/python bench/delta_storage.py                       # turns 20 and 200, SQLite
    .venv/bin/python bench/delta_storage.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import StateGraph
from psycopg import AsyncConnection

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.delta.graphs import delta, plain

ROW = "{:<9} {:<6} {:>5} {:>16} {:>12} {:>11}"
Measure = Callable[[str], Awaitable[int]]

SQLITE_BYTES = """
SELECT (SELECT COALESCE(SUM(LENGTH(checkpoint) + LENGTH(metadata)), 0)
          FROM checkpoints WHERE thread_id = ?)
     + (SELECT COALESCE(SUM(LENGTH(value)), 0) FROM writes WHERE thread_id = ?)
"""
POSTGRES_BYTES = """
SELECT (SELECT COALESCE(SUM(pg_column_size(checkpoint) + pg_column_size(metadata)), 0)
          FROM checkpoints WHERE thread_id = %(t)s)
     + (SELECT COALESCE(SUM(COALESCE(pg_column_size(blob), 0)), 0)
          FROM checkpoint_blobs WHERE thread_id = %(t)s)
     + (SELECT COALESCE(SUM(COALESCE(pg_column_size(blob), 0)), 0)
          FROM checkpoint_writes WHERE thread_id = %(t)s)
     AS n
"""


async def conversation(
    builder: StateGraph[Any], saver: BaseCheckpointSaver[Any], measure: Measure, report: set[int]
) -> dict[int, tuple[int, int]]:
    """{turn: (bytes that turn added, total bytes)} at each turn in ``report``."""
    graph = builder.compile(checkpointer=saver)
    thread_id = str(uuid.uuid4())
    config: Any = {"configurable": {"thread_id": thread_id}}
    found: dict[int, tuple[int, int]] = {}
    before = 0
    for turn in range(1, max(report) + 1):
        if turn in report:
            before = await measure(thread_id)
        result = await graph.ainvoke(
            {"messages": [HumanMessage(f"Here is my message number {turn}.")]}, config
        )
        assert len(result["messages"]) == 2 * turn, "the conversation lost messages"
        if turn in report:
            total = await measure(thread_id)
            found[turn] = (total - before, total)
    state = await graph.aget_state(config)
    assert len(state.values["messages"]) == 2 * max(report), "the state read back lost messages"
    return found


async def on_sqlite(builder: StateGraph[Any], report: set[int]) -> dict[int, tuple[int, int]]:
    with tempfile.TemporaryDirectory() as folder:
        async with AsyncSqliteSaver.from_conn_string(str(Path(folder) / "checkpoints.sqlite")) as saver:

            async def measure(thread_id: str) -> int:
                async with saver.conn.execute(SQLITE_BYTES, (thread_id, thread_id)) as cur:
                    row = await cur.fetchone()
                return int(row[0]) if row else 0

            return await conversation(builder, saver, measure, report)


async def on_postgres(uri: str, builder: StateGraph[Any], report: set[int]) -> dict[int, tuple[int, int]]:
    async with AsyncPostgresSaver.from_conn_string(uri) as saver:
        await saver.setup()

        conn = saver.conn
        assert isinstance(conn, AsyncConnection)

        async def measure(thread_id: str) -> int:
            async with conn.cursor() as cur:
                await cur.execute(POSTGRES_BYTES, {"t": thread_id})
                row = await cur.fetchone()
            return int(row["n"]) if row else 0

        return await conversation(builder, saver, measure, report)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", default="20,200", help="turns to report, comma-separated (default 20,200)")
    parser.add_argument("--postgres", default="", help="also measure AsyncPostgresSaver on this database")
    args = parser.parse_args()
    report = {int(t) for t in args.turns.split(",")}
    savers: list[tuple[str, Callable[[StateGraph[Any]], Awaitable[dict[int, tuple[int, int]]]]]] = [
        ("sqlite", lambda b: on_sqlite(b, report))
    ]
    if args.postgres:
        savers.append(("postgres", lambda b: on_postgres(args.postgres, b, report)))
    print(ROW.format("saver", "graph", "turn", "bytes this turn", "total bytes", "bytes/turn"))
    for saver_name, run in savers:
        for graph_name, builder in (("plain", plain), ("delta", delta)):
            for turn, (added, total) in sorted((await run(builder)).items()):
                print(
                    ROW.format(saver_name, graph_name, turn, f"{added:,}", f"{total:,}", f"{total // turn:,}")
                )


if __name__ == "__main__":
    asyncio.run(main())
