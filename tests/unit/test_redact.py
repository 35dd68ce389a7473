"""``graphrun.redact``: what is masked, what is left alone, from tables."""

from __future__ import annotations

import pytest

from graphrun import redact
from graphrun.errors import ConfigError
from graphrun.redact import MASK, Redactor
from graphrun.settings import Settings, secret_env_values


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://app:s3cret@db:5432/x", "postgresql://app:***@db:5432/x"),
        ("redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"),
        ("Authorization: Bearer abc.def.ghijkl", "Authorization: Bearer ***"),
        ("authorization=Basic dXNlcjpwYXNz", "authorization=Basic ***"),
        ("sent bearer eyJhbGciOiJIUzI1NiJ9x", "sent bearer ***"),
        ('{"x-api-key": "k123456789"}', '{"x-api-key": "***"}'),
        ("api_key=abc&next=1", "api_key=***&next=1"),
        ("password: hunter2", "password: ***"),
        (
            "OpenAI said: Incorrect API key provided: sk-proj-abcdefgh1234.",
            "OpenAI said: Incorrect API key provided: ***.",
        ),
        ("key sk-ant-api03-abcdefghij", "key ***"),
        ("langfuse pk-lf-1234abcd-5678", "langfuse ***"),
        ("ls lsv2_pt_0123456789abcdef0123", "ls ***"),
        ("gh ghp_abcdefghijklmnopqrstuvwx", "gh ***"),
        ("aws AKIAABCDEFGHIJKLMNOP", "aws ***"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4", "jwt ***"),
    ],
)
def test_secrets_in_text_are_masked(text: str, expected: str) -> None:
    assert Redactor(pii=()).text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to ann.lee+x@example.co.uk now", "write to <email> now"),
        ("call +44 20 7946 0958", "call <phone>"),
        ("call 555-123-4567 or (020) 7946 0958", "call <phone> or <phone>"),
        ("mobile 13812345678.", "mobile <phone>."),
        ("id 11010519491231002X", "id <id_number>"),
        ("ssn 078-05-1120", "ssn <id_number>"),
    ],
)
def test_personal_data_is_replaced_by_its_kind(text: str, expected: str) -> None:
    assert Redactor().text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "run 01a20ae2-8f99-7697-a414-01ced8bf140a event 1795478950386-0",
        "at 2026-12-05T19:12:31.123Z on 127.0.0.1:2024 (10.0.0.1)",
        "max_tokens=100 input_tokens: 5 output_tokens=7 tokens=12",
        "langgraph 1.2.24, 1,000 runs/s, p99 205 ms, attempt 3 of 3",
        "thread_id=0192b7a1-0000-7000-8000-000000000001 status=success",
        "checkpoint 1efb1d2c-4444-6666-8888-123456789012",
    ],
)
def test_ordinary_log_text_is_left_alone(text: str) -> None:
    assert Redactor().text(text) == text


def test_values_are_walked_and_secret_keys_masked() -> None:
    r = Redactor(extra_keys=["Customer-Ref"])
    value = {
        "Authorization": "Bearer x",
        "headers": {"X-Api-Key": "k", "Cookie": "a=b", "accept": "text/plain"},
        "config": {"openai_api_key": "sk-1", "db_password": "p", "max_tokens": 5, "customer_ref": "c"},
        "messages": [{"content": "mail me at bo@example.org"}],
        "n": 1,
        "ok": True,
        "none": None,
    }
    assert r.value(value) == {
        "Authorization": MASK,
        "headers": {"X-Api-Key": MASK, "Cookie": MASK, "accept": "text/plain"},
        "config": {"openai_api_key": MASK, "db_password": MASK, "max_tokens": 5, "customer_ref": MASK},
        "messages": [{"content": "mail me at <email>"}],
        "n": 1,
        "ok": True,
        "none": None,
    }


def test_literal_secret_values_are_masked_wherever_they_appear() -> None:
    r = Redactor(secret_values=["correct-horse-battery", "short"])
    assert r.text("failed with correct-horse-battery in it") == f"failed with {MASK} in it"
    assert r.text("a short word") == "a short word"  # too short to mask on its own


def test_custom_patterns_and_pii_choice() -> None:
    r = Redactor(pii=["email"], patterns=[r"ACME-\d{6}", r"(?P<g>order) \d+"])
    assert r.text("ACME-123456 and order 42, ann@example.com, 555-123-4567") == (
        "<redacted> and <redacted>, <email>, 555-123-4567"
    )


def test_deep_values_are_bounded() -> None:
    deep: object = "leaf"
    for _ in range(redact.max_depth + 5):
        deep = [deep]
    out = Redactor().value(deep)
    for _ in range(redact.max_depth):
        assert isinstance(out, list)
        out = out[0]
    assert out == MASK


def test_settings_build_the_redactor_and_refuse_bad_patterns() -> None:
    settings = Settings.from_env(
        environ={"GRAPHRUN_REDACT_KEYS": "tenant", "GRAPHRUN_REDACT_PATTERNS": '["T-\\\\d+"]'}
    )
    r = settings.redactor()
    assert r.value({"tenant": "x"}) == {"tenant": MASK}
    assert r.text("T-42") == "<redacted>"
    with pytest.raises(ConfigError, match="GRAPHRUN_REDACT_PATTERNS"):
        Settings.from_env(environ={"GRAPHRUN_REDACT_PATTERNS": '["("]'})
    with pytest.raises(ConfigError, match="GRAPHRUN_REDACT_PATTERNS"):
        Settings.from_env(environ={"GRAPHRUN_REDACT_PATTERNS": "T-1"})
    with pytest.raises(ConfigError, match="GRAPHRUN_REDACT_PII"):
        Settings.from_env(environ={"GRAPHRUN_REDACT_PII": "email,shoe_size"})
    assert Settings.from_env(environ={"GRAPHRUN_REDACT_PII": ""}).redactor().text("a@b.co") == "a@b.co"


def test_secret_environment_values_are_found_by_name() -> None:
    environ = {
        "OPENAI_API_KEY": "sk-abc",
        "LANGFUSE_SECRET_KEY": "sk-lf-1",
        "PGPASSWORD": "x",
        "DB_PASSWORD": "y",
        "GITHUB_TOKEN": "t",
        "PATH": "/usr/bin",
        "GRAPHRUN_PORT": "2024",
        "EMPTY_TOKEN": "",
    }
    assert sorted(secret_env_values(environ)) == ["sk-abc", "sk-lf-1", "t", "y"]


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-abcdefgh1234",
        "pk-lf-1234abcd-5678",
        "lsv2_pt_0123456789abcdef0123",
        "ghp_abcdefghijklmnopqrstuvwx",
        "xoxb-1234567890-abcdef",
        "AKIAABCDEFGHIJKLMNOP",
        "AIza" + "B" * 35,
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4",
    ],
)
def test_a_token_alone_is_masked_whatever_surrounds_it(secret: str) -> None:
    """The redactor skips its patterns for text holding none of its triggers: each kind of token must
    hold one."""
    assert Redactor(pii=()).text(f"value {secret} end") == f"value {MASK} end"
    assert Redactor(pii=()).text(secret) == MASK


def test_uri_passwords_and_pwd_pairs_are_masked_without_other_words() -> None:
    assert Redactor(pii=()).text("mysql://u:pw12@h/db") == "mysql://u:***@h/db"
    assert Redactor(pii=()).text("PWD=abc123") == "PWD=***"
