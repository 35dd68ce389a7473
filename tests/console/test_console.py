"""The web console at /console, in a real headless Chromium (Debian's, driven by Playwright), against
``graphrun dev`` serving the example agent on its offline model: chat with tokens streaming in,
approving, editing and rejecting an email from the card of LangChain's human-in-the-loop interrupt (and
answering an interrupt with a ``response_schema``), forking a thread from its history, the runs and metrics
panes, and the API-key field with auth on. Screenshots are kept in ``test-artifacts/console/``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from tests.acceptance._support import EXAMPLE_CONFIG, OFFLINE_ENV, human, offline_server
from tests.harness.embedded import Server
from tests.harness.sdk import as_dict
from tests.harness.targets import production
from tests.harness.waiting import eventually

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(180)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
CHROMIUM = os.environ.get("GRAPHRUN_TEST_CHROMIUM", "/usr/bin/chromium")
HAVE_CHROMIUM = Path(CHROMIUM).exists()
KEY = "k-console-0123456789abcdef"
SCHEMA_CONFIG = Path(__file__).resolve().parent / "langgraph.json"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with offline_server(tmp_path_factory, "console", {}) as srv:
        yield srv


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        pytest.skip(
            f"no Chromium at {CHROMIUM}: scripts/test installs Debian's chromium where it may (root, apt)"
        )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            await launched.close()


async def _page(browser: Browser, url: str) -> Page:
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.goto(f"{url}/console")
    await expect(page.locator("#assistant option")).not_to_have_count(0)
    return page


async def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def _send(page: Page, text: str) -> None:
    await page.fill("#input", text)
    await page.click("#send")


async def test_chat_streams_the_answer_into_the_thread(server: Server, browser: Browser) -> None:
    page = await _page(browser, server.url)
    streamed: list[str] = []
    await page.expose_function("recordChunk", lambda text: streamed.append(text))
    await page.evaluate(
        """() => new MutationObserver(() => {
            const ai = document.querySelectorAll('#messages .message.ai');
            if (ai.length) window.recordChunk(ai[ai.length - 1].textContent || "");
        }).observe(document.getElementById('messages'),
                   {childList: true, subtree: true, characterData: true})"""
    )

    await _send(page, "hello there")

    answer = page.locator(".message.ai").last
    await expect(answer).to_contain_text("You said: hello there")
    await expect(page.locator("#thread-title")).to_contain_text("Thread ")
    await expect(page.locator("#runs .status").first).to_have_text("success")
    await expect(page.locator("#metrics")).to_contain_text("success")
    await _shot(page, "chat")
    # The answer arrived in pieces: the AI bubble showed a beginning of the answer before all of it.
    final = (await answer.inner_text()).strip()
    partial = [t for t in streamed if t.strip() and len(t.strip()) < len(final)]
    assert partial, streamed
    thread_id = (await page.locator("#thread-title").inner_text()).removeprefix("Thread ").strip()
    async with get_client(url=server.url, api_key=None) as client:
        state: Any = await client.threads.get_state(thread_id)
    assert [m["type"] for m in state["values"]["messages"]] == ["human", "ai"]


async def _email_card(page: Page, address: str) -> Locator:
    """Ask for an email to ``address``: the run stops at LangChain's human-in-the-loop interrupt, and its
    card shows the action with the decisions its review config allows."""
    await _send(page, f"Send an email to {address} about lunch")
    card = page.locator("#interrupts .card")
    await expect(card.locator(".action[data-action=send_email]")).to_have_count(1)
    await expect(card).to_contain_text("wants to send this email")
    await expect(card.locator("button")).to_have_text(["Approve", "Edit", "Reject"])
    await expect(card.locator("textarea")).to_have_value(re.compile(re.escape(address)))
    return card


async def test_approving_an_email_from_its_card(server: Server, browser: Browser) -> None:
    page = await _page(browser, server.url)

    card = await _email_card(page, "bob@example.com")
    await _shot(page, "approve-card")
    await card.locator("button[data-decision=approve]").click()

    await expect(page.locator("#interrupts .card")).to_have_count(0)
    await expect(page.locator(".message.tool").last).to_contain_text("Email sent to bob@example.com")
    await expect(page.locator(".message.ai").last).to_contain_text("Done")
    await _shot(page, "approved")


async def test_editing_an_email_from_its_card_sends_the_edited_one(server: Server, browser: Browser) -> None:
    page = await _page(browser, server.url)

    card = await _email_card(page, "dan@example.com")
    edited = {"to": "erin@example.com", "subject": "Lunch moved", "body": "Lunch is at one."}
    await card.locator("textarea").fill(json.dumps(edited))
    await card.locator("button[data-decision=edit]").click()

    await expect(page.locator("#interrupts .card")).to_have_count(0)
    await expect(page.locator(".message.tool").last).to_contain_text("Email sent to erin@example.com")
    thread_id = await page.evaluate("state.threadId")
    async with get_client(url=server.url, api_key=None) as client:
        sent = await client.store.search_items(("outbox", thread_id))
    assert [{k: item["value"][k] for k in edited} for item in sent["items"]] == [edited]
    await _shot(page, "edited")


async def test_rejecting_an_email_with_a_reason(server: Server, browser: Browser) -> None:
    page = await _page(browser, server.url)

    card = await _email_card(page, "carol@example.com")
    await card.locator("input.reason").fill("not today")
    await card.locator("button[data-decision=reject]").click()

    await expect(page.locator("#interrupts .card")).to_have_count(0)
    await expect(page.locator(".message.tool").last).to_contain_text("not today")
    await expect(page.locator(".message.ai").last).to_contain_text("did not go ahead")
    await _shot(page, "rejected")


@pytest.fixture(scope="module")
def schema_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with offline_server(tmp_path_factory, "console-schema", config=SCHEMA_CONFIG) as srv:
        yield srv


@pytest.mark.parametrize(
    ("decision", "outcome"),
    [("approve", "published Hello"), ("edit", "published Hello again"), ("reject", "rejected: too soon")],
)
async def test_an_interrupt_with_a_response_schema_gets_its_decisions_as_buttons(
    schema_server: Server, browser: Browser, decision: str, outcome: str
) -> None:
    async with get_client(url=schema_server.url, api_key=None) as client:
        thread_id = (await client.threads.create())["thread_id"]
        await client.runs.wait(thread_id, "reviewed", input={"draft": {"title": "Hello"}})
        page = await _page(browser, schema_server.url)
        await page.locator(f"#threads li[data-thread-id='{thread_id}']").click()
        card = page.locator("#interrupts .card")
        await expect(card).to_contain_text("Publish this post?")
        await expect(card.locator("button")).to_have_text(["Approve", "Edit", "Reject"])
        await card.locator("textarea").fill('{"title": "Hello again"}')
        await card.locator("input.reason").fill("too soon")
        await card.locator(f"button[data-decision={decision}]").click()

        await expect(page.locator("#interrupts .card")).to_have_count(0)
        state = await eventually(
            lambda: client.threads.get_state(thread_id), lambda s: not s["next"], what="the run to end"
        )
    assert as_dict(state["values"])["outcome"] == outcome


async def test_forking_a_thread_from_its_history(server: Server, browser: Browser) -> None:
    page = await _page(browser, server.url)
    await _send(page, "first message")
    await expect(page.locator(".message.ai").last).to_contain_text("You said: first message")
    await _send(page, "second message")
    await expect(page.locator(".message.ai").last).to_contain_text("You said: second message")
    thread_id = (await page.locator("#thread-title").inner_text()).removeprefix("Thread ").strip()

    # The checkpoint after the first answer: two messages, nothing next.
    after_first = page.locator("#history li", has_text="· 2 messages").first
    await after_first.locator("button.fork").click()
    await expect(page.locator("#fork-banner")).to_contain_text("2 messages")
    await _send(page, "another second")
    await expect(page.locator(".message.ai").last).to_contain_text("You said: another second")
    await _shot(page, "forked")

    async with get_client(url=server.url, api_key=None) as client:
        state: Any = await client.threads.get_state(thread_id)
    contents = [m["content"] for m in state["values"]["messages"] if m["type"] == "human"]
    assert contents == ["first message", "another second"]  # the fork left "second message" behind


async def test_threads_are_listed_and_searched(server: Server, browser: Browser) -> None:
    async with get_client(url=server.url, api_key=None) as client:
        tagged: Any = await client.threads.create(metadata={"team": "console-search"})
    page = await _page(browser, server.url)

    await page.fill("#thread-search", "team=console-search")

    await expect(page.locator("#threads li")).to_have_count(1)
    await expect(page.locator("#threads li")).to_contain_text("(no messages yet)")
    await expect(page.locator("#threads li")).to_have_attribute("title", tagged["thread_id"])
    await page.locator("#threads li").click()
    await expect(page.locator("#thread-title")).to_contain_text(tagged["thread_id"])


async def test_threads_made_together_are_told_apart_and_the_page_has_an_icon(
    server: Server, browser: Browser
) -> None:
    """Time-ordered ids begin alike: the list shows each thread's first message and its time to the
    second, the full id on hover."""
    ids = []
    async with get_client(url=server.url, api_key=None) as client:
        for word in ("apples", "pears"):
            thread: Any = await client.threads.create(metadata={"team": "console-apart"})
            await client.runs.wait(thread["thread_id"], "agent", input=human(f"say {word}"))
            ids.append(thread["thread_id"])
    page = await _page(browser, server.url)

    await page.fill("#thread-search", "team=console-apart")

    items = page.locator("#threads li")
    await expect(items).to_have_count(2)
    for thread_id, word in zip(ids, ("apples", "pears"), strict=True):
        item = page.locator(f'#threads li[data-thread-id="{thread_id}"]')
        await expect(item).to_have_attribute("title", thread_id)
        await expect(item.locator(".first-message")).to_have_text(f"say {word}")
        await expect(item).to_contain_text(re.compile(r"\d{2}:\d{2}:\d{2}"))
    await items.first.click()
    await expect(page.locator("#runs tr").first).to_have_attribute("title", re.compile("^[0-9a-f-]{36}$"))
    icon = await page.locator("link[rel=icon]").get_attribute("href")
    assert icon
    answer = await page.request.get(f"{server.url}/console/{icon}")
    assert answer.status == 200
    assert "svg" in answer.headers["content-type"]


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The agent's model takes 20 s to answer (graphrun.testing's injected latency)."""
    with offline_server(
        tmp_path_factory, "console-slow", {"GRAPHRUN_FAULTS": "latency_ms=20000-20000"}
    ) as srv:
        yield srv


