"""Progress of a pull: ipywidgets bars (overall and one per layer) in a live notebook, stderr
lines in a terminal (one per layer, as Ollama's CLI prints them), nothing in "final" mode.

Redraws at most every ``REFRESH`` seconds, and at once when a layer or phase changes.
"""

from __future__ import annotations

import html
import sys
import time
from typing import Any

from ..core.pull import PullLayer, PullTracker, human_bytes
from .progress import REFRESH, duration

#: Width of a terminal bar, in characters.
BAR = 25
_STYLES = {"done": "success", "interrupted": "warning", "failed": "danger"}


def rate_text(tracker: PullTracker) -> str:
    rate = tracker.rate()
    return f"{human_bytes(rate)}/s" if rate > 0 else ""


def overall_text(tracker: PullTracker, status: str | None = None) -> str:
    """``1.2 GB / 2.0 GB · 85 MB/s · ETA 12 s``, or how it ended."""
    sizes = f"{human_bytes(tracker.completed)} / {human_bytes(tracker.total)}"
    if status == "done":
        resumed = (f" (resumed from {human_bytes(tracker.resumed)})" if tracker.resumed else "")
        return (f"{human_bytes(tracker.total)} in {len(tracker.layers)} layers, done in "
                f"{duration(tracker.elapsed)}{resumed}")
    if status is not None:
        return f"{sizes} · {status} after {duration(tracker.elapsed)}"
    parts = [sizes, rate_text(tracker)]
    eta = tracker.eta()
    if eta is not None and tracker.completed < tracker.total:
        parts.append(f"ETA {duration(eta)}")
    return " · ".join(p for p in parts if p)


class PullDisplay:
    """Shows one pull; ``mode`` is "live", "terminal" or None (nothing)."""

    def __init__(self, model: str, mode: str | None) -> None:
        self.model = model
        self.mode = mode
        self._last = 0.0
        self._key = ""  # the layer or phase drawn last: a new one is drawn at once
        self._widgets: dict[str, Any] = {}
        self._rows: dict[str, tuple[Any, Any]] = {}
        self._term_layer: str | None = None  # the layer whose line is open on stderr
        self._term_status = ""
        self._width = 0

    def update(self, tracker: PullTracker, layer: PullLayer | None) -> None:
        """After each event; draws when due, or at once on a new layer or phase. Nothing is
        shown before the first event (a server that cannot pull shows only its error)."""
        if self.mode is None:
            return
        if self.mode == "live" and not self._widgets:
            self._open_widget()
        now = time.monotonic()
        key = layer.digest if layer is not None else tracker.status  # what the event is about
        if key == self._key and not (layer is not None and layer.done) \
                and now - self._last < REFRESH:
            return
        self._key = key
        self._last = now
        if self.mode == "live":
            self._update_widget(tracker, None)
        else:
            self._write(tracker, layer)

    def close(self, tracker: PullTracker, status: str, note: str = "") -> None:
        """The final state: ``status`` is "done", "interrupted" or "failed"."""
        if self.mode == "live":
            if not self._widgets and status == "done":
                self._open_widget()
            self._update_widget(tracker, status, note)
        elif self.mode == "terminal" and (tracker.layers or status == "done"):
            self._end_line()
            line = (f"success: {self.model}, {overall_text(tracker, 'done')}" if status == "done"
                    else f"{status}: {self.model}, {overall_text(tracker, status)}")
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    # -- notebook ------------------------------------------------------------------------------
    def _open_widget(self) -> None:
        import ipywidgets as widgets
        from IPython.display import display

        style = {"description_width": "110px"}
        title = widgets.HTML()
        bar = widgets.IntProgress(value=0, min=0, max=1, description="total", style=style,
                                  bar_style="info")
        bar.add_class("gleitzeit-pull-total")
        label = widgets.HTML()
        layers = widgets.VBox()
        box = widgets.VBox([title, widgets.HBox([bar, label]), layers])
        box.add_class("gleitzeit-pull")
        self._widgets = {"title": title, "bar": bar, "label": label, "layers": layers,
                         "style": style}
        display(box)

    def _update_widget(self, tracker: PullTracker, status: str | None, note: str = "") -> None:
        if not self._widgets:
            return
        w = self._widgets
        for layer in tracker.layers.values():
            self._layer_row(layer)
        phase = {"done": "pulled", "interrupted": "interrupted", "failed": "failed"}.get(
            status or "", html.escape(tracker.status))
        w["title"].value = (f"<b>{html.escape(self.model)}</b> · {phase}"
                            + (f" · {html.escape(note)}" if note else ""))
        bar = w["bar"]
        bar.max = max(tracker.total, 1)
        bar.value = min(tracker.completed, bar.max)
        if status is not None:
            bar.bar_style = _STYLES.get(status, "info")
        w["label"].value = f"<span>{html.escape(overall_text(tracker, status))}</span>"

    def _layer_row(self, layer: PullLayer) -> None:
        import ipywidgets as widgets

        row = self._rows.get(layer.digest)
        if row is None:
            bar = widgets.IntProgress(value=0, min=0, max=max(layer.total, 1),
                                      description=layer.short, style=self._widgets["style"])
            bar.add_class("gleitzeit-pull-layer")
            label = widgets.HTML()
            row = self._rows[layer.digest] = (bar, label)
            layers = self._widgets["layers"]
            layers.children = (*layers.children, widgets.HBox([bar, label]))
        bar, label = row
        bar.max = max(layer.total, 1)
        bar.value = min(layer.completed, bar.max)
        if layer.done:
            bar.bar_style = "success"
        text = (human_bytes(layer.total) if layer.done else
                f"{human_bytes(layer.completed)} / {human_bytes(layer.total)}")
        label.value = f"<span>{html.escape(text)}</span>"

    # -- terminal ------------------------------------------------------------------------------
    def _write(self, tracker: PullTracker, layer: PullLayer | None) -> None:
        out = sys.stderr
        if layer is None:
            if tracker.status != self._term_status and not tracker.finished:  # (close says it)
                self._end_line()
                self._term_status = tracker.status
                out.write(tracker.status + "\n")
                out.flush()
            return
        if layer.digest != self._term_layer:
            self._end_line()
            self._term_layer = layer.digest
        self._term_status = tracker.status
        share = layer.completed / layer.total if layer.total else 1.0
        filled = int(share * BAR)
        sizes = (human_bytes(layer.total) if layer.done
                 else f"{human_bytes(layer.completed)}/{human_bytes(layer.total)}")
        rate = "" if layer.done or not rate_text(tracker) else f" · {rate_text(tracker)}"
        line = (f"pulling {layer.short} {share * 100:3.0f}% ▕{'█' * filled}{' ' * (BAR - filled)}"
                f"▏ {sizes}{rate}")
        out.write("\r" + line.ljust(self._width))  # spaces cover a longer line before
        self._width = len(line)
        out.flush()

    def _end_line(self) -> None:
        if self._term_layer is not None:
            sys.stderr.write("\n")
            self._term_layer, self._width = None, 0
