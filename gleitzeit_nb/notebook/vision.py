"""``%vision`` helpers: find the image, normalise it, show the thumbnail, check the model."""

from __future__ import annotations

import base64
import os
import shlex
from typing import Any

from IPython.core.error import UsageError

from ..core.image_prep import PreparedImage, prepare_image
from .display import resolve_mode


def split_image(text: str) -> tuple[str, str]:
    """``IMAGE [PROMPT]`` → (image reference, prompt); the image may be quoted if it has spaces."""
    text = text.strip()
    if not text:
        raise UsageError("Which image? Use %vision IMAGE [PROMPT] with a file path or a variable.")
    if text[0] in ("'", '"'):
        lexer = shlex.shlex(text, posix=True)
        lexer.whitespace_split = True
        try:
            ref = next(iter(lexer))
        except ValueError:  # "No closing quotation"
            raise UsageError(f"The image name {text.split()[0]} has no closing quote.") from None
        return ref, lexer.instream.read().strip()
    ref, _, prompt = text.partition(" ")
    return ref, prompt.strip()


def resolve_image(ref: str, user_ns: dict[str, Any]) -> Any:
    """A variable of that name in the notebook, else a file path."""
    if ref.isidentifier() and ref in user_ns:
        return user_ns[ref]
    return os.path.expanduser(ref)


def prepare_and_show(obj: Any, *, max_edge: int, mode: str) -> PreparedImage:
    """Normalise the image and show a thumbnail of exactly what is sent."""
    prepared = prepare_image(obj, max_edge=max_edge)
    if resolve_mode(mode) != "terminal":
        from IPython.display import display

        w, h = prepared.size
        caption = (f"image sent: {w}×{h} {prepared.format}, {len(prepared.data) / 1024:.0f} kB"
                   + (f" (from {prepared.original_size[0]}×{prepared.original_size[1]})"
                      if prepared.size != prepared.original_size else ""))
        display({"image/png": base64.b64encode(prepared.thumbnail_png()).decode("ascii"),
                 "text/plain": f"[{caption}]"}, raw=True, metadata={"image/png": {"alt": caption}})
    return prepared
