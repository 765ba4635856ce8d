"""The error hierarchy (defined in ``gleitzeit_nb.core.errors``), importable from the top."""

from .core.errors import *  # noqa: F403
from .core.errors import __all__ as _core_all
from .core.registry import RegistryError
from .local.errors import EngineError, EngineNotInstalledError
from .replay.errors import ReplayMissError, ReplayStoreError

__all__ = [*_core_all, "RegistryError", "ReplayMissError", "ReplayStoreError", "EngineError",
           "EngineNotInstalledError"]
