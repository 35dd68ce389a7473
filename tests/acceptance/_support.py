"""What the acceptance tests share beyond the harness (tests/harness): their graphs' config, inputs and
markers. ``conftest.py`` starts one ``graphrun dev`` per test module (tests/harness/embedded.py).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from langgraph_sdk.client import LangGraphClient

from tests.harness.embedded import Server, embedded
from tests.harness.sdk import as_dict
from tests.harness.waiting import eventually

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "langgraph.json"
GRAPH_IDS = (
    "echo",
    "counter",
    "interrupting",
    "failing",
    "slow",
    "factory",
    "nested",
    "slow_factory",
    "node_timeout",
    "tokens",
    "approval",
    "two_questions",
    "draft_and_sign",
)


def human(text: str) -> dict[str, Any]:
    """Input for the `echo` graph: one human message."""
    return {"messages": [{"role": "user", "content": text}]}


def unique() -> str:
    """A marker to put in metadata so that a test finds only what it created on the shared server."""
    return uuid4().hex


EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "agent" / "langgraph.json"
PROVIDER_ENV_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AGENT_MODEL", "OPENAI_BASE_URL")
# The example agent's model is chosen by these (examples/agent/model.py): empty, it is the offline one.
OFFLINE_ENV = dict.fromkeys(PROVIDER_ENV_VARS, "")


def offline_server(
    factory: pytest.TempPathFactory,
    name: str,
    env: dict[str, str] | None = None,
    config: Path = EXAMPLE_CONFIG,
) -> contextlib.AbstractContextManager[Server]:
    """A started server on ``config`` (the example agent by default) without provider settings in its
    environment (the agent uses the offline model), in a directory of its own, stopped on exit."""
    return embedded(factory.mktemp(name), config, env, unset_env=PROVIDER_ENV_VARS)


async def slow_steps_done(client: LangGraphClient, thread_id: str, at_least: int) -> list[int]:
    """Wait until the ``slow`` graph on a thread has checkpointed at least ``at_least`` steps; return them."""
    state = await eventually(
        lambda: client.threads.get_state(thread_id),
        lambda s: len(as_dict(s["values"]).get("done", [])) >= at_least,
        what=f"{at_least} slow steps checkpointed",
    )
    done: list[int] = as_dict(state["values"])["done"]
    return done


async def new_thread(client: LangGraphClient) -> str:
    """A new thread's id."""
    return (await client.threads.create())["thread_id"]


async def until_running(client: LangGraphClient, thread_id: str, run_id: str) -> None:
    """Wait until the run's status is ``running``."""
    await eventually(
        lambda: client.runs.get(thread_id, run_id),
        lambda run: run["status"] == "running",
        what=f"run {run_id} to be running",
    )
