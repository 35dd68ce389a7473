"""Assistants: a system assistant per graph, CRUD with versions, search and count, graph and schema views."""

from __future__ import annotations

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from tests.harness.sdk import as_dict, body_text, status_of, system_assistant_id

from ._support import GRAPH_IDS, human, unique

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(60)]


async def test_one_system_assistant_per_graph(client: LangGraphClient) -> None:
    system = await client.assistants.search(metadata={"created_by": "system"}, limit=100)

    assert sorted(a["graph_id"] for a in system) == sorted(GRAPH_IDS)
    for assistant in system:
        # Official ids: uuid5(NAMESPACE_GRAPH, graph_id) (reference notes; langgraph_api.graph).
        assert assistant["assistant_id"] == system_assistant_id(assistant["graph_id"])
        assert assistant["metadata"] == {"created_by": "system"}
        assert assistant["version"] == 1
    assert await client.assistants.count(metadata={"created_by": "system"}) == len(GRAPH_IDS)


async def test_system_assistant_by_id_and_by_graph_id(client: LangGraphClient) -> None:
    by_id = await client.assistants.get(system_assistant_id("echo"))
    assert by_id["graph_id"] == "echo"
    assert by_id["metadata"] == {"created_by": "system"}

    # The graph id is accepted wherever an assistant id is, in runs too (reference notes).
    out_by_graph = as_dict(await client.runs.wait(None, "echo", input=human("by graph")))
    out_by_id = as_dict(await client.runs.wait(None, system_assistant_id("echo"), input=human("by id")))
    assert out_by_graph["messages"][-1]["content"] == "echo: by graph"
    assert out_by_id["messages"][-1]["content"] == "echo: by id"


async def test_create_get_update_versions_set_latest_delete(client: LangGraphClient) -> None:
    marker = unique()
    created = await client.assistants.create(
        "factory", config={"configurable": {"prefix": "hey"}}, metadata={"suite": marker}, name="mine"
    )
    aid = created["assistant_id"]
    assert aid != system_assistant_id("factory")
    assert created["graph_id"] == "factory"
    assert created["name"] == "mine"
    assert created["version"] == 1
    assert created["metadata"] == {"suite": marker}
    assert created["config"]["configurable"] == {"prefix": "hey"}

    fetched = await client.assistants.get(aid)
    assert fetched["assistant_id"] == aid
    assert fetched["name"] == "mine"
    assert fetched["version"] == 1

    # An update makes a new version; metadata is merged into the previous one (official inmem ops.patch).
    updated = await client.assistants.update(aid, metadata={"k": "v"}, name="renamed")
    assert updated["version"] == 2
    assert updated["name"] == "renamed"
    assert updated["metadata"] == {"suite": marker, "k": "v"}
    assert (await client.assistants.get(aid))["version"] == 2

    versions = await client.assistants.get_versions(aid)
    assert [(v["version"], v["name"]) for v in versions] == [(2, "renamed"), (1, "mine")]  # newest first

    latest = await client.assistants.set_latest(aid, 1)
    assert latest["version"] == 1
    assert latest["name"] == "mine"
    assert latest["metadata"] == {"suite": marker}
    again = await client.assistants.get(aid)
    assert (again["version"], again["name"]) == (1, "mine")

    await client.assistants.delete(aid)
    with pytest.raises(httpx.HTTPStatusError) as excinfo:
        await client.assistants.get(aid)
    assert status_of(excinfo.value) == 404
    assert await client.assistants.count(metadata={"suite": marker}) == 0


async def test_search_and_count_by_metadata_and_graph_id(client: LangGraphClient) -> None:
    marker = unique()
    a1 = await client.assistants.create("counter", metadata={"suite": marker, "kind": "x"}, name="c1")
    a2 = await client.assistants.create("counter", metadata={"suite": marker, "kind": "y"}, name="c2")
    a3 = await client.assistants.create("echo", metadata={"suite": marker, "kind": "x"}, name="e1")

    mine = await client.assistants.search(metadata={"suite": marker}, limit=100)
    assert {a["assistant_id"] for a in mine} == {a1["assistant_id"], a2["assistant_id"], a3["assistant_id"]}

    kind_x = await client.assistants.search(metadata={"suite": marker, "kind": "x"}, limit=100)
    assert {a["assistant_id"] for a in kind_x} == {a1["assistant_id"], a3["assistant_id"]}

    counters = await client.assistants.search(graph_id="counter", metadata={"suite": marker}, limit=100)
    assert {a["assistant_id"] for a in counters} == {a1["assistant_id"], a2["assistant_id"]}

    page = await client.assistants.search(metadata={"suite": marker}, limit=2, offset=0)
    rest = await client.assistants.search(metadata={"suite": marker}, limit=2, offset=2)
    assert len(page) == 2
    assert len(rest) == 1
    assert {a["assistant_id"] for a in page + rest} == {a["assistant_id"] for a in mine}

    assert await client.assistants.count(metadata={"suite": marker}) == 3
    assert await client.assistants.count(metadata={"suite": marker}, graph_id="counter") == 2
    # The system assistant of `counter` plus the two created here (and any a sibling test left behind).
    assert await client.assistants.count(graph_id="counter") >= 3


