"""What graphrun needs of a checkpointer beyond LangGraph's own calls: copying a thread, deleting a
run's checkpoints (rollback), pruning a thread to its latest checkpoints, deleting a thread everywhere,
what a thread's checkpoints weigh.

The savers themselves are opened by ``savers/``. Known gaps of the official savers are worked around
here, in one place, each with a test that shows it is still needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from graphrun import errors
from graphrun.errors import ThreadNotFound
from graphrun.models import Run
from graphrun.stores import pgsaver
from graphrun.stores.base import ControlStore
from graphrun.stores.sqlite import delete_saver_runs, prune_saver_thread

# The checkpoint metadata key of a thread with a DeltaChannel (langgraph.pregel: its snapshot counters).
DELTA_MARK = "counters_since_delta_snapshot"


async def copy_thread(saver: BaseCheckpointSaver[Any], source_id: str, target_id: str) -> None:
    """Copy every checkpoint and pending write of a thread (all namespaces) to another thread id.

    Workaround: ``BaseCheckpointSaver.acopy_thread`` exists but none of the official savers graphrun
    offers implements it (``tests/unit/test_checkpointer.py`` and ``tests/integration/test_savers.py``
    check that they still raise), so we replay the thread's checkpoints through the public
    ``aput``/``aput_writes`` API, oldest first, keeping their ids: it works on every saver.
    """
    try:
        await saver.acopy_thread(source_id, target_id)
        return
    except NotImplementedError:
        pass
    await _replay(saver, [t async for t in saver.alist(_thread(source_id))], target_id)


async def delete_runs(saver: BaseCheckpointSaver[Any], thread_id: str, run_ids: Sequence[str]) -> None:
    """Delete the checkpoints (in every namespace) the given runs wrote on a thread, and their pending
    writes (a rollback), so the thread's head is what it was before them.

    Workaround: ``BaseCheckpointSaver.adelete_for_runs`` exists but none of the official savers graphrun
    offers implements it (the tests named in ``copy_thread`` check that they still raise). The SQLite
    and PostgreSQL savers' rows are deleted in one transaction, under the saver's lock. Any other saver
    (Redis, MongoDB, a custom one) has no public way to delete one checkpoint, so its thread is rebuilt
    through the public API: read whole, deleted, and the checkpoints of other runs put back. That is not
    atomic: a process killed in between loses the thread's checkpoints (and the Redis saver lists at most
    10,000 checkpoints of a thread).
    """
    try:
        await saver.adelete_for_runs(run_ids)
        return
    except NotImplementedError:
        pass
    if isinstance(saver, AsyncSqliteSaver):
        async with saver.lock:
            await delete_saver_runs(saver.conn, thread_id, run_ids)
    elif isinstance(saver, AsyncPostgresSaver):
        async with saver.lock:
            await pgsaver.delete_saver_runs(saver.conn, thread_id, run_ids)
    else:
        await _rebuild_without(saver, thread_id, set(run_ids))


async def _rebuild_without(saver: BaseCheckpointSaver[Any], thread_id: str, run_ids: set[str]) -> None:
    tuples = [t async for t in saver.alist(_thread(thread_id))]
    kept = [t for t in tuples if (t.metadata or {}).get("run_id") not in run_ids]
    if len(kept) == len(tuples):
        return
    await saver.adelete_thread(thread_id)
    await _replay(saver, kept, thread_id)


async def _replay(
    saver: BaseCheckpointSaver[Any], newest_first: list[CheckpointTuple], target_id: str
) -> None:
    """Put the given checkpoints and their pending writes on ``target_id``, oldest first, keeping their
    ids and parents."""
    for t in reversed(newest_first):
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


async def keep_latest(saver: BaseCheckpointSaver[Any], thread_id: str) -> None:
    """Prune a thread to the latest checkpoint of each namespace (with its pending writes), keeping its
    state: the ``keep_latest`` strategy of ``/threads/prune`` and of a thread's TTL.

    A saver that implements ``aprune`` (PostgreSQL, Redis) does it. The SQLite saver does not: its rows
    are pruned in one transaction under its lock. Any other saver (in-memory, MongoDB, a custom one) has
    no public way to delete one checkpoint, so its thread is rebuilt from the kept checkpoints through
    the public API, which is not atomic (as ``delete_runs``'s rebuild). The caller leaves threads with a
    run executing alone.
    """
    await refuse_delta_thread(saver, thread_id)
    if type(saver).aprune is not BaseCheckpointSaver.aprune:
        await saver.aprune([thread_id], strategy="keep_latest")
    elif isinstance(saver, AsyncSqliteSaver):
        async with saver.lock:
            await prune_saver_thread(saver.conn, thread_id)
    else:
        latest: dict[str, CheckpointTuple] = {}
        async for t in saver.alist(_thread(thread_id)):  # newest first, within each namespace
            latest.setdefault(t.config["configurable"].get("checkpoint_ns", ""), t)
        kept = [t._replace(parent_config=None) for t in latest.values()]
        await saver.adelete_thread(thread_id)
        await _replay(saver, kept, thread_id)


async def refuse_delta_thread(saver: BaseCheckpointSaver[Any], thread_id: str) -> None:
    """``DeltaThreadNotPrunable`` when the thread's graph keeps a channel as a ``DeltaChannel``
    (LangGraph >= 1.2): its checkpoints store only new writes (and a snapshot now and then), and its
    state is rebuilt by replaying its ancestors' writes, which ``keep_latest`` would delete. The stock
    PostgreSQL saver refuses such threads in ``aprune``; the other savers (and graphrun's own SQLite
    pruning and rebuild) would silently empty the channel, so every saver is held to the refusal here.
    Such a thread carries ``counters_since_delta_snapshot`` in its checkpoints' metadata."""
    latest = await saver.aget_tuple(_thread(thread_id))
    if latest is not None and DELTA_MARK in (latest.metadata or {}):
        raise errors.DeltaThreadNotPrunable(
            f"thread {thread_id} uses a DeltaChannel: keep_latest would delete the writes its state is "
            "rebuilt from; prune it with strategy 'delete', or leave it"
        )


async def thread_storage(saver: BaseCheckpointSaver[Any], thread_id: str) -> dict[str, Any]:
    """Bytes a thread's checkpoints take, in the official server's shape: the checkpoints themselves
    (without their channel values), each channel's stored versions, and the pending writes.

    Measured through the saver's public API as its serializer writes them (``serde.dumps_typed``), so
    it holds for every saver; a channel value counts once per version, as the savers that keep values
    apart from checkpoints store them (the SQLite saver keeps them inside each checkpoint: on disk it
    takes more).
    """
    serde = saver.serde
    checkpoints = checkpoint_bytes = writes = write_bytes = 0
    by_channel: dict[str, dict[str, int]] = {}
    seen: set[tuple[str, str, str]] = set()
    async for t in saver.alist(_thread(thread_id)):
        namespace = t.config["configurable"].get("checkpoint_ns", "")
        values = t.checkpoint.get("channel_values", {})
        bare = {k: v for k, v in t.checkpoint.items() if k != "channel_values"}
        checkpoints += 1
        checkpoint_bytes += len(serde.dumps_typed(bare)[1]) + len(serde.dumps_typed(t.metadata)[1])
        for channel, version in t.checkpoint.get("channel_versions", {}).items():
            if channel not in values or (namespace, channel, str(version)) in seen:
                continue
            seen.add((namespace, channel, str(version)))
            entry = by_channel.setdefault(channel, {"versions": 0, "bytes": 0})
            entry["versions"] += 1
            entry["bytes"] += len(serde.dumps_typed(values[channel])[1])
        for _task, _channel, value in t.pending_writes or []:
            writes += 1
            write_bytes += len(serde.dumps_typed(value)[1])
    channel_bytes = sum(e["bytes"] for e in by_channel.values())
    return {
        "total_bytes": checkpoint_bytes + channel_bytes + write_bytes,
        "checkpoints": {"count": checkpoints, "bytes": checkpoint_bytes},
        "channel_values": {
            "count": sum(e["versions"] for e in by_channel.values()),
            "bytes": channel_bytes,
            "by_channel": by_channel,
        },
        "pending_writes": {"count": writes, "bytes": write_bytes},
    }


def _thread(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


async def delete_thread(store: ControlStore, saver: BaseCheckpointSaver[Any], thread_id: str) -> list[Run]:
    """Delete a thread everywhere: its row and runs, then its checkpoints. Returns the runs that were in
    flight (the caller stops them). A thread already gone is not an error."""
    try:
        inflight = await store.delete_thread(thread_id)
    except ThreadNotFound:
        inflight = []
    await saver.adelete_thread(thread_id)
    return inflight
