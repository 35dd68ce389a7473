"""The few lines a person starting graphrun reads: where the API, the console and the docs are, where
the data lives, which graphs were loaded. The logs stay JSON lines on stdout; the banner goes to stderr,
so that nothing parsing stdout meets it."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

# Addresses that mean "every interface": a browser reaches them on the loopback address.
_ANY = {"0.0.0.0", "::", ""}


def base_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in _ANY else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def render(
    *,
    command: str,
    version: str,
    url: str,
    data: str,
    graphs: Sequence[str],
    console: bool,
    docs: bool,
    auth: str,
) -> str:
    """``auth``: how a client authenticates, or empty when it need not."""
    rows = [("API", url)]
    if console:
        rows.append(("Console", f"{url}/console"))
    if docs:
        rows.append(("Docs", f"{url}/docs"))
    rows += [("Data", data), ("Graphs", ", ".join(graphs) or "none")]
    if auth:
        rows.append(("Auth", auth))
    lines = [f"graphrun {command} {version} is ready", *(f"  {name:<8} {value}" for name, value in rows)]
    lines.append("  Stop with Ctrl-C.")
    return "\n".join(lines)


def wanted(command: str, stdout: TextIO | None = None) -> bool:
    """Always for ``graphrun dev``; for the production commands only when a person watches (stdout is a
    terminal), not under an orchestrator."""
    out = sys.stdout if stdout is None else stdout
    return command == "dev" or out.isatty()


def show(text: str, stream: TextIO | None = None) -> None:
    target = sys.stderr if stream is None else stream
    print(text, file=target, flush=True)
