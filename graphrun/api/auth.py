"""Built-in API keys (``GRAPHRUN_API_KEYS``, ``GRAPHRUN_API_KEYS_FILE``): every request but the open
paths must carry one of them, as ``x-api-key`` (what the official SDKs send for ``api_key``) or
``Authorization: Bearer``. Keys are kept as SHA-256 digests and compared in constant time. Each names an
owner, whose resources only it sees (``graphrun.api.authz.KeysPolicy``)."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from graphrun.errors import ConfigError


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def load_keys(keys: str, keys_file: Path | None) -> dict[str, str]:
    """Digest → owner, from ``owner=key`` entries (comma-separated; a bare key is owner ``default``) and
    a file of ``<owner> sha256:<hex digest>`` lines (``#`` comments)."""
    found: dict[str, str] = {}
    for entry in filter(None, (e.strip() for e in keys.split(","))):
        owner, sep, key = entry.partition("=")
        owner, key = (owner, key) if sep else ("default", owner)
        if len(key) < 16:
            raise ConfigError(f"GRAPHRUN_API_KEYS: the key of {owner!r} is shorter than 16 characters")
        found[digest(key)] = owner
    if keys_file is not None:
        try:
            lines = keys_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"GRAPHRUN_API_KEYS_FILE {keys_file}: {exc.strerror}") from exc
        for number, line in enumerate(lines, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2 or not parts[1].startswith("sha256:") or len(parts[1]) != 7 + 64:
                raise ConfigError(
                    f"GRAPHRUN_API_KEYS_FILE {keys_file}:{number}: expected '<owner> sha256:<64 hex digits>'"
                )
            found[parts[1].removeprefix("sha256:").lower()] = parts[0]
    return found


class ApiKeys:
    """The configured keys, by digest; ``owner`` finds a presented key's owner."""

    def __init__(self, digests: dict[str, str]) -> None:
        self.digests = digests

    def owner(self, presented: str) -> str | None:
        given = digest(presented)
        found = None
        for known, owner in self.digests.items():  # every digest compared: the time says nothing
            if hmac.compare_digest(given, known):
                found = owner
        return found
