"""The error hierarchy (defined in ``gleitzeit_nb.core.errors``), importable from the top."""

from .core.errors import (  # noqa: F401
    RETRYABLE_STATUS,
    ImageError,
    InvalidParamsError,
    LLMError,
    ModelNotFoundError,
    ProviderResponseError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    StreamError,
)
from .core.registry import RegistryError  # noqa: F401
