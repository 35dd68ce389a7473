"""The official checkpointer conformance suite (``langgraph-checkpoint-conformance``) against every saver
graphrun offers, opened the way graphrun opens it (``graphrun.savers.open_persistence``).

The suite is run as its README says (``checkpointer_test`` + ``validate``), one capability per test so
each result shows on its own line. For each saver the tests pin what the suite reports, as
``docs/savers.md`` lists it: which capabilities the saver implements, and which of the suite's tests fail
(library bugs, named in ``KNOWN_FAILURES``). A test fails when a report changes either way, so a fixed
bug or a newly implemented capability shows up here and in the docs.

``copy_thread`` and ``delete_for_runs`` are implemented by no official saver; graphrun's own
``copy_thread`` and ``delete_runs`` (``graphrun/checkpointer.py``) stand in for them, and
``test_graphrun_workarounds_pass_the_suite`` holds those to the suite's tests of the two capabilities.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import BASE_CAPABILITIES, Capability
from langgraph.checkpoint.conformance.report import CapabilityResult

from graphrun.checkpointer import copy_thread, delete_runs, keep_latest
from graphrun.savers import open_persistence

from ._servers import KINDS, place

pytestmark = pytest.mark.timeout(300)

CAPABILITIES = [c.value for c in Capability]
BASE = {c.value for c in BASE_CAPABILITIES}

# The optional capabilities each saver implements (the suite detects them by the method being overridden).
EXTENDED: dict[str, set[str]] = {
    "memory": set(),
    "sqlite": set(),
    "postgres": {"prune"},
    "redis": {"prune"},
    "mongodb": set(),
}

# The suite's tests each saver fails, by capability: bugs of the library (or of the server it runs on),
# described in docs/savers.md. Seen with langgraph-checkpoint-redis 0.5.2 on Redis Stack 7.4.1.
KNOWN_FAILURES: dict[str, dict[str, set[str]]] = {
    "redis": {
        "list": {
            "test_list_by_namespace",
            "test_list_metadata_custom_keys",
            "test_list_before",
            "test_list_limit_plus_before",
            "test_list_multiple_namespaces",
        },
        "prune": {"test_prune_keep_latest_across_namespaces", "test_prune_empty_list_noop"},
    },
}


# The suite's tests graphrun's workarounds fail on a saver because of that saver's own bugs. On Redis,
# `alist` with `checkpoint_ns=""` returns every namespace (the `list` failures above), and the suite reads
# the copy back that way: the copy itself keeps the namespaces.
WORKAROUND_KNOWN_FAILURES: dict[str, dict[str, set[str]]] = {
    "redis": {
        "copy_thread": {"test_copy_thread_preserves_namespaces"},
        # keep_latest forwards to the Redis saver's own aprune, and has its bug (see KNOWN_FAILURES).
        "prune": {"test_prune_keep_latest_across_namespaces"},
    },
}


def failed_tests(result: CapabilityResult) -> set[str]:
    """The names of the suite's tests that failed (each failure reads ``name: message``)."""
    return {failure.split(":", 1)[0] for failure in result.failures}


def opened_by_graphrun(kind: str, tmp_path: Path) -> Any:
    """A conformance factory: each call opens a fresh checkpointer of ``kind`` as graphrun does."""

    @checkpointer_test(name=f"graphrun-{kind}")
    async def factory() -> AsyncGenerator[BaseCheckpointSaver[Any], None]:
        async with (
            place(kind, tmp_path) as where,
            open_persistence(where.settings, key_prefix=where.key_prefix) as persistence,
        ):
            yield persistence.checkpointer

    return factory


@pytest.mark.parametrize("capability", CAPABILITIES)
@pytest.mark.parametrize("kind", KINDS)
async def test_official_suite(kind: str, capability: str, tmp_path: Path) -> None:
    """The suite's tests of one capability on one saver: implemented or not as documented, and passing
    all but the documented failures."""
    report = await validate(opened_by_graphrun(kind, tmp_path), capabilities={capability})
    result = report.results[capability]

    implemented = capability in BASE or capability in EXTENDED[kind]
    assert result.detected is implemented, f"{kind} {'lacks' if implemented else 'now has'} {capability}"
    if implemented:
        expected = KNOWN_FAILURES.get(kind, {}).get(capability, set())
        assert failed_tests(result) == expected, "\n".join(result.failures)
        assert result.tests_passed > 0


class WithGraphrunWorkarounds(BaseCheckpointSaver[Any]):
    """A saver that forwards to another, with graphrun's ``copy_thread`` as its ``acopy_thread``,
    graphrun's ``delete_runs`` as its ``adelete_for_runs`` and graphrun's ``keep_latest`` (or
    ``adelete_thread``, for the ``delete`` strategy) as its ``aprune``. graphrun deletes a run's
    checkpoints on the run's own thread; the suite names only run ids, so this applies them to every
    thread it has put."""

    def __init__(self, inner: BaseCheckpointSaver[Any]) -> None:
        super().__init__(serde=inner.serde)
        self.inner = inner
        self.threads: set[str] = set()

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self.inner.aget_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        async for found in self.inner.alist(config, filter=filter, before=before, limit=limit):
            yield found

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        self.threads.add(str(config["configurable"]["thread_id"]))
        return await self.inner.aput(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        await self.inner.aput_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await self.inner.adelete_thread(thread_id)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self.threads.add(target_thread_id)
        await copy_thread(self.inner, source_thread_id, target_thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        for thread_id in sorted(self.threads):
            await delete_runs(self.inner, thread_id, run_ids)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        for thread_id in thread_ids:
            if strategy == "delete":
                await self.inner.adelete_thread(thread_id)
            else:
                await keep_latest(self.inner, thread_id)

    def get_next_version(self, current: Any, channel: None) -> Any:
        return self.inner.get_next_version(current, channel)


@pytest.mark.parametrize("capability", ["copy_thread", "delete_for_runs", "prune"])
@pytest.mark.parametrize("kind", KINDS)
async def test_graphrun_workarounds_pass_the_suite(kind: str, capability: str, tmp_path: Path) -> None:
    """graphrun's ``copy_thread`` / ``delete_runs`` / ``keep_latest`` on each saver pass the suite's tests
    of ``acopy_thread`` / ``adelete_for_runs`` / ``aprune``."""

    @checkpointer_test(name=f"graphrun-{kind}-workarounds")
    async def factory() -> AsyncGenerator[BaseCheckpointSaver[Any], None]:
        async with (
            place(kind, tmp_path) as where,
            open_persistence(where.settings, key_prefix=where.key_prefix) as persistence,
        ):
            yield WithGraphrunWorkarounds(persistence.checkpointer)

    report = await validate(factory, capabilities={capability})
    result = report.results[capability]

    assert result.detected
    expected = WORKAROUND_KNOWN_FAILURES.get(kind, {}).get(capability, set())
    assert failed_tests(result) == expected, "\n".join(result.failures)
    assert result.tests_passed > 0
