"""Importing the user's code: every graph, auth handler, HTTP app, embeddings, saver and store that
``langgraph.json`` or a setting names, as a file (``./agent.py:graph``) or a module (``pkg.mod:attr``).

One rule for all of them:

- a target ending in ``.py`` or holding a ``/`` is a file, relative to the folder the naming
  configuration gives (``langgraph.json``'s for what it names, the working directory for settings);
  anything else is a module name, imported from ``sys.path`` (which ``dependencies`` extend);
- a file is imported once per process, as ``graphrun_user.<stem>_<digest of its path>``, and kept in
  ``sys.modules``: a graph and a saver named from one file share its globals, as they would in any
  Python program. An import that fails leaves nothing registered, so a fixed file imports again;
- a file's folder goes first on ``sys.path``, so its siblings import as plain modules (as under the
  LangGraph CLI);
- whatever goes wrong is a ``ConfigError`` saying what (the file is missing, a module is not found,
  importing raised, the attribute is absent); the caller puts where it was named in front.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from graphrun.errors import ConfigError

# The package name user files are registered under in ``sys.modules``.
PREFIX = "graphrun_user"


def is_file(target: str) -> bool:
    """Does ``target`` (the part before ``:``) name a file rather than a module?"""
    return target.endswith(".py") or "/" in target


def split(source: str) -> tuple[str, str]:
    """``target:attr`` → (target, attr); ``ConfigError`` when either part is missing."""
    target, _, attr = source.rpartition(":")
    if not target or not attr:
        raise ConfigError(f"{source!r} must look like module:attr or path/to/file.py:attr")
    return target, attr


def load(source: str, base: Path) -> Any:
    """The object ``target:attr`` names (files relative to ``base``)."""
    target, attr = split(source)
    module = import_target(target, base)
    if not hasattr(module, attr):
        raise ConfigError(f"{target} has no attribute {attr!r}")
    return getattr(module, attr)


def import_target(target: str | Path, base: Path) -> ModuleType:
    """A module by name, or a file (a ``Path``, or a name that ``is_file``) relative to ``base``."""
    try:
        if isinstance(target, Path) or is_file(target):
            return import_file((base / target).resolve())
        return importlib.import_module(target)
    except ConfigError:
        raise
    except ModuleNotFoundError as exc:
        raise ConfigError(f"module not found: {exc.name}") from exc
    except Exception as exc:
        raise ConfigError(f"importing it failed: {type(exc).__name__}: {exc}") from exc


def import_file(path: Path) -> ModuleType:
    """The module of the file at ``path`` (absolute), imported once per process."""
    if not path.is_file():
        raise ConfigError(f"file {path} not found")
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    name = f"{PREFIX}.{path.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    if str(path.parent) not in sys.path:  # siblings of the file import as plain modules
        sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def add_to_path(folders: tuple[Path, ...]) -> None:
    """Put ``dependencies`` folders first on ``sys.path``, in their order."""
    for folder in reversed(folders):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
