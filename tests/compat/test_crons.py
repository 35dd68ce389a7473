"""Crons through ``client.crons``, against both modes: create (for a thread, and stateless), fire,
search, count, update, delete, and bad requests refused with nothing written.

What a client observes was read from the official server (langgraph-api 0.16.7): the cron's fields,
``next_run_date`` from the schedule in its timezone, a run's ``config.configurable.cron_id``, 404 for
an unknown cron, 400 for an empty patch, 422 for a bad schedule or timezone.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from tests.harness.sdk import as_dict, status_of, system_assistant_id
from tests.harness.waiting import eventually

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(120)]

CONFIG = Path(__file__).resolve().parents[1] / "acceptance" / "langgraph.json"
SERVER_ENV = {"GRAPHRUN_CRON_INTERVAL_S": "0.1"}
EVERY_SECOND = "* * * * * *"  # croniter's sixth field is seconds
NEVER_SOON = "0 0 1 1 *"  # midnight on January 1st


def _time(value: Any) -> datetime:
    assert isinstance(value, str), value
    return datetime.fromisoformat(value)


async def _runs(client: LangGraphClient, thread_id: str) -> list[dict[str, Any]]:
    return [as_dict(r) for r in await client.runs.list(thread_id, limit=1000)]


async def _missing(call: Any) -> int:
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await call
    return status_of(refused.value)


async def test_a_thread_cron_runs_on_its_thread_each_tick_until_deleted(client: LangGraphClient) -> None:
    thread_id = (await client.threads.create())["thread_id"]

    cron: Any = await client.crons.create_for_thread(
        thread_id, "counter", schedule=EVERY_SECOND, input={}, metadata={"job": "count"}
    )

    assert cron["thread_id"] == thread_id
    assert cron["assistant_id"] == system_assistant_id("counter")
    assert cron["schedule"] == EVERY_SECOND
    assert cron["enabled"] is True
    assert cron["metadata"] == {"job": "count"}
    assert cron["payload"]["input"] == {}
    assert _time(cron["next_run_date"]) > _time(cron["created_at"])
    runs = await eventually(
        lambda: _runs(client, thread_id), lambda found: len(found) >= 2, what="two ticks", timeout_s=30
    )
    for run in runs:
        assert run["kwargs"]["config"]["configurable"]["cron_id"] == cron["cron_id"]
        assert run["metadata"]["job"] == "count"
    await eventually(
        lambda: client.threads.get_state(thread_id),
        lambda state: as_dict(state["values"]).get("count", 0) >= 4,
        what="the runs to execute",
    )

    await client.crons.delete(cron["cron_id"])

    assert await _missing(client.crons.delete(cron["cron_id"])) == 404
    await asyncio.sleep(0.5)  # a tick being written as it was deleted lands by now
    settled = len(await _runs(client, thread_id))
    await asyncio.sleep(1.5)
    assert len(await _runs(client, thread_id)) == settled


async def test_a_stateless_cron_runs_on_a_new_thread_each_tick(client: LangGraphClient) -> None:
    assistant = await client.assistants.create("counter", name="stateless cron")
    aid = assistant["assistant_id"]

    cron: Any = await client.crons.create(aid, schedule=EVERY_SECOND, input={}, on_run_completed="keep")

    assert cron["thread_id"] is None
    assert cron["on_run_completed"] == "keep"
    threads = await eventually(
        lambda: client.threads.search(metadata={"assistant_id": aid}, limit=100),
        lambda found: len(found) >= 2,
        what="two kept threads",
        timeout_s=30,
    )
    assert len({t["thread_id"] for t in threads}) == len(threads)
    await client.crons.delete(cron["cron_id"])


async def test_search_count_and_select(client: LangGraphClient) -> None:
    thread_id = (await client.threads.create())["thread_id"]
    assistant = await client.assistants.create("counter", name="searched")
    aid = assistant["assistant_id"]
    tag = str(uuid.uuid4())
    on_thread: Any = await client.crons.create_for_thread(
        thread_id, aid, schedule=NEVER_SOON, metadata={"tag": tag}
    )
    stateless: Any = await client.crons.create(aid, schedule=NEVER_SOON, metadata={"tag": tag}, enabled=False)

    found = await client.crons.search(assistant_id=aid)
    assert [c["cron_id"] for c in found] == [stateless["cron_id"], on_thread["cron_id"]]
    ascending = await client.crons.search(assistant_id=aid, sort_by="created_at", sort_order="asc")
    assert [c["cron_id"] for c in ascending] == [on_thread["cron_id"], stateless["cron_id"]]
    assert [c["cron_id"] for c in await client.crons.search(thread_id=thread_id)] == [on_thread["cron_id"]]
    assert [c["cron_id"] for c in await client.crons.search(assistant_id=aid, enabled=False)] == [
        stateless["cron_id"]
    ]
    paged = await client.crons.search(assistant_id=aid, limit=1, offset=1)
    assert [c["cron_id"] for c in paged] == [on_thread["cron_id"]]
    selected = await client.crons.search(metadata={"tag": tag}, select=["cron_id", "enabled"])
    assert sorted(map(sorted, selected)) == [["cron_id", "enabled"]] * 2
    assert await client.crons.count(assistant_id=aid) == 2
    assert await client.crons.count(thread_id=thread_id) == 1
    assert await client.crons.count(metadata={"tag": tag}) == 2
    assert await client.crons.count(metadata={"tag": "none"}) == 0


async def test_updating_a_cron(client: LangGraphClient, http: httpx.AsyncClient) -> None:
    cron: Any = await client.crons.create(
        "counter",
        schedule=NEVER_SOON,
        input={"count": 1},
        metadata={"a": 1},
        end_time=datetime(2099, 1, 1, tzinfo=UTC),
    )

    updated: Any = await client.crons.update(
        cron["cron_id"], schedule="*/5 * * * *", metadata={"b": 2}, input={"count": 2}, end_time=None
    )

    assert updated["schedule"] == "*/5 * * * *"
    assert _time(updated["next_run_date"]) - datetime.now(UTC) <= timedelta(minutes=5, seconds=5)
    assert updated["metadata"] == {"a": 1, "b": 2}
    assert updated["payload"]["input"] == {"count": 2}
    assert updated["end_time"] is None
    disabled: Any = await client.crons.update(cron["cron_id"], enabled=False, timezone="Asia/Tokyo")
    assert disabled["enabled"] is False
    assert disabled["timezone"] == "Asia/Tokyo"
    assert (await http.get(f"/runs/crons/{cron['cron_id']}")).json()["enabled"] is False
    await client.crons.delete(cron["cron_id"])


async def test_a_cron_enabled_again_goes_on_from_now(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    thread_id = (await client.threads.create())["thread_id"]
    cron: Any = await client.crons.create_for_thread(
        thread_id, "counter", schedule=EVERY_SECOND, enabled=False
    )
    await asyncio.sleep(1.5)  # its first tick passes while it is off

    enabled: Any = await client.crons.update(cron["cron_id"], enabled=True)

    assert _time(enabled["next_run_date"]) > _time(cron["next_run_date"])
    assert _time(enabled["next_run_date"]) > datetime.now(UTC) - timedelta(seconds=0.5)
    await client.crons.delete(cron["cron_id"])


async def test_a_schedule_is_read_in_its_timezone(client: LangGraphClient) -> None:
    cron: Any = await client.crons.create("counter", schedule="30 9 * * *", timezone="America/New_York")

    nine_thirty = _time(cron["next_run_date"]).astimezone(UTC)
    assert (nine_thirty.hour, nine_thirty.minute) in {(13, 30), (14, 30)}  # EDT or EST
    assert cron["timezone"] == "America/New_York"
    await client.crons.delete(cron["cron_id"])


async def test_a_six_field_schedule_reads_seconds_last_as_the_official_server(
    client: LangGraphClient,
) -> None:
    """``*/5 * * * * *`` is every second of every fifth minute, not every five seconds: the official
    server reads it with croniter's default (seconds last; it answered ``next_run_date`` 23:45:00 for a
    cron made at 23:43:26)."""
    cron: Any = await client.crons.create("counter", schedule="*/5 * * * * *")

    made, tick = _time(cron["created_at"]), _time(cron["next_run_date"])
    if made.minute % 5 == 0:  # inside a fifth minute: the next second
        expected = made.replace(microsecond=0) + timedelta(seconds=1)
    else:
        expected = made.replace(second=0, microsecond=0) + timedelta(minutes=5 - made.minute % 5)
    assert tick == expected
    await client.crons.delete(cron["cron_id"])


async def test_a_disabled_or_ended_cron_does_not_fire(client: LangGraphClient) -> None:
    threads = [(await client.threads.create())["thread_id"] for _ in range(2)]
    disabled: Any = await client.crons.create_for_thread(
        threads[0], "counter", schedule=EVERY_SECOND, enabled=False
    )
    ended: Any = await client.crons.create_for_thread(
        threads[1], "counter", schedule=EVERY_SECOND, end_time=datetime.now(UTC) - timedelta(seconds=1)
    )

    await asyncio.sleep(2.5)

    for thread_id in threads:
        assert await _runs(client, thread_id) == []
    for cron in (disabled, ended):
        await client.crons.delete(cron["cron_id"])


async def test_a_cron_goes_with_its_thread(client: LangGraphClient, http: httpx.AsyncClient) -> None:
    thread_id = (await client.threads.create())["thread_id"]
    cron: Any = await client.crons.create_for_thread(thread_id, "counter", schedule=NEVER_SOON)

    await client.threads.delete(thread_id)

    assert (await http.get(f"/runs/crons/{cron['cron_id']}")).status_code == 404


async def test_bad_cron_requests_are_refused_and_nothing_is_written(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    before = await client.crons.count()
    thread_id = (await client.threads.create())["thread_id"]
    cases: list[tuple[str, dict[str, Any], int]] = [
        ("/runs/crons", {"assistant_id": "counter", "schedule": "every day"}, 422),
        ("/runs/crons", {"assistant_id": "counter", "schedule": "0 0 31 2 *"}, 422),  # February 31st
        ("/runs/crons", {"assistant_id": "counter", "schedule": "0 0 1 1 * 0 2027"}, 422),  # a year field
        (
            "/runs/crons",
            {"assistant_id": "counter", "schedule": "* * * * *", "end_time": "0001-01-01T00:00:00+05:00"},
            422,
        ),
        (
            "/runs/crons",
            {"assistant_id": "counter", "schedule": "* * * * *", "timezone": "Mars/Olympus"},
            422,
        ),
        ("/runs/crons", {"assistant_id": "nope", "schedule": "* * * * *"}, 422),
        ("/runs/crons", {"assistant_id": str(uuid.uuid4()), "schedule": "* * * * *"}, 404),
        ("/runs/crons", {"schedule": "* * * * *"}, 422),
        ("/runs/crons", {"assistant_id": "counter", "schedule": "* * * * *", "stream_mode": "nope"}, 422),
        ("/runs/crons", {"assistant_id": "counter", "schedule": "* * * * *", "on_run_completed": "x"}, 422),
        ("/runs/crons", {"assistant_id": "counter", "schedule": "* * * * *", "webhook": "ftp://x"}, 422),
        (f"/threads/{uuid.uuid4()}/runs/crons", {"assistant_id": "counter", "schedule": "* * * * *"}, 404),
        (
            f"/threads/{thread_id}/runs/crons",
            {"assistant_id": "counter", "schedule": "* * * * *", "on_run_completed": "keep"},
            422,
        ),
        ("/runs/crons/search", {"assistant_id": "counter"}, 422),
        ("/runs/crons/search", {"sort_by": "schedule"}, 422),
        ("/runs/crons/count", {"thread_id": "not-a-uuid"}, 422),
    ]
    for path, body, status in cases:
        response = await http.post(path, json=body)
        assert response.status_code == status, (path, body, response.text)
        assert response.json()["detail"], (path, body)
    assert await client.crons.count() == before

    cron: Any = await client.crons.create("counter", schedule=NEVER_SOON)
    empty = await http.patch(f"/runs/crons/{cron['cron_id']}", json={})
    assert empty.status_code == 400
    bad_schedule = await http.patch(f"/runs/crons/{cron['cron_id']}", json={"schedule": "nope"})
    assert bad_schedule.status_code == 422
    far = await http.patch(f"/runs/crons/{cron['cron_id']}", json={"end_time": "9999-12-31T23:59:59-05:00"})
    assert far.status_code == 422
    on_thread: Any = await client.crons.create_for_thread(thread_id, "counter", schedule=NEVER_SOON)
    keep = await http.patch(f"/runs/crons/{on_thread['cron_id']}", json={"on_run_completed": "keep"})
    assert keep.status_code == 422
    assert "stateless" in keep.json()["detail"]
    await client.crons.delete(on_thread["cron_id"])
    assert (await http.get(f"/runs/crons/{cron['cron_id']}")).json()["schedule"] == NEVER_SOON
    unknown = str(uuid.uuid4())
    assert (await http.get(f"/runs/crons/{unknown}")).status_code == 404
    assert (await http.patch(f"/runs/crons/{unknown}", json={"enabled": False})).status_code == 404
    assert (await http.delete(f"/runs/crons/{unknown}")).status_code == 404
    assert (await http.get("/runs/crons/not-a-uuid")).status_code == 422
    await client.crons.delete(cron["cron_id"])
