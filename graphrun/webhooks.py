"""POST a finished run to the URL it gave as ``webhook``, the way the official server does.

The payload is the run (as ``GET /threads/{t}/runs/{r}`` answers it) with its final ``status``, when it
started and ended, when the webhook was sent, the thread's ``values`` at the end and the ``error`` if it
failed. A connection error, a timeout or a 5xx is retried with exponential backoff; a 4xx is not (the
receiver refused this payload, and sending it again will not change that). Every failure is logged and
none reaches the run: delivery runs in the background, after the run's outcome is recorded.

Written on httpx directly: a retry loop of a few lines, with the run's own log context, is simpler to
follow than a general retry library.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime

import httpx
import structlog

from graphrun import encoding
from graphrun.models import Run, RunOutcome, run_json, utcnow
from graphrun.settings import Settings
from graphrun.types import Json

log = structlog.get_logger("graphrun.webhooks")

first_backoff_s = 0.5


def payload(run: Run, outcome: RunOutcome, started_at: datetime, ended_at: datetime) -> Json:
    body = {
        **run_json(run),
        "status": outcome.status,
        "run_started_at": started_at.isoformat(),
        "run_ended_at": ended_at.isoformat(),
        "values": outcome.thread_values,
    }
    if outcome.error is not None:
        body["error"] = outcome.error
    return body


class Webhooks:
    """Delivers webhooks in the background. ``async with`` it: on exit, deliveries still under way get
    ``webhook_timeout_s`` to finish, then are dropped (and logged)."""

    def __init__(
        self,
        settings: Settings,
        headers: Mapping[str, str] | None = None,
        fields: frozenset[str] | None = None,
    ) -> None:
        self._settings = settings
        self._headers = dict(headers or {})
        self._fields = fields
        self._client: httpx.AsyncClient | None = None
        self._pending: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Webhooks:
        self._client = httpx.AsyncClient(timeout=self._settings.webhook_timeout_s, follow_redirects=False)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._pending:
            _, late = await asyncio.wait(self._pending, timeout=self._settings.webhook_timeout_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def send(self, run: Run, outcome: RunOutcome, started_at: datetime) -> None:
        url = run.request.webhook
        if url is None:
            return
        body = payload(run, outcome, started_at, utcnow())
        if self._fields is not None:
            body = {k: v for k, v in body.items() if k in self._fields}
        task = asyncio.create_task(self._deliver(url, body, run.run_id), name=f"webhook:{run.run_id}")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, url: str, body: Json, run_id: str) -> None:
        assert self._client is not None, "use Webhooks as an async context manager"
        attempts = self._settings.webhook_retries + 1
        for attempt in range(1, attempts + 1):
            if self._fields is None or "webhook_sent_at" in self._fields:
                body["webhook_sent_at"] = utcnow().isoformat()
            try:
                response = await self._client.post(
                    url,
                    content=encoding.dumps(body),
                    headers={**self._headers, "content-type": "application/json"},
                )
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 400:
                    log.info(
                        "webhook_sent", run_id=run_id, url=url, status=response.status_code, attempt=attempt
                    )
                    return
                problem = f"HTTP {response.status_code}"
                if response.status_code < 500:
                    log.warning("webhook_refused", run_id=run_id, url=url, problem=problem)
                    return
            if attempt < attempts:
                log.info("webhook_retry", run_id=run_id, url=url, problem=problem, attempt=attempt)
                await asyncio.sleep(first_backoff_s * 2 ** (attempt - 1))
            else:
                log.warning("webhook_failed", run_id=run_id, url=url, problem=problem, attempts=attempts)
