"""Cancel signals and worker wake-ups across processes, and the one listener task that receives every
channel of the bus (``cancel``, ``new_run``, ``done``; run ends go to the ``Waiters``).

A signal is delivered within the process directly and to the others through Redis: while Redis is down,
one ``graphrun serve`` still works on. Wake-ups are published in the background and coalesced (one
always follows the last call); a cancel is tried even while writes are being dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any

import structlog

from graphrun import encoding
from graphrun.redisbus._link import UNREACHABLE, Link, Unreachable, op_timeout_s
from graphrun.redisbus.waiters import Waiters
from graphrun.streams import CancelHandler, wait_and_clear

log = structlog.get_logger("graphrun.redisbus")

# How long the listener waits for a message before looking again (s), and before it subscribes again
# after losing Redis.
listen_poll_s = 1.0
listen_retry_s = 1.0


class Signals:
    """Cancels and wake-ups, sent and received; owns the listener task (``start``, ``stop``)."""

    def __init__(self, link: Link, waiters: Waiters, *, share_wakeups: bool) -> None:
        self._link = link
        self._keys = link.keys
        self._waiters = waiters
        self._channels = {self._keys.channel(kind).encode(): kind for kind in ("cancel", "new_run", "done")}
        # False when something else wakes other processes' workers (PostgreSQL NOTIFY in production mode):
        # a second signal per run would only make idle workers claim twice.
        self._share_wakeups = share_wakeups
        self._cancel_handlers: list[CancelHandler] = []
        self._new_run = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self._listen_tried = asyncio.Event()
        self._notifier: asyncio.Task[None] | None = None
        self._notify_again = False

    async def start(self) -> None:
        """Start the listener, and wait for its first subscription attempt, not for its success: with
        Redis down the bus starts degraded, and the listener keeps trying."""
        self._listener = asyncio.create_task(self._listen(), name=f"redisbus:{self._keys.prefix}:listen")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listen_tried.wait(), op_timeout_s)

    async def stop(self) -> None:
        """A wake-up still being published goes out (bounded); then the listener stops."""
        if self._notifier is not None:
            _, pending = await asyncio.wait([self._notifier], timeout=op_timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)

    def notify_new_run(self) -> None:
        """Wake the idle workers of this process now, and of every process through Redis (in the
        background: publishes are coalesced, one always following the last call)."""
        self._new_run.set()
        if not self._share_wakeups:
            return
        if self._notifier is not None and not self._notifier.done():
            self._notify_again = True
            return
        self._notifier = asyncio.create_task(
            self._publish_new_run(), name=f"redisbus:{self._keys.prefix}:notify"
        )

    async def _publish_new_run(self) -> None:
        self._notify_again = True
        while self._notify_again:
            self._notify_again = False
            pipe = self._link.redis.pipeline(transaction=False)
            pipe.publish(self._keys.channel("new_run"), encoding.dumps({"from": self._link.sender}))
            await self._link.write("notify_new_run", pipe)

    async def wait_new_run(self, timeout_s: float) -> None:
        await wait_and_clear(self._new_run, timeout_s)

    async def cancel(self, run_id: str, action: str) -> None:
        """Call the cancel handlers of every process: this one's directly, the others' through Redis
        (tried even while writes are being dropped: a cancel is rare and worth the wait)."""
        message = encoding.dumps({"from": self._link.sender, "run_id": run_id, "action": action})
        channel = self._keys.channel("cancel")
        with contextlib.suppress(Unreachable):
            await self._link.call("cancel", lambda: self._link.redis.publish(channel, message))
        await self._run_cancel_handlers(run_id, action)

    def on_cancel(self, handler: CancelHandler) -> None:
        self._cancel_handlers.append(handler)

    async def _run_cancel_handlers(self, run_id: str, action: str) -> None:
        for handler in self._cancel_handlers:
            try:
                await handler(run_id, action)
            except Exception:
                log.exception("cancel_handler_failed", run_id=run_id, action=action)

    async def _listen(self) -> None:
        """Receive the channels until cancelled, subscribing again whenever Redis comes back."""
        while True:
            pubsub = self._link.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await self._link.call("listen", functools.partial(pubsub.subscribe, *self._channels))
                self._waiters.subscribed = True
                self._listen_tried.set()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=listen_poll_s)
                    if message is not None:
                        await self._dispatch(message)
            except (Unreachable, *UNREACHABLE) as exc:
                if not isinstance(exc, Unreachable):
                    self._link.went_down("listen", exc)
                self._listen_tried.set()
            finally:
                self._waiters.subscribed = False
                with contextlib.suppress(*UNREACHABLE):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            await asyncio.sleep(listen_retry_s)

    async def _dispatch(self, message: dict[str, Any]) -> None:
        kind = self._channels.get(message["channel"])
        # An end message is its header, then (when the output is small) a newline and the output.
        header, _, output = bytes(message["data"]).partition(b"\n")
        try:
            body = encoding.loads(header)
            sender, run_id, action = body.get("from"), body.get("run_id"), body.get("action")
        except (ValueError, AttributeError) as exc:  # not JSON, or not an object: not from a RedisBus
            log.warning("redis_message_invalid", channel=message["channel"], error=str(exc))
            return
        if sender == self._link.sender:
            return  # sent by this bus, which delivered it here already
        if kind == "new_run":
            self._new_run.set()
        elif kind == "done" and isinstance(run_id, str):
            self._waiters.heard_done(run_id, output if body.get("inline") else None)
        elif kind == "cancel" and isinstance(run_id, str) and isinstance(action, str):
            await self._run_cancel_handlers(run_id, action)
