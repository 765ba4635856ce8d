"""gleitzeit_nb: a Jupyter notebook kit for local LLMs served by Ollama.

In a notebook: ``%load_ext gleitzeit_nb``, then ``%%llm`` / ``%vision``. From Python:
``gleitzeit_nb.chat(...)``. The provider core lives in ``gleitzeit_nb.core``, the Ollama
provider in ``gleitzeit_nb.providers``, the offline simulator in ``gleitzeit_nb.testing``, a
built-in llama.cpp engine in ``gleitzeit_nb.local``.
Names below are imported on first use, so loading the extension stays fast.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ._lazy import lazy_getattr

__version__ = "0.1.0"

# Where the process was when gleitzeit_nb was first imported (in a kernel: the notebook's
# folder, unless a %cd came first): the default replay store lives there.
try:
    START_DIR = os.getcwd()
except OSError:  # the directory was removed under the process
    START_DIR = os.path.expanduser("~")

# A library logs; the application decides what is shown (retries are WARNINGs in this tree).
logging.getLogger("gleitzeit_nb").addHandler(logging.NullHandler())

_LAZY = {
    "LLM_PROTOCOL_V1": "gleitzeit_nb.core",
    "ExecutionEngine": "gleitzeit_nb.core",
    "ProtocolProvider": "gleitzeit_nb.core",
    "ProtocolProviderRegistry": "gleitzeit_nb.core",
    "Task": "gleitzeit_nb.core",
    "TaskResult": "gleitzeit_nb.core",
    "TaskStatus": "gleitzeit_nb.core",
    "LLMError": "gleitzeit_nb.errors",
    "OllamaProvider": "gleitzeit_nb.providers",
    "OpenAICompatibleProvider": "gleitzeit_nb.providers",
    "SETTINGS": "gleitzeit_nb.app.settings",
    "chat": "gleitzeit_nb.notebook.chat",
    "compare": "gleitzeit_nb.notebook.compare",
    "Reply": "gleitzeit_nb.app.replies",
    "prepare_image": "gleitzeit_nb.core.image_prep",
    "batch": "gleitzeit_nb.batch",
    "replay_mode": "gleitzeit_nb.replay.active",
    "ChatPanel": "gleitzeit_nb.widgets",
    "VisionPanel": "gleitzeit_nb.widgets",
    "embed": "gleitzeit_nb.batch",
    "usage": "gleitzeit_nb.app.usage",
    "Session": "gleitzeit_nb.app.sessions",
    "pull": "gleitzeit_nb.notebook.pull",
    "pull_async": "gleitzeit_nb.notebook.pull",
}

__all__ = [*_LAZY, "load_ipython_extension", "__version__"]


_lazy_getattr = lazy_getattr("gleitzeit_nb", _LAZY, globals())
#: Subpackages reachable as attributes (``gleitzeit_nb.local.start()``), imported on first use.
_SUBPACKAGES = ("local",)


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    return _lazy_getattr(name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_SUBPACKAGES})


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext gleitzeit_nb``: register the magics on this IPython shell."""
    from .magics.magics import register

    register(ipython)
