"""The long-term memory store: put/get/delete items, search by namespace prefix, list namespaces."""

from __future__ import annotations

import pytest
from langgraph_sdk.client import LangGraphClient

from tests.harness.waiting import eventually

from ._support import unique

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(60)]


async def _seed(client: LangGraphClient, marker: str) -> None:
    await client.store.put_item(["users", marker, "prefs"], "k1", {"theme": "dark", "n": 1})
    await client.store.put_item(["users", marker, "prefs"], "k2", {"theme": "light", "n": 2})
    await client.store.put_item(["users", marker, "notes"], "k3", {"theme": "dark", "n": 3})


async def test_put_and_get_item(client: LangGraphClient) -> None:
    marker = unique()
    await client.store.put_item(["users", marker], "profile", {"name": "ann", "tags": ["a", "b"]})

    item = await client.store.get_item(["users", marker], "profile")

    assert item["namespace"] == ["users", marker]
    assert item["key"] == "profile"
    assert item["value"] == {"name": "ann", "tags": ["a", "b"]}
    assert item["created_at"]
    assert item["updated_at"]


async def test_put_replaces_the_value(client: LangGraphClient) -> None:
    marker = unique()
    await client.store.put_item(["users", marker], "profile", {"name": "ann"})
    await client.store.put_item(["users", marker], "profile", {"name": "bob"})

    assert (await client.store.get_item(["users", marker], "profile"))["value"] == {"name": "bob"}
    assert len((await client.store.search_items(["users", marker]))["items"]) == 1


async def test_put_with_ttl(client: LangGraphClient) -> None:
    marker = unique()
    await client.store.put_item(["ttl", marker], "k", {"v": 1}, ttl=5)  # minutes

    item = await client.store.get_item(["ttl", marker], "k")
    assert item["value"] == {"v": 1}
    refreshed = await client.store.get_item(["ttl", marker], "k", refresh_ttl=True)
    assert refreshed["value"] == {"v": 1}


async def test_an_item_expires_after_its_ttl(client: LangGraphClient) -> None:
    # tests/acceptance/langgraph.json sweeps every 0.02 min (1.2 s); this item lives 0.03 min (1.8 s).
    marker = unique()
    await client.store.put_item(["ttl", marker], "k", {"v": 1}, ttl=0.03)  # type: ignore[arg-type]
    await client.store.put_item(["ttl", marker], "keep", {"v": 2})

    await eventually(
        lambda: client.store.get_item(["ttl", marker], "k"),
        lambda item: item is None,
        timeout_s=20,
        interval_s=0.5,
        what="the item to expire",
    )
    kept = await client.store.get_item(["ttl", marker], "keep")
    assert kept["value"] == {"v": 2}


async def test_search_items_by_prefix_filter_limit_offset(client: LangGraphClient) -> None:
    marker = unique()
    await _seed(client, marker)

    everything = (await client.store.search_items(["users", marker]))["items"]
    assert sorted(i["key"] for i in everything) == ["k1", "k2", "k3"]
    assert all(i["namespace"][:2] == ["users", marker] for i in everything)

    prefs = (await client.store.search_items(["users", marker, "prefs"]))["items"]
    assert sorted(i["key"] for i in prefs) == ["k1", "k2"]

    dark = (await client.store.search_items(["users", marker], filter={"theme": "dark"}))["items"]
    assert sorted(i["key"] for i in dark) == ["k1", "k3"]

    first = (await client.store.search_items(["users", marker], limit=1, offset=0))["items"]
    second = (await client.store.search_items(["users", marker], limit=1, offset=1))["items"]
    third = (await client.store.search_items(["users", marker], limit=1, offset=2))["items"]
    beyond = (await client.store.search_items(["users", marker], limit=1, offset=3))["items"]
    pages = [p[0]["key"] for p in (first, second, third)]
    assert sorted(pages) == ["k1", "k2", "k3"]
    assert beyond == []

    assert (await client.store.search_items(["users", unique()]))["items"] == []


async def test_list_namespaces_with_prefix_and_max_depth(client: LangGraphClient) -> None:
    marker = unique()
    await _seed(client, marker)

    listed = await client.store.list_namespaces(prefix=["users", marker])
    assert sorted(listed["namespaces"]) == [["users", marker, "notes"], ["users", marker, "prefs"]]

    truncated = await client.store.list_namespaces(prefix=["users", marker], max_depth=2)
    assert truncated["namespaces"] == [["users", marker]]


async def test_delete_item(client: LangGraphClient) -> None:
    marker = unique()
    await _seed(client, marker)

    await client.store.delete_item(["users", marker, "prefs"], "k1")

    # The official server answers a missing item with 200 and a null body (langgraph_api.api.store.get_item:
    # `if result is None: return ApiResponse(None)`), which the SDK returns as None; it does not answer 404.
    assert await client.store.get_item(["users", marker, "prefs"], "k1") is None
    remaining = (await client.store.search_items(["users", marker]))["items"]
    assert sorted(i["key"] for i in remaining) == ["k2", "k3"]


async def test_get_missing_item_is_null(client: LangGraphClient) -> None:
    r = await client.http.client.get(
        "/store/items", params={"namespace": f"users.{unique()}", "key": "nothing"}
    )
    assert r.status_code == 200
    assert r.json() is None


async def test_delete_missing_item_is_not_an_error(client: LangGraphClient) -> None:
    await client.store.delete_item(["users", unique()], "nothing")
