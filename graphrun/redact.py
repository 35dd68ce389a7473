"""Redaction: secrets and personal data taken out of text and values before anything is written.

Everything graphrun writes where an operator or a client reads it passes through one ``Redactor``: log
lines, span attributes and events, recorded node inputs and outputs, and the error messages a client
sees. It masks

- the values of keys that name secrets wherever they appear (``Authorization``, ``x-api-key``,
  ``password``, ``*_api_key``, ``*_token``, cookies, ...) and any extra keys the operator configures;
- secrets in free text: passwords in URIs, ``Authorization:``/``Bearer`` values, ``key=value`` pairs
  that name a secret, provider tokens (``sk-…``, ``lsv2_…``, ``ghp_…``, ``AKIA…``, JWTs, ...) and the
  literal values of secret environment variables;
- personal data by configurable patterns (e-mail, phone, ID numbers, and the operator's own regexes).

Written here rather than taken from a library: the libraries that scrub logs (e.g. Sentry's, Presidio)
either know only their own event shapes or bring an NLP model; what is needed is a few regexes applied
in one pass, tested from a table. Pure and stdlib-only (L0): every layer may use it.

One redactor serves a process. ``install`` sets it at start-up (from the settings); ``active`` is what
log processors and error paths call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"

# A key (normalised: lower case, '-' as '_') whose value is a secret wherever it appears.
_SECRET_KEY = re.compile(
    r"(?:^|_)(?:authorization|cookie|set_cookie|password|passwd|passphrase|secret|client_secret|"
    r"api_?key|access_?key|private_?key|secret_?key|signing_?key|token|access_token|refresh_token|"
    r"id_token|auth_token|session_token|bearer|credentials?|dsn)$"
)

# Secrets in free text. Each alternative keeps what names the secret (group ``keep``) and masks the rest.
_SECRET_TEXT = [
    # a password in a URI: scheme://user:password@host
    r"(?P<keep1>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@/\s]+(?=@)",
    # an Authorization header or a Bearer/Basic credential
    r"(?P<keep2>(?i:\b(?:proxy-)?authorization\b)['\"]?\s*[:=]\s*['\"]?(?:(?i:bearer|basic|token)\s+)?)"
    r"[^\s,;'\"]+",
    r"(?P<keep3>(?i:\bbearer)\s+)[A-Za-z0-9._~+/=-]{8,}",
    # key=value / key: value / "key": "value" where the key names a secret
    r"(?P<keep4>(?i:\b(?:x-api-key|api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|auth[_-]?token|"
    r"secret[_-]?key|client[_-]?secret|secret|password|passwd|pwd|token))['\"]?\s*[:=]\s*['\"]?)"
    r"(?!\*\*\*)[^\s,;'\"&}]+",
    # provider tokens, recognisable on their own
    r"\bsk-[A-Za-z0-9_-]{8,}",  # OpenAI, Anthropic (sk-ant-), Langfuse secret (sk-lf-)
    r"\bpk-lf-[A-Za-z0-9-]{8,}",  # Langfuse public key
    r"\blsv2_(?:pt|sk)_[A-Za-z0-9_]{16,}",  # LangSmith
    r"\bgh[pousr]_[A-Za-z0-9]{20,}",  # GitHub
    r"\bxox[abprs]-[A-Za-z0-9-]{10,}",  # Slack
    r"\bAKIA[0-9A-Z]{16}\b",  # AWS access key id
    r"\bAIza[0-9A-Za-z_-]{35}",  # Google API key
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # a JWT
]

# One of these is in any text a pattern of _SECRET_TEXT matches (tests/unit/test_redact.py checks it).
_SECRET_TRIGGERS = (
    "://",
    "authorization",
    "bearer",
    "key",
    "token",
    "secret",
    "pass",
    "pwd",
    "sk-",
    "pk-lf-",
    "lsv2_",
    "gh",
    "xox",
    "akia",
    "aiza",
    "eyj",
)
_DIGIT = re.compile(r"\d")

# Personal data, by name (GRAPHRUN_REDACT_PII chooses which apply). Each is replaced by ``<name>``.
PII_PATTERNS: dict[str, str] = {
    "email": r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b",
    # international numbers (+44 20 7946 0958), grouped national ones (555-123-4567, (020) 7946 0958)
    # and 11-digit mobile numbers (13812345678); never inside a longer run of digits, hex or an id
    "phone": r"(?<![\w.+-])\+\d{1,3}(?:[\s.-]?\(?\d{1,5}\)?){2,5}(?![\w-]|\.\w)"
    r"|(?<![\w.-])\(?\d{3,4}\)?[\s.-]\d{3,4}[\s.-]\d{3,4}(?![\w-]|\.\w)"
    r"|(?<![\w.-])1[3-9]\d{9}(?![\w-]|\.\w)",
    # 18-character resident identity numbers and US social security numbers
    "id_number": r"(?<![\w.-])\d{17}[\dXx](?![\w-]|\.\w)|(?<![\w.-])\d{3}-\d{2}-\d{4}(?![\w-]|\.\w)",
}

# Literal secret values shorter than this are not masked on their own: they would hit ordinary text.
min_secret_value_len = 8
# How many distinct keys ``is_secret_key`` remembers its answer for.
_KEY_CACHE_SIZE = 4096
# How deep ``value`` walks nested containers before it masks what is below as a whole.
max_depth = 32


class Redactor:
    """Masks secrets and personal data. Build one at start-up; calling it is thread-safe (its only state
    is a cache of which keys name secrets)."""

    def __init__(
        self,
        *,
        extra_keys: Iterable[str] = (),
        pii: Iterable[str] = tuple(PII_PATTERNS),
        patterns: Iterable[str] = (),
        secret_values: Iterable[str] = (),
    ) -> None:
        unknown = sorted(set(pii) - set(PII_PATTERNS))
        if unknown:
            raise ValueError(f"unknown PII pattern {unknown[0]!r}; known: {', '.join(PII_PATTERNS)}")
        self._extra_keys = frozenset(_normal_key(k) for k in extra_keys if k.strip())
        self._key_cache: dict[str, bool] = {}
        parts = list(_SECRET_TEXT)
        values = sorted({v for v in secret_values if len(v) >= min_secret_value_len}, key=len, reverse=True)
        if values:
            parts.append("|".join(re.escape(v) for v in values))
        self._secrets = re.compile("|".join(f"(?:{p})" for p in parts))
        # Every secret pattern needs one of these (lower-cased) in the text: most log values have none,
        # and a substring test is far cheaper than the patterns' scan.
        triggers = (*_SECRET_TRIGGERS, *(v.lower() for v in values))
        self._triggers = re.compile("|".join(re.escape(t) for t in triggers), re.IGNORECASE)
        named = [(f"pii_{name}", PII_PATTERNS[name]) for name in pii]
        custom = [(f"custom{i}", p) for i, p in enumerate(patterns)]
        self._custom = bool(custom)
        for _, pattern in custom:
            re.compile(pattern)  # raises re.error naming the bad pattern
        self._pii_names = [name for name, _ in [*named, *custom]]
        self._pii = (
            re.compile("|".join(f"(?P<{name}>{p})" for name, p in [*named, *custom]))
            if self._pii_names
            else None
        )

    def is_secret_key(self, key: str) -> bool:
        known = self._key_cache.get(key)
        if known is None:
            normal = _normal_key(key)
            known = normal in self._extra_keys or _SECRET_KEY.search(normal) is not None
            if len(self._key_cache) < _KEY_CACHE_SIZE:  # keys repeat: log fields, state keys
                self._key_cache[key] = known
        return known

    def text(self, text: str) -> str:
        """``text`` with every secret masked and every piece of personal data replaced by its kind."""
        masked = self._secrets.sub(_mask_secret, text) if self._triggers.search(text) else text
        # The built-in PII patterns need an '@' or a digit; an operator's own may need anything.
        if self._pii is not None and (self._custom or "@" in masked or _DIGIT.search(masked)):
            masked = self._pii.sub(self._mask_pii, masked)
        return masked

    def _mask_pii(self, match: re.Match[str]) -> str:
        # The outer group that matched names the kind (an operator's pattern may have groups of its own).
        kind = next(name for name in self._pii_names if match.group(name) is not None)
        return f"<{kind.removeprefix('pii_')}>" if kind.startswith("pii_") else "<redacted>"

    def value(self, value: Any, _depth: int = 0) -> Any:
        """A copy of ``value`` (JSON-like: mappings, lists, strings, scalars) with secret keys' values
        masked and every string redacted as ``text``. Other objects are redacted by their ``str``."""
        if isinstance(value, str):
            return self.text(value)
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if _depth >= max_depth:
            return MASK
        if isinstance(value, Mapping):
            return {
                k: MASK if isinstance(k, str) and self.is_secret_key(k) else self.value(v, _depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple, set, frozenset)):
            return [self.value(v, _depth + 1) for v in value]
        return self.text(str(value))


def _normal_key(key: str) -> str:
    return key.strip().lower().replace("-", "_")


def _mask_secret(match: re.Match[str]) -> str:
    keep = next((g for name, g in match.groupdict().items() if name.startswith("keep") and g), "")
    return keep + MASK


_active = Redactor()


def install(redactor: Redactor) -> None:
    """Make ``redactor`` the process's (start-up does this once, from the settings)."""
    global _active
    _active = redactor


def active() -> Redactor:
    return _active


def text(value: str) -> str:
    """``value`` redacted by the process's redactor."""
    return _active.text(value)


def value(obj: Any) -> Any:
    """``obj`` redacted by the process's redactor (see ``Redactor.value``)."""
    return _active.value(obj)
