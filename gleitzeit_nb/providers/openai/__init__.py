"""The OpenAI-compatible HTTP API (llama.cpp, vLLM, LM Studio, gateways) as an ``llm/v1``
provider."""

from .provider import OpenAICompatibleProvider
from .stream import CompletionStream
from .transport import DEFAULT_BASE_URL, normalize_base_url

__all__ = ["OpenAICompatibleProvider", "CompletionStream", "normalize_base_url",
           "DEFAULT_BASE_URL"]
