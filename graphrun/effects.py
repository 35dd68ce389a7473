"""Side effects that happen once, even when the node or tool that makes them runs again.

A node runs again when its worker dies after the node did its work but before LangGraph saved what it
returned (the checkpoint's writes): the run is taken over and resumed from its last checkpoint, and every
task not saved there runs again. For a node that sends an email or charges a card, that is a second email
or a second charge. ``once`` records each effect's result in the graph's store under a key made of what is
the same on every execution of the task, and a second execution gets the recorded result instead of
acting again:

    from graphrun.resilience import once

    @tool
    def send_email(to: str, subject: str, body: str, runtime: ToolRuntime) -> str:
        return once(f"send_email:{runtime.tool_call_id}", lambda: mailer.send(to, subject, body))

The key is the thread, the checkpoint the task was prepared from and the task's namespace, which holds
its id (LangGraph derives a task's id from that checkpoint, its step and its node, so it is the same when
the task runs again from there), plus the ``name`` given, which tells apart the effects of one task (a
tool call's id, say). A new step, a new run or a new tool call makes a new key: only a repetition of the
same task is recognised. Calls before an ``interrupt()`` in a node are not repeated when the node runs
again on resume, for the same reason.

What it does not do: the effect and its record are two writes, so a crash between the two (after the
mail server accepted the email, before the store saved the record) still repeats it, and two executions
at the same moment (a worker paused past its lease while another took its run) both act. Where the
other side takes an idempotency key (payment APIs do), pass ``effect_key(name)`` as that key: then both
windows close too. The result must be JSON (it is stored); an effect that raises records nothing and
runs again on the next execution. Records stay in the store (namespace ``("graphrun", "effects")``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from langchain_core.runnables import RunnableConfig
from langgraph.config import get_config, get_store
from langgraph.store.base import BaseStore

T = TypeVar("T")
NAMESPACE = ("graphrun", "effects")


def effect_key(name: str, config: RunnableConfig | None = None) -> str:
    """The key of effect ``name`` of the task running now (or of the task ``config`` belongs to): the
    same on every execution of that task, different for any other task, step, run or thread."""
    configurable = (config if config is not None else _config()).get("configurable") or {}
    thread_id = configurable.get("thread_id")
    task_ns = configurable.get("checkpoint_ns")
    if thread_id is None or not task_ns:
        raise RuntimeError(
            "once() keys an effect by the thread and task running it: call it inside a node or tool of a "
            "graph run on a thread"
        )
    checkpoints = configurable.get("checkpoint_map") or {"": configurable.get("checkpoint_id")}
    parts = [str(thread_id), {str(k): str(v) for k, v in checkpoints.items()}, str(task_ns), name]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def once(
    name: str,
    effect: Callable[[], T],
    *,
    config: RunnableConfig | None = None,
    store: BaseStore | None = None,
) -> T:
    """``effect()``'s result, recorded; on a repeated execution of the same task, the recorded result
    without calling ``effect`` again. ``config`` and ``store`` default to the running graph's."""
    store = store if store is not None else _store()
    key = effect_key(name, config)
    item = store.get(NAMESPACE, key)
    if item is not None:
        return cast(T, item.value["result"])
    result = effect()
    store.put(NAMESPACE, key, _record(name, result))
    return result


async def aonce(
    name: str,
    effect: Callable[[], Awaitable[T]],
    *,
    config: RunnableConfig | None = None,
    store: BaseStore | None = None,
) -> T:
    """``once`` for async nodes and tools: ``effect`` is awaited."""
    store = store if store is not None else _store()
    key = effect_key(name, config)
    item = await store.aget(NAMESPACE, key)
    if item is not None:
        return cast(T, item.value["result"])
    result = await effect()
    await store.aput(NAMESPACE, key, _record(name, result))
    return result


def _record(name: str, result: Any) -> dict[str, Any]:
    try:
        json.dumps(result)
    except TypeError as exc:
        raise TypeError(f"once({name!r}): the effect's result must be JSON to be recorded: {exc}") from exc
    return {"name": name, "result": result}


def _config() -> RunnableConfig:
    try:
        return get_config()
    except RuntimeError as exc:
        raise RuntimeError("once() needs the running graph's config: call it inside a node or tool") from exc


def _store() -> BaseStore:
    try:
        store = get_store()
    except RuntimeError:
        store = None
    if store is None:
        raise RuntimeError(
            "once() records effects in the graph's store, and this graph has none: graphrun attaches one "
            "to every graph it serves; elsewhere compile the graph with store=..."
        )
    return store
