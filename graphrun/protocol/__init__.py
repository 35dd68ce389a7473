"""The thread-stream protocol (``client.threads.stream`` in langgraph-sdk): a thread's stream turned into
protocol events, as the official server turns it.

A thread's events (``EventBus.subscribe_thread``) are the runs' stream parts in order, each run opened by
a ``metadata`` event with its id and closed by a ``run_done`` one. ``Session`` reads them from the start
of the log and hands out protocol events: ``{"type": "event", "event_id", "seq", "method", "params":
{"namespace", "timestamp", "data", "node"?}}``. It adds what the official server adds around a run: a
root ``lifecycle`` ``running`` when the run starts and a terminal one when it ends (``completed``,
``failed`` with the error, or ``interrupted``), ``input.requested`` for each interrupt (lifted out of
``values``), and protocol-shaped messages in ``values`` and ``updates``.

``seq`` counts from 1 on each connection and ``event_id`` is derived from the bus's event ids (``<id>``,
then ``<id>.1``, … for the envelopes one event yields) or, for the events the session adds, from the run
id: two connections that read the same log hand out the same events, so a client can dedupe and resume
(``since``) across reconnects. Runs started by ``run.start`` stream LangGraph's own v3 protocol events
(``astream_events(version="v3")``), which pass through; other runs' ``values``, ``updates`` and
``custom`` parts are translated.

Written here because neither LangGraph nor the SDK has the server half: LangGraph produces the per-run
events, the SDK consumes the thread-level stream; joining runs into one numbered stream is the server's.

Held in three modules: ``channels`` (what a connection subscribes to, ``Filter``), ``session`` (the
``Session`` and ``run_event``), ``messages`` (state payloads in protocol shape); all re-exported here.
"""

from __future__ import annotations

from graphrun.protocol.channels import CHANNELS, TERMINAL, Filter, supported_channel
from graphrun.protocol.messages import state_payload
from graphrun.protocol.session import InterruptsPending, RunInfo, RunLookup, Session, run_event

__all__ = [
    "CHANNELS",
    "TERMINAL",
    "Filter",
    "InterruptsPending",
    "RunInfo",
    "RunLookup",
    "Session",
    "run_event",
    "state_payload",
    "supported_channel",
]
