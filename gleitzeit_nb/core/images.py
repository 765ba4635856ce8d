"""Image inputs for vision requests: many forms in, checked base64 out.

Accepted: a path (str or ``os.PathLike``), ``bytes``, a base64 string, a ``data:`` URL, or a PIL
image. Anything that Pillow cannot identify as an image raises ``ImageError`` naming the source,
before any request is sent.

``prepare_image`` / ``PreparedImage`` (resize, orientation and re-encoding before upload) live in
``image_prep`` and are re-exported here.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ImageError

if TYPE_CHECKING:
    from .image_prep import PreparedImage, prepare_image

_B64_CHARS = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic")


def describe(obj: Any) -> str:
    """A short name for an image input, for error messages."""
    if isinstance(obj, (str, os.PathLike)):
        text = os.fspath(obj)
        if len(text) <= 80:
            return f"'{text}'"
        if isinstance(obj, os.PathLike) or (len(text) < 4096 and os.path.exists(text)):
            return f"'…{text[-60:]}'"  # keep the file name
        return f"'{text[:40]}…' ({len(text)} characters)"
    return f"a {type(obj).__name__} object"


def image_bytes(obj: Any) -> bytes:
    """The encoded image file bytes behind ``obj`` (not yet checked to be an image)."""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj)
    if isinstance(obj, os.PathLike):
        return _read_file(Path(obj))
    if isinstance(obj, str):
        return _bytes_from_string(obj)
    if _is_pil_image(obj):
        buf = io.BytesIO()
        try:
            try:
                obj.save(buf, format="PNG")
            except OSError:  # a mode PNG cannot hold (CMYK, F, YCbCr…): as RGB
                buf = io.BytesIO()
                obj.convert("RGB").save(buf, format="PNG")
        except Exception as exc:  # e.g. a closed image
            raise ImageError(f"Image {describe(obj)} cannot be encoded: {exc}.",
                             source=describe(obj)) from exc
        return buf.getvalue()
    raise ImageError(
        f"Unsupported image input {describe(obj)}: give a file path, bytes, a base64 string, "
        "a data: URL or a PIL image.",
        source=describe(obj),
    )


def encode_image(obj: Any) -> str:
    """Base64 text of the image behind ``obj``, after checking Pillow can read it."""
    data = image_bytes(obj)
    check_image(data, describe(obj))
    return base64.b64encode(data).decode("ascii")


def check_image(data: bytes, source: str) -> str:
    """Return the image format of ``data`` (e.g. 'PNG'); ``ImageError`` if it is not an image."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageError(f"Image {source} is empty (0 bytes).", source=source)
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or "unknown"
            img.verify()  # structure and checksums (PNG); does not catch a cut-off JPEG
        with Image.open(io.BytesIO(data)) as img:
            if fmt == "JPEG":  # decode at 1/8 scale: cheap, and still finds truncation
                img.draft(img.mode, (max(1, img.width // 8), max(1, img.height // 8)))
            img.load()
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{source} is not a readable image: {exc}", source=source) from exc
    except (OSError, SyntaxError, ValueError) as exc:  # what Pillow raises for corrupt files
        raise ImageError(f"Image {source} is damaged or truncated: {exc}", source=source) from exc
    return fmt


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"Image file not found: '{path}' (cwd is {os.getcwd()}).",
                         source=str(path)) from None
    except IsADirectoryError:
        raise ImageError(f"'{path}' is a directory, not an image file.", source=str(path)) from None
    except OSError as exc:
        raise ImageError(f"Cannot read image file '{path}': {exc.strerror}.",
                         source=str(path)) from exc


def _bytes_from_string(text: str) -> bytes:
    if text.startswith("data:"):
        header, sep, payload = text.partition(",")
        if not sep or not header.endswith(";base64"):
            raise ImageError("A data: URL image must look like 'data:image/png;base64,…'.",
                             source=describe(text))
        return _b64decode(payload, describe(text))
    if len(text) < 4096 and os.path.exists(text):
        return _read_file(Path(text))
    compact = "".join(text.split())
    if len(compact) >= 64 and len(compact) % 4 == 0 and _B64_CHARS.fullmatch(compact):
        return _b64decode(compact, describe(text))
    if text.lower().endswith(_IMAGE_SUFFIXES) or os.sep in text or len(text) < 64:
        raise ImageError(f"Image file not found: '{text}' (cwd is {os.getcwd()}).", source=text)
    return _b64decode(text, describe(text))


def _b64decode(text: str, source: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ImageError(f"Image {source} is neither an existing file nor valid base64 data.",
                         source=source) from None


def _is_pil_image(obj: Any) -> bool:
    cls = type(obj)
    return any(c.__module__.startswith("PIL.") and c.__name__ == "Image" for c in cls.__mro__)


def __getattr__(name: str) -> Any:
    # image_prep imports this module, so its names are re-exported lazily (PEP 562)
    if name in ("PreparedImage", "prepare_image"):
        from . import image_prep

        return getattr(image_prep, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
