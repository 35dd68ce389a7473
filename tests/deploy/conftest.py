"""The deployment tests: tools they fetch are announced on the terminal (tests/deploy/_debian.py); the image
and compose tests share one engine and one build of the image per session (tests/deploy/_engine.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.deploy import _debian
from tests.deploy._engine import ROOT, Engine, EngineMissing, base_image, start_engine, stop_engine


def pytest_configure(config: pytest.Config) -> None:
    _debian.session = config


@dataclass
class Image:
    engine: Engine
    tag: str
    build_s: float
    size_bytes: int


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    try:
        found = start_engine()
    except EngineMissing as exc:
        pytest.skip(f"no container engine can be had here: {exc}")
    try:
        yield found
    finally:
        stop_engine(found)


@pytest.fixture(scope="session")
def image(engine: Engine) -> Iterator[Image]:
    """deploy/Dockerfile built once for the session, on the stand-in base image."""
    base = base_image(engine)
    tag = f"graphrun-test/graphrun:{uuid.uuid4().hex[:8]}"
    build_s = engine.build(tag, ROOT, ROOT / "deploy" / "Dockerfile", BASE_IMAGE=base)
    size = int(engine.docker("image", "inspect", "-f", "{{.Size}}", tag).stdout)
    _debian.say(f"deploy tests: built {tag} in {build_s:.0f} s, {size / 1e6:.0f} MB")
    try:
        yield Image(engine, tag, build_s, size)
    finally:
        engine.docker("image", "rm", "-f", tag, check=False)
        engine.docker("image", "prune", "-f", check=False)
