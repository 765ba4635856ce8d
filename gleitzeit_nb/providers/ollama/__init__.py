"""Ollama's native HTTP API as an ``llm/v1`` provider."""

from .host import DEFAULT_PORT, host_from_env, parse_host
from .provider import OllamaProvider
from .stream import ChatStream
from .transport import RetryPolicy, Timeouts

__all__ = ["OllamaProvider", "ChatStream", "Timeouts", "RetryPolicy", "parse_host",
           "host_from_env", "DEFAULT_PORT"]
