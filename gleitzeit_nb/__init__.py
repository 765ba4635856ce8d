"""gleitzeit_nb: a Jupyter notebook kit for local LLMs served by Ollama.

The provider core lives in ``gleitzeit_nb.core``, the Ollama provider in
``gleitzeit_nb.providers``, the offline simulator in ``gleitzeit_nb.testing``.
"""

from .core import (
    LLM_PROTOCOL_V1,
    ExecutionEngine,
    ProtocolProvider,
    ProtocolProviderRegistry,
    Task,
    TaskResult,
    TaskStatus,
)
from .errors import LLMError
from .providers import OllamaProvider

__version__ = "0.1.0"

__all__ = ["LLM_PROTOCOL_V1", "ExecutionEngine", "ProtocolProvider", "ProtocolProviderRegistry",
           "Task", "TaskResult", "TaskStatus", "OllamaProvider", "LLMError", "__version__"]
