"""The checkpointer and the long-term store a graph is compiled with, opened from settings.

Embedded mode uses the official SQLite savers (``langgraph-checkpoint-sqlite``). Known gaps of the
official libraries are worked around here, in one place, each with a test that shows it is still needed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.store.base import TTLConfig
from langgraph.store.sqlite.aio import AsyncSqliteStore

from graphrun.errors import ThreadNotFound
from graphrun.models import Run
from graphrun.settings import Settings
from graphrun.stores.base import ControlStore
from graphrun.stores.sqlite import delete_saver_runs
from graphrun.types import Persistence

# How often expired store items are deleted when langgraph.json does not say (minutes, as TTLConfig).
default_sweep_interval_minutes = 1


@contextlib.asynccontextmanager
async def open_persistence(
    settings: Settings, store_config: Mapping[str, Any] | None = None
) -> AsyncIterator[Persistence]:
    """Open the checkpointer and store for the process; both close when the block exits."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # The sweeper always runs: items put with a ``ttl`` expire even when langgraph.json sets no default
    # (the SQLite store's reads do not skip expired items; only its sweeper removes them).
    ttl = store_ttl(store_config)
    async with (
        AsyncSqliteSaver.from_conn_string(str(settings.data_dir / "checkpoints.sqlite")) as saver,
        AsyncSqliteStore.from_conn_string(str(settings.data_dir / "store.sqlite"), ttl=ttl) as store,
    ):
        await saver.setup()
        await store.setup()
        await store.start_ttl_sweeper()
        try:
            yield Persistence(checkpointer=saver, store=store)
        finally:
            await store.stop_ttl_sweeper()


def store_ttl(store_config: Mapping[str, Any] | None) -> TTLConfig:
    """The store's TTL settings from ``langgraph.json``'s ``store.ttl`` (validated by ``config``;
    minutes, as in the LangGraph CLI), with a sweep interval always set."""
    ttl = dict((store_config or {}).get("ttl") or {})
    ttl.setdefault("sweep_interval_minutes", default_sweep_interval_minutes)
    return TTLConfig(**ttl)  # type: ignore[typeddict-item]


async def copy_thread(saver: BaseCheckpointSaver[Any], source_id: str, target_id: str) -> None:
    """Copy every checkpoint and pending write of a thread to another thread id.

    Workaround: ``BaseCheckpointSaver.acopy_thread`` exists but the SQLite saver does not implement it
    (``tests/unit/test_checkpointer.py`` checks that it still raises), so we replay the thread's
    checkpoints through the public ``aput``/``aput_writes`` API, oldest first, keeping their ids.
    """
    try:
        await saver.acopy_thread(source_id, target_id)
        return
    except NotImplementedError:
        pass
    tuples = [t async for t in saver.alist({"configurable": {"thread_id": source_id}})]
    for t in reversed(tuples):
        conf = t.config["configurable"]
        parent = t.parent_config["configurable"]["checkpoint_id"] if t.parent_config else None
        target: RunnableConfig = {
            "configurable": {
                "thread_id": target_id,
                "checkpoint_ns": conf.get("checkpoint_ns", ""),
                "checkpoint_id": parent,
            }
        }
        new_versions = dict(t.checkpoint["channel_versions"])
        stored = await saver.aput(target, t.checkpoint, t.metadata, new_versions)
        writes: dict[str, list[tuple[str, Any]]] = {}
        for task_id, channel, value in t.pending_writes or ():
            writes.setdefault(task_id, []).append((channel, value))
        for task_id, task_writes in writes.items():
            await saver.aput_writes(stored, task_writes, task_id)


async def delete_runs(saver: BaseCheckpointSaver[Any], thread_id: str, run_ids: Sequence[str]) -> None:
    """Delete the checkpoints the given runs wrote (a rollback), so the thread's head is what it was.

    Workaround: ``BaseCheckpointSaver.adelete_for_runs`` exists but the SQLite saver does not implement it
    (``tests/unit/test_checkpointer.py`` checks that it still raises), so for that saver the rows are
    deleted from its tables, under its lock.
    """
    try:
        await saver.adelete_for_runs(run_ids)
        return
    except NotImplementedError:
        if not isinstance(saver, AsyncSqliteSaver):
            raise
    async with saver.lock:
        await delete_saver_runs(saver.conn, thread_id, run_ids)


async def delete_thread(store: ControlStore, saver: BaseCheckpointSaver[Any], thread_id: str) -> list[Run]:
    """Delete a thread everywhere: its row and runs, then its checkpoints. Returns the runs that were in
    flight (the caller stops them). A thread already gone is not an error."""
    try:
        inflight = await store.delete_thread(thread_id)
    except ThreadNotFound:
        inflight = []
    await saver.adelete_thread(thread_id)
    return inflight