async def test_a_running_run_is_listed_and_cancelled(slow_server: Server, browser: Browser) -> None:
    page = await _page(browser, slow_server.url)
    await _send(page, "take your time")
    await expect(page.locator("#thread-title")).to_contain_text("Thread ")
    thread_id = (await page.locator("#thread-title").inner_text()).removeprefix("Thread ").strip()

    # The page lists runs after each change; look again while the run is under way.
    await page.locator(f'#threads li[data-thread-id="{thread_id}"]').click()
    row = page.locator("#runs tr").first
    await expect(row.locator(".status")).to_have_text(re.compile("pending|running"))
    await row.locator("button", has_text="cancel").click()

    await expect(page.locator("#runs tr").first.locator(".status")).to_have_text(
        "interrupted", timeout=15_000
    )
    await expect(page.locator("#error")).to_be_empty()  # the cancel's empty 202 is no error
    await _shot(page, "cancelled")


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with offline_server(tmp_path_factory, "console-auth", {"GRAPHRUN_API_KEYS": f"alice={KEY}"}) as srv:
        yield srv


async def test_with_auth_on_the_page_loads_and_works_once_the_key_is_given(
    keyed_server: Server, browser: Browser
) -> None:
    page = await browser.new_page()
    await page.goto(f"{keyed_server.url}/console")

    await expect(page.locator("#error")).to_contain_text("401")
    await page.fill("#api-key", KEY)
    await page.dispatch_event("#api-key", "change")
    await expect(page.locator("#assistant option")).not_to_have_count(0)
    await expect(page.locator("#error")).to_have_text("")
    await _send(page, "hello with a key")
    await expect(page.locator(".message.ai").last).to_contain_text("You said: hello with a key")
    await _shot(page, "with-key")


async def test_in_production_the_summary_comes_from_stats(
    tmp_path_factory: pytest.TempPathFactory, browser: Browser
) -> None:
    """``graphrun api`` beside ``graphrun worker``: the API process runs no graphs, so its /metrics
    counts no runs; the console's summary then shows the control store's /stats."""
    with production(tmp_path_factory.mktemp("console-production"), EXAMPLE_CONFIG, OFFLINE_ENV) as deployment:
        async with get_client(url=deployment.url, api_key=None) as client:
            hello: Any = {"messages": [{"role": "human", "content": "hi"}]}
            thread = await client.threads.create()
            await client.runs.wait(thread["thread_id"], "agent", input=hello)

        page = await _page(browser, deployment.url)
        await expect(page.locator("#metrics")).to_contain_text("runs (24 h): success 1")
        await _shot(page, "production-summary")
