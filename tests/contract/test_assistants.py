"""Assistants: the system assistant, create/get/delete, versions, search, count and paging."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from graphrun import errors
from graphrun.models import Assistant, new_id
from graphrun.stores.base import ControlStore, Page
from graphrun.types import Json

from ._support import GRAPH_ID, assistant


async def _create_all(store: ControlStore, *records: Assistant) -> list[Assistant]:
    return [await store.create_assistant(a, "raise") for a in records]


def _names(found: list[Assistant]) -> list[str]:
    return [a.name for a in found]


async def test_ensure_system_assistant_creates_version_1_once(store: ControlStore) -> None:
    assistant_id = new_id()
    await store.ensure_system_assistant(assistant_id, GRAPH_ID, "the agent")
    await store.ensure_system_assistant(assistant_id, GRAPH_ID, "a later description")

    got = await store.get_assistant(assistant_id)
    assert got.graph_id == GRAPH_ID
    assert got.metadata == {"created_by": "system"}
    assert got.version == 1
    assert got.description == "the agent"
    assert await store.count_assistants(None, {}, None) == 1
    versions = await store.list_assistant_versions(assistant_id, {}, Page())
    assert [v.version for v in versions] == [1]


async def test_create_assistant_stores_every_field(store: ControlStore) -> None:
    new = assistant("helper", metadata={"team": "search"}, config={"configurable": {"model": "m"}})
    created = await store.create_assistant(new, "raise")
    got = await store.get_assistant(new.assistant_id)

    for found in (created, got):
        assert found.assistant_id == new.assistant_id
        assert found.graph_id == GRAPH_ID
        assert found.name == "helper"
        assert found.description == "helper description"
        assert found.metadata == {"team": "search"}
        assert found.config == {"configurable": {"model": "m"}}
        assert found.version == 1


async def test_create_existing_with_raise_is_already_exists(store: ControlStore) -> None:
    first = await store.create_assistant(assistant("first"), "raise")
    clash = assistant("second", assistant_id=first.assistant_id)

    with pytest.raises(errors.AlreadyExists):
        await store.create_assistant(clash, "raise")
    assert (await store.get_assistant(first.assistant_id)).name == "first"


async def test_create_existing_with_do_nothing_returns_the_existing_one(store: ControlStore) -> None:
    first = await store.create_assistant(assistant("first"), "raise")
    again = await store.create_assistant(assistant("second", assistant_id=first.assistant_id), "do_nothing")

    assert again.name == "first"
    assert (await store.get_assistant(first.assistant_id)).name == "first"
    assert await store.count_assistants(None, {}, None) == 1


AssistantOp = Callable[[ControlStore, str], Awaitable[object]]


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda s, a: s.get_assistant(a), id="get"),
        pytest.param(lambda s, a: s.update_assistant(a, {"name": "x"}), id="update"),
        pytest.param(lambda s, a: s.delete_assistant(a), id="delete"),
        pytest.param(lambda s, a: s.list_assistant_versions(a, {}, Page()), id="versions"),
        pytest.param(lambda s, a: s.set_assistant_latest(a, 1), id="set-latest"),
    ],
)
async def test_missing_assistant_is_not_found(store: ControlStore, operation: AssistantOp) -> None:
    with pytest.raises(errors.AssistantNotFound):
        await operation(store, new_id())


async def test_set_latest_to_a_missing_version_is_not_found(store: ControlStore) -> None:
    created = await store.create_assistant(assistant(), "raise")
    with pytest.raises(errors.AssistantNotFound):
        await store.set_assistant_latest(created.assistant_id, 7)
    assert (await store.get_assistant(created.assistant_id)).version == 1


async def test_update_creates_version_2_with_the_changes_merged(store: ControlStore) -> None:
    v1 = await store.create_assistant(
        assistant("before", metadata={"team": "a"}, config={"configurable": {"k": 1}}), "raise"
    )
    updated = await store.update_assistant(v1.assistant_id, {"name": "after", "metadata": {"team": "b"}})
    got = await store.get_assistant(v1.assistant_id)

    for found in (updated, got):
        assert found.version == 2
        assert found.name == "after"
        assert found.metadata == {"team": "b"}
        assert found.config == {"configurable": {"k": 1}}  # not in the changes: kept
        assert found.graph_id == GRAPH_ID
        assert found.description == "before description"


async def test_versions_are_listed_newest_first(store: ControlStore) -> None:
    v1 = await store.create_assistant(assistant("before"), "raise")
    await store.update_assistant(v1.assistant_id, {"name": "after"})

    versions = await store.list_assistant_versions(v1.assistant_id, {}, Page())

    assert [(v.version, v.name) for v in versions] == [(2, "after"), (1, "before")]


async def test_set_latest_restores_an_older_versions_fields(store: ControlStore) -> None:
    v1 = await store.create_assistant(
        assistant("before", metadata={"team": "a"}, config={"configurable": {"k": 1}}), "raise"
    )
    changes: Json = {"name": "after", "metadata": {"team": "b"}, "config": {"configurable": {"k": 2}}}
    await store.update_assistant(v1.assistant_id, changes)

    restored = await store.set_assistant_latest(v1.assistant_id, 1)
    got = await store.get_assistant(v1.assistant_id)

    for found in (restored, got):
        assert found.version == 1
        assert found.name == "before"
        assert found.metadata == {"team": "a"}
        assert found.config == {"configurable": {"k": 1}}
    # Restoring does not rewrite history.
    versions = await store.list_assistant_versions(v1.assistant_id, {}, Page())
    assert [v.version for v in versions] == [2, 1]


async def test_search_by_graph_id(store: ControlStore) -> None:
    await _create_all(store, assistant("one"), assistant("two", graph_id="other"), assistant("three"))

    found = await store.search_assistants(GRAPH_ID, {}, None, Page(sort_order="asc"))

    assert _names(found) == ["one", "three"]
    assert await store.count_assistants(GRAPH_ID, {}, None) == 2
    assert await store.count_assistants("other", {}, None) == 1
    assert await store.count_assistants("nope", {}, None) == 0


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        pytest.param({}, ["alice", "bob", "carol"], id="empty-matches-all"),
        pytest.param({"owner": "alice"}, ["alice"], id="string"),
        pytest.param({"n": 1}, ["alice", "carol"], id="int"),
        pytest.param({"n": "1"}, [], id="string-is-not-int"),
        pytest.param({"flag": True}, ["alice"], id="true-is-not-1"),
        pytest.param({"flag": False}, ["bob"], id="false"),
        pytest.param({"owner": "alice", "n": 1}, ["alice"], id="all-keys-must-match"),
        pytest.param({"owner": "alice", "n": 2}, [], id="one-key-differs"),
        pytest.param({"absent": "x"}, [], id="missing-key"),
    ],
)
async def test_search_by_metadata_matches_top_level_keys_exactly(
    store: ControlStore, metadata: Json, expected: list[str]
) -> None:
    await _create_all(
        store,
        assistant("alice", metadata={"owner": "alice", "n": 1, "flag": True}),
        assistant("bob", metadata={"owner": "bob", "n": 2, "flag": False}),
        assistant("carol", metadata={"owner": "carol", "n": 1, "flag": 1}),
    )

    found = await store.search_assistants(None, metadata, None, Page(sort_order="asc"))

    assert _names(found) == expected
    assert await store.count_assistants(None, metadata, None) == len(expected)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("bot", ["research-bot", "support-bot"], id="shared-part"),
        pytest.param("search", ["research-bot"], id="middle"),
        pytest.param("writer", ["writer"], id="whole-name"),
        pytest.param("nobody", [], id="no-match"),
    ],
)
async def test_search_by_name_substring(store: ControlStore, name: str, expected: list[str]) -> None:
    await _create_all(store, assistant("research-bot"), assistant("support-bot"), assistant("writer"))

    found = await store.search_assistants(None, {}, name, Page(sort_order="asc"))

    assert _names(found) == expected
    assert await store.count_assistants(None, {}, name) == len(expected)


async def test_search_filters_combine(store: ControlStore) -> None:
    await _create_all(
        store,
        assistant("match-bot", metadata={"team": "x"}),
        assistant("match-bot", graph_id="other", metadata={"team": "x"}),
        assistant("match-bot", metadata={"team": "y"}),
        assistant("other-name", metadata={"team": "x"}),
    )

    found = await store.search_assistants(GRAPH_ID, {"team": "x"}, "match", Page())

    assert [(a.name, a.graph_id, a.metadata) for a in found] == [("match-bot", GRAPH_ID, {"team": "x"})]
    assert await store.count_assistants(GRAPH_ID, {"team": "x"}, "match") == 1


@pytest.mark.parametrize(
    ("limit", "offset", "expected"),
    [
        pytest.param(2, 0, ["a0", "a1"], id="first-page"),
        pytest.param(2, 2, ["a2", "a3"], id="second-page"),
        pytest.param(2, 4, ["a4"], id="last-page"),
        pytest.param(10, 5, [], id="past-the-end"),
    ],
)
async def test_search_limit_and_offset(
    store: ControlStore, limit: int, offset: int, expected: list[str]
) -> None:
    await _create_all(store, *(assistant(f"a{i}") for i in range(5)))

    found = await store.search_assistants(None, {}, None, Page(limit=limit, offset=offset, sort_order="asc"))

    assert _names(found) == expected
    assert await store.count_assistants(None, {}, None) == 5  # the count ignores paging


@pytest.mark.parametrize(
    ("sort_by", "sort_order", "expected"),
    [
        pytest.param(None, "desc", ["carl", "adam", "bert"], id="default-created-desc"),
        pytest.param("created_at", "asc", ["bert", "adam", "carl"], id="created-asc"),
        pytest.param("created_at", "desc", ["carl", "adam", "bert"], id="created-desc"),
        pytest.param("name", "asc", ["adam", "bert", "carl"], id="name-asc"),
        pytest.param("name", "desc", ["carl", "bert", "adam"], id="name-desc"),
    ],
)
async def test_search_sort(
    store: ControlStore, sort_by: str | None, sort_order: str, expected: list[str]
) -> None:
    await _create_all(store, assistant("bert"), assistant("adam"), assistant("carl"))

    found = await store.search_assistants(None, {}, None, Page(sort_by=sort_by, sort_order=sort_order))

    assert _names(found) == expected


async def test_sort_by_updated_at_follows_updates(store: ControlStore) -> None:
    first, _ = await _create_all(store, assistant("first"), assistant("second"))
    await store.update_assistant(first.assistant_id, {"description": "touched"})

    found = await store.search_assistants(None, {}, None, Page(sort_by="updated_at", sort_order="desc"))

    assert _names(found) == ["first", "second"]


async def test_deleted_assistant_is_gone(store: ControlStore) -> None:
    kept, doomed = await _create_all(store, assistant("kept"), assistant("doomed"))
    await store.update_assistant(doomed.assistant_id, {"name": "doomed-v2"})

    await store.delete_assistant(doomed.assistant_id)

    with pytest.raises(errors.AssistantNotFound):
        await store.get_assistant(doomed.assistant_id)
    with pytest.raises(errors.AssistantNotFound):
        await store.list_assistant_versions(doomed.assistant_id, {}, Page())
    assert _names(await store.search_assistants(None, {}, None, Page())) == ["kept"]
    assert await store.count_assistants(None, {}, None) == 1
    assert (await store.get_assistant(kept.assistant_id)).name == "kept"
