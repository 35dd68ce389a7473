"""The Redis saver on a Redis database other than 0: RediSearch indexes only database 0, so the stock
saver dies at start-up with a raw ``RedisSearchError``; graphrun stops first with one line that says
why and what to use (docs/savers.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from langgraph.checkpoint.redis.aio import AsyncRedisSaver
from redis.asyncio import Redis
from redisvl.exceptions import RedisSearchError  # type: ignore[import-untyped]

from graphrun.errors import ConfigError
from graphrun.savers import open_persistence
from graphrun.settings import Settings


def _database_3() -> str:
    uri = os.environ.get("GRAPHRUN_TEST_REDIS_STACK_URI")
    if not uri:
        pytest.fail("GRAPHRUN_TEST_REDIS_STACK_URI is not set: run the tests through scripts/services")
    return uri.rsplit("/", 1)[0] + "/3"


async def test_the_stock_redis_saver_cannot_index_another_database() -> None:
    """Why graphrun checks: fails (the saver sets up) the day RediSearch indexes other databases."""
    client: Redis = Redis.from_url(_database_3())
    try:
        with pytest.raises(RedisSearchError, match="Cannot create index on db != 0"):
            async with AsyncRedisSaver(redis_client=client, checkpoint_prefix="db3-checkpoint"):
                pass
    finally:
        await client.aclose()


@pytest.mark.parametrize("which", ["checkpointer", "store"])
async def test_a_redis_saver_on_another_database_is_refused_in_one_line(which: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, **{which: "redis", f"{which}_uri": _database_3()})  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as refused:
        async with open_persistence(settings):
            pass
    message = refused.value.message
    assert "is database 3" in message
    assert "work only in database 0: end the URI with /0" in message
    assert "\n" not in message
