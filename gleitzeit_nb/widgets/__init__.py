"""Widgets for notebooks: chat panel, vision panel, tool-call approval (ipywidgets 8).

Imported lazily so that ``%load_ext gleitzeit_nb`` does not pull in ipywidgets.
"""

from __future__ import annotations

from .._lazy import lazy_getattr

_LAZY = {
    "ChatPanel": "gleitzeit_nb.widgets.chat_panel",
    "VisionPanel": "gleitzeit_nb.widgets.vision_panel",
    "ask_in_notebook": "gleitzeit_nb.notebook.approval",
    "can_ask_in_notebook": "gleitzeit_nb.notebook.approval",
}

__all__ = list(_LAZY)


__getattr__ = lazy_getattr("gleitzeit_nb.widgets", _LAZY, globals())
