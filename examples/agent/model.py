"""Choose the example agent's chat model from the environment.

Selection is deferred to :func:`get_model` so that importing the graph (which the server
does at startup, and tests do constantly) never needs provider packages, keys or network.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from langchain.chat_models import init_chat_model
from langchain_core.language_models import BaseChatModel

from graphrun.testing import with_faults_from_env

# The server imports siblings as top-level modules (this directory is on sys.path); mypy,
# run from the repository root, knows them by their path-based names.
if TYPE_CHECKING:
    from examples.agent.offline_model import OfflineChatModel
else:
    from offline_model import OfflineChatModel

DEFAULT_OPENAI_MODEL = "openai:gpt-4o-mini"
DEFAULT_ANTHROPIC_MODEL = "anthropic:claude-3-5-haiku-latest"
_PROVIDER_PREFIXES = frozenset({"openai", "anthropic"})


def split_model_id(model_id: str, default_provider: str) -> tuple[str, str]:
    """Split 'provider:name' into (provider, name), defaulting the provider.

    Only known provider prefixes are split off, because OpenAI-compatible servers such as
    Ollama use colons inside model names ('llama3.1:8b').
    """
    provider, separator, name = model_id.partition(":")
    if separator and provider in _PROVIDER_PREFIXES:
        return provider, name
    return default_provider, model_id


def _init_provider_model(default_model_id: str) -> BaseChatModel:
    """Build a provider model, letting AGENT_MODEL override the default model id.

    The provider SDKs read their own settings (OPENAI_BASE_URL, ANTHROPIC_BASE_URL, ...),
    which is how the agent talks to vLLM, Ollama or any other compatible endpoint.
    """
    default_provider = default_model_id.partition(":")[0]
    model_id = os.environ.get("AGENT_MODEL") or default_model_id
    provider, name = split_model_id(model_id, default_provider)
    return init_chat_model(name, model_provider=provider)


def _chosen_model() -> BaseChatModel:
    if os.environ.get("OPENAI_API_KEY"):
        return _init_provider_model(DEFAULT_OPENAI_MODEL)
    if os.environ.get("ANTHROPIC_API_KEY"):
        return _init_provider_model(DEFAULT_ANTHROPIC_MODEL)
    return OfflineChatModel()


def get_model() -> BaseChatModel:
    """Return the chat model the environment asks for: OpenAI, then Anthropic, then offline; with
    injected faults when GRAPHRUN_FAULTS or GRAPHRUN_FAULTS_FILE is set (graphrun.testing)."""
    return with_faults_from_env(_chosen_model())
