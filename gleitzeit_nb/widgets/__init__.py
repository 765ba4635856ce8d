"""Widget panels for notebooks: a streaming chat panel and a vision panel (ipywidgets 8).

Imported lazily so that ``%load_ext gleitzeit_nb`` does not pull in ipywidgets.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ChatPanel": "gleitzeit_nb.widgets.chat_panel",
    "show_chat": "gleitzeit_nb.widgets.chat_panel",
    "VisionPanel": "gleitzeit_nb.widgets.vision_panel",
    "show_vision": "gleitzeit_nb.widgets.vision_panel",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gleitzeit_nb.widgets' has no attribute {name!r}")