async def test_assistant_config_reaches_a_factory_graph(client: LangGraphClient) -> None:
    custom = await client.assistants.create("factory", config={"configurable": {"prefix": "hey"}})

    system_out = as_dict(await client.runs.wait(None, "factory", input={"name": "bob"}))
    custom_out = as_dict(await client.runs.wait(None, custom["assistant_id"], input={"name": "bob"}))
    run_cfg_out = as_dict(
        await client.runs.wait(
            None, "factory", input={"name": "bob"}, config={"configurable": {"prefix": "yo"}}
        )
    )

    assert system_out["greeting"] == "hello, bob"
    assert custom_out["greeting"] == "hey, bob"
    assert run_cfg_out["greeting"] == "yo, bob"


async def test_uncompiled_state_graph_is_served(client: LangGraphClient) -> None:
    # `counter` is exported as a StateGraph builder, not compiled; the server compiles it.
    out = as_dict(await client.runs.wait(None, "counter", input={"count": 0}))
    assert out == {"count": 2, "trail": ["a", "b"]}


async def test_get_graph_lists_nodes_and_edges(client: LangGraphClient) -> None:
    graph = await client.assistants.get_graph("counter")
    node_ids = {n["id"] for n in graph["nodes"]}
    edges = {(e["source"], e["target"]) for e in graph["edges"]}
    assert node_ids == {"__start__", "a", "b", "__end__"}
    assert edges == {("__start__", "a"), ("a", "b"), ("b", "__end__")}

    by_uuid = await client.assistants.get_graph(system_assistant_id("counter"))
    assert {n["id"] for n in by_uuid["nodes"]} == node_ids


async def test_get_graph_with_xray_expands_subgraphs(client: LangGraphClient) -> None:
    plain = await client.assistants.get_graph(system_assistant_id("nested"))
    xray = await client.assistants.get_graph(system_assistant_id("nested"), xray=True)

    assert {n["id"] for n in plain["nodes"]} == {"__start__", "inner", "after", "__end__"}
    xray_ids = {n["id"] for n in xray["nodes"]}
    assert {"inner:a", "inner:b", "after"} <= xray_ids
    assert "inner" not in xray_ids
    assert ("inner:a", "inner:b") in {(e["source"], e["target"]) for e in xray["edges"]}


async def test_get_schemas(client: LangGraphClient) -> None:
    schemas = await client.assistants.get_schemas(system_assistant_id("counter"))
    assert schemas["graph_id"] == "counter"
    for key in ("input_schema", "output_schema", "state_schema", "config_schema"):
        assert key in schemas, f"{key} missing"
        value = schemas[key]
        assert value is None or isinstance(value, dict), f"{key} is {value!r}"
    state_schema = schemas["state_schema"]
    assert state_schema is not None
    assert {"count", "trail"} <= set(state_schema["properties"])


async def test_get_schemas_of_a_messages_graph(client: LangGraphClient) -> None:
    # `counter` states its schema with typing.TypedDict, from which pydantic derives no input/output
    # schema on Python 3.11 (the official server answers null there too); MessagesState it can.
    schemas = await client.assistants.get_schemas(system_assistant_id("echo"))
    for key in ("input_schema", "output_schema", "state_schema"):
        schema = schemas[key]
        assert schema is not None, f"{key} is null"
        assert "messages" in schema["properties"], f"{key}: {schema}"


async def test_get_subgraphs(client: LangGraphClient) -> None:
    nested = await client.assistants.get_subgraphs(system_assistant_id("nested"))
    assert set(nested) == {"inner"}
    inner_state = nested["inner"]["state_schema"]
    assert inner_state is not None
    assert {"count", "trail"} <= set(inner_state["properties"])

    assert set(await client.assistants.get_subgraphs(system_assistant_id("nested"), namespace="inner")) == {
        "inner"
    }
    assert await client.assistants.get_subgraphs(system_assistant_id("counter")) == {}


async def test_get_unknown_assistant_is_404(client: LangGraphClient) -> None:
    with pytest.raises(httpx.HTTPStatusError) as excinfo:
        await client.assistants.get(system_assistant_id("no-such-graph"))
    assert status_of(excinfo.value) == 404


async def test_create_assistant_for_unknown_graph_is_refused(client: LangGraphClient) -> None:
    before = await client.assistants.count()
    with pytest.raises(httpx.HTTPStatusError) as excinfo:
        await client.assistants.create("no-such-graph")
    # Official: 404 "Graph 'no-such-graph' not found. Expected one of: [...]".
    assert status_of(excinfo.value) == 404
    assert "no-such-graph" in body_text(excinfo.value)
    assert await client.assistants.count() == before
