"""Progress of a batch: an ipywidgets bar in a notebook, one stderr line in a terminal, or nothing.

Shows done/total, rows per second, errors and the estimated time left. Nothing is shown in
"final" display mode, so headless runs (nbclient, nbval) produce deterministic output.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from ..notebook.progress import REFRESH, TERMINAL_DELAY, progress_mode
from ..notebook.progress import duration as _duration

__all__ = ["Progress", "progress_mode", "REFRESH", "TERMINAL_DELAY"]


class Progress:
    """Counts rows and redraws at most every ``REFRESH`` seconds; ``mode=None`` only counts."""

    def __init__(self, total: int, mode: str | None, *, unit: str = "rows",
                 label: str = "") -> None:
        self.total = total
        self.mode = mode
        self.unit = unit
        self.label = label
        self.done = 0
        self.errors = 0
        self._t0 = time.monotonic()
        self._last = 0.0
        self._width = 0
        self._shown = False
        self._widgets: tuple[Any, Any] | None = None

    def start(self) -> None:
        self._t0 = time.monotonic()
        if self.mode == "live":
            self._open_widget()
        self._draw(force=self.mode == "live")

    def add(self, n: int = 1, *, errors: int = 0) -> None:
        self.done += n
        self.errors += errors
        self._draw()

    def close(self, status: str = "done") -> None:
        """Final redraw: ``status`` is "done", "interrupted" or "failed"."""
        self._draw(force=True, status=status)
        if self.mode == "terminal" and self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()

    # -- drawing -------------------------------------------------------------------------------
    def text(self, status: str | None = None) -> str:
        elapsed = time.monotonic() - self._t0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.done}/{self.total} {self.unit}"]
        if status is None or status == "done":
            parts.append(f"{rate:.1f} {self.unit}/s")
        if self.errors:
            parts.append(f"{self.errors} error{'s' if self.errors != 1 else ''}")
        if status is None:
            if 0 < self.done < self.total:
                parts.append(f"ETA {_duration((self.total - self.done) / rate)}")
        else:
            word = {"done": "done in", "interrupted": "interrupted after",
                    "failed": "stopped after"}.get(status, status)
            parts.append(f"{word} {_duration(elapsed)}")
        return (self.label + ": " if self.label else "") + " · ".join(parts)

    def _draw(self, *, force: bool = False, status: str | None = None) -> None:
        if self.mode is None:
            return
        now = time.monotonic()
        if not force and now - self._last < REFRESH:
            return
        self._last = now
        if self.mode == "live":
            self._update_widget(status)
        elif self._shown or now - self._t0 >= TERMINAL_DELAY:
            line = self.text(status)
            sys.stderr.write("\r" + line.ljust(self._width))
            sys.stderr.flush()
            self._width = max(self._width, len(line))
            self._shown = True

    def _open_widget(self) -> None:
        import ipywidgets as widgets
        from IPython.display import display

        bar = widgets.IntProgress(value=0, min=0, max=max(self.total, 1), bar_style="info")
        label = widgets.HTML()
        display(widgets.HBox([bar, label]))
        self._widgets = (bar, label)

    def _update_widget(self, status: str | None) -> None:
        if self._widgets is None:
            return
        import html

        bar, label = self._widgets
        bar.value = self.done
        if status is not None:
            bar.bar_style = ("danger" if status != "done"
                             else "warning" if self.errors else "success")
        label.value = f"<span>{html.escape(self.text(status))}</span>"
