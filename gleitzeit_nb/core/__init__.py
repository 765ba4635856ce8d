"""The provider core: the llm/v1 protocol, providers, registry, tasks and the engine.

Plain asyncio; no IPython or notebook imports here.
"""

from .backend import (SAMPLING, ChatRequest, ContextInfo, EmbedRequest, EmbedResult, ModelInfo, ReplyStream,
                      StreamChunk, ToolCall, Usage)
from .engine import ExecutionEngine, Task, TaskResult, TaskStatus
from .errors import (
    ImageError,
    InvalidParamsError,
    LLMError,
    ModelNotFoundError,
    ProviderResponseError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    StreamError,
)
from .protocol import LLM_PROTOCOL_V1, validate_params
from .provider import BackendProvider, ProtocolProvider
from .registry import ProtocolProviderRegistry, RegistryError
from .tools import Tool, tool_from_function

__all__ = [
    "ChatRequest", "ContextInfo", "EmbedRequest", "EmbedResult", "ModelInfo", "ReplyStream",
    "StreamChunk", "ToolCall", "Usage", "SAMPLING", "BackendProvider",
    "LLM_PROTOCOL_V1", "validate_params", "ProtocolProvider", "ProtocolProviderRegistry",
    "RegistryError", "Task", "TaskStatus", "TaskResult", "ExecutionEngine", "LLMError",
    "InvalidParamsError", "ImageError", "ProviderUnavailableError", "ModelNotFoundError",
    "ProviderTimeoutError", "ProviderResponseError", "StreamError", "Tool", "tool_from_function",
]
