"""Image inputs: base64 decoding with Go-like error messages, Pillow
sniffing, and the deterministic description a vision reply starts with."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import string
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

_B64_ALPHABET = frozenset(string.ascii_letters + string.digits + "+/")


class ImageError(ValueError):
    """An image could not be decoded; ``str(err)`` is the Ollama-style message."""


@dataclass(frozen=True)
class ImageInfo:
    """What Pillow saw in one uploaded image."""

    format: str
    width: int
    height: int
    mode: str
    digest: str

    def describe(self) -> str:
        """E.g. ``"I see a PNG image of 640x480 pixels (RGB)."``"""
        return f"I see a {self.format} image of {self.width}x{self.height} pixels ({self.mode})."


def _illegal_byte(data: str) -> int:
    """Position Go's base64 decoder would report for malformed ``data``."""
    stripped = data.replace("\r", "").replace("\n", "")
    for pos, ch in enumerate(stripped):
        if ch == "=":
            tail = stripped[pos:]
            if tail.strip("=") or len(tail) > 2 or len(stripped) % 4:
                return pos
            return len(stripped)
        if ch not in _B64_ALPHABET:
            return pos
    return len(stripped) - len(stripped) % 4


def decode_base64(data: Any) -> bytes:
    """Strict standard base64 (newlines ignored), raising ``ImageError``."""
    if not isinstance(data, str):
        kind = type(data).__name__
        raise ImageError(f"json: cannot unmarshal {kind} into Go struct field of type api.ImageData")
    compact = data.replace("\r", "").replace("\n", "")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError(f"illegal base64 data at input byte {_illegal_byte(data)}") from None


def inspect_image(data: Any) -> ImageInfo:
    """Decode one base64 image and describe it, raising ``ImageError``."""
    raw = decode_base64(data)
    try:
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            fmt = img.format or "unknown"
            return ImageInfo(fmt, img.width, img.height, img.mode,
                             hashlib.sha256(raw).hexdigest()[:16])
    except UnidentifiedImageError:
        raise ImageError("image: unknown format") from None
    except Exception as exc:  # truncated or corrupt data Pillow recognised
        raise ImageError(f"image: {exc}") from None
