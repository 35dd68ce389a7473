"""The OpenAPI document fuzzed with schemathesis against a real server in both modes, as a keyed user:
no generated request may get a 5xx. Bounded (``-n`` examples per operation, fixed seed) so that it fits
the suite. The event streams (``…/stream``) are left out: they stay open until the client leaves, so a
fuzzer's request to one only ends at its timeout."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

KEY = "fuzz-key-0123456789abcdef"
SERVER_ENV = {"GRAPHRUN_API_KEYS": f"fuzzer={KEY}", "GRAPHRUN_WAIT_TIMEOUT_S": "5"}
CONFIG = Path(__file__).resolve().parent / "langgraph.json"
EXAMPLES = 10


def test_no_generated_request_gets_a_server_error(target: Any, tmp_path: Path) -> None:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{target.url}/openapi.json",
        "--header",
        f"x-api-key: {KEY}",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        "1",
        "--exclude-path-regex",
        "/stream",
        "--request-timeout",
        "20",
        "--workers",
        "2",
        "--no-color",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False)
    output = done.stdout + done.stderr
    generated = re.search(r"(\d+) generated", output)
    print(f"\nschemathesis: {generated.group(0) if generated else 'no summary'}")
    assert done.returncode == 0, output[-6000:]
    assert generated is not None
    assert int(generated.group(1)) > 1000  # the run really exercised the API
