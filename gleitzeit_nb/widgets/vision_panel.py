"""``VisionPanel``: drop or name an image, see what is sent, ask about it, watch it stream."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import ipywidgets as w

from ..core.image_prep import PreparedImage, prepare_image
from ..app.replies import Reply
from ..app.requests import ask_async, make_request
from ..app.settings import SETTINGS
from .base import PanelBase, show_bundle
from .stream import WidgetStream


class VisionPanel(PanelBase):
    """Ask a vision model about one image at a time (each question is a fresh request).

    ``load_image(obj)`` takes what ``%vision`` takes (path, bytes, PIL image, array, figure) and
    shows a thumbnail of the normalised image that will be sent; ``ask(prompt)`` returns the task;
    ``answer`` is the (possibly partial) answer text.
    """

    capability = "vision"

    def __init__(self, model: str | None = None, host: str | None = None,
                 max_edge: int | None = None, timeout: float | None = None) -> None:
        """Arguments left out take the settings' values (``%config LLMMagics``)."""
        super().__init__(model=model or SETTINGS.vision_model or None, host=host)
        self.max_edge = SETTINGS.max_image_edge if max_edge is None else max_edge
        self.timeout = timeout
        self.image: PreparedImage | None = None
        self.upload = w.FileUpload(accept="image/*", multiple=False, description="Image")
        self.path = w.Text(placeholder="…or a file path, then Enter", continuous_update=False,
                           layout=w.Layout(width="50%"))
        self.thumbnail = w.Image(format="png", layout=w.Layout(max_width="256px"))
        self.caption = w.HTML(value="<i>no image yet</i>")
        self.prompt = w.Textarea(placeholder="What should the model look for?", rows=2,
                                 layout=w.Layout(width="100%"))
        self.ask_button = w.Button(description="Ask", icon="eye", button_style="primary")
        self.output = w.Output()
        self.output.add_class("gleitzeit-answer")
        self.upload.observe(self._uploaded, names="value")
        self.path.observe(self._path_entered, names="value")
        self.ask_button.on_click(lambda _: self._ask_from_ui())
        left = w.VBox([self.thumbnail, self.caption], layout=w.Layout(min_width="200px"))
        right = w.VBox([self.prompt, w.HBox([self.ask_button, self.stop_button]),
                        self.model_picker, self.output, self.status],
                       layout=w.Layout(flex="1"))
        self.children = [w.HBox([self.upload, self.path]), w.HBox([left, right])]
        self.add_class("gleitzeit-vision")

    # -- API ---------------------------------------------------------------------------------
    @property
    def answer(self) -> str:
        """The answer so far (partial while streaming or after Stop)."""
        return self._stream.text if self._stream is not None else ""

    def load_image(self, obj: Any) -> PreparedImage:
        """Normalise ``obj`` (as ``%vision`` does), show its thumbnail; raises ``ImageError``."""
        if isinstance(obj, str) and not obj.startswith("data:") and len(obj) < 4096:
            obj = os.path.expanduser(obj)
        prepared = prepare_image(obj, max_edge=self.max_edge)
        self.image = prepared
        self.thumbnail.value = prepared.thumbnail_png()
        (wd, ht), (ow, oh) = prepared.size, prepared.original_size
        scaled = f" (from {ow}×{oh})" if prepared.size != prepared.original_size else ""
        self.caption.value = (f"<small>sent: {wd}×{ht} {prepared.format}, "
                              f"{len(prepared.data) / 1024:.0f} kB{scaled}</small>")
        return prepared

    def ask(self, prompt: str) -> asyncio.Task[Reply | None]:
        """Ask about the loaded image; the task's result is the Reply (None if stopped/failed)."""
        if self.image is None:
            raise ValueError("Load an image first (upload one, type a path or call load_image).")
        if self.running:
            raise RuntimeError("A request is already running: wait for it or press Stop.")
        req = make_request(prompt.strip() or "Describe this image.", images=[self.image],
                           model=self.model, host=self.host, timeout=self.timeout,
                           remember=False)
        show_bundle(self.output, {"text/plain": "…", "text/markdown": "*…*"})
        stream = WidgetStream(lambda bundle: show_bundle(self.output, bundle),
                              model=self.model or "")
        return self._start(lambda s: ask_async(req, display=s), stream)

    # -- UI ----------------------------------------------------------------------------------
    def _busy(self, busy: bool) -> None:
        super()._busy(busy)
        self.ask_button.disabled = busy

    def _ask_from_ui(self) -> None:
        if self.running:
            return
        try:
            self.ask(self.prompt.value)
        except ValueError as exc:
            self._set_status(f"⚠ {exc}")

    def _load_from_ui(self, obj: Any) -> None:
        try:
            self.load_image(obj)
            self._set_status("")
        except Exception as exc:  # ImageError and friends: shown, with their advice
            self._set_status(f"⚠ {exc}")

    def _uploaded(self, change: dict[str, Any]) -> None:
        files = change["new"]
        if files:
            self._load_from_ui(bytes(files[0]["content"]))
            self.upload.value = ()  # emptied, so the same file can be loaded again

    def _path_entered(self, change: dict[str, Any]) -> None:
        if change["new"].strip():
            self._load_from_ui(change["new"].strip())
            self.path.value = ""  # likewise for the same path
