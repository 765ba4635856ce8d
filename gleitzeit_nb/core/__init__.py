"""The provider core: the llm/v1 protocol, providers, registry, tasks and the engine.

Plain asyncio; no IPython or notebook imports here. The names below are imported from their
modules on first use, so ``from gleitzeit_nb.core.errors import …`` loads only the errors.
"""

from __future__ import annotations

from typing import Any

from .._lazy import lazy_getattr

_MODULES = {
    "backend": ("ChatRequest", "ContextInfo", "EmbedRequest", "EmbedResult", "ModelInfo",
                "ReplyStream", "StreamChunk", "ToolCall", "Usage", "SAMPLING"),
    "engine": ("ExecutionEngine", "Task", "TaskResult", "TaskStatus"),
    "errors": ("ImageError", "InvalidParamsError", "LLMError", "ModelNotFoundError",
               "ProviderResponseError", "ProviderTimeoutError", "ProviderUnavailableError",
               "StreamError"),
    "protocol": ("LLM_PROTOCOL_V1", "validate_params"),
    "provider": ("BackendProvider", "ProtocolProvider"),
    "registry": ("ProtocolProviderRegistry", "RegistryError"),
    "tools": ("Tool", "tool_from_function"),
}
_LAZY = {name: f"gleitzeit_nb.core.{module}" for module, names in _MODULES.items()
         for name in names}

__all__ = list(_LAZY)

_lazy_getattr = lazy_getattr("gleitzeit_nb.core", _LAZY, globals())


def __getattr__(name: str) -> Any:
    return _lazy_getattr(name)
