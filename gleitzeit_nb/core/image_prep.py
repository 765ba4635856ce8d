"""Normalise an image with Pillow before upload: orientation, mode, size and a compact encoding.

``prepare_image`` accepts everything ``images.image_bytes`` does (path, bytes, base64, ``data:``
URL, PIL image) plus NumPy arrays and matplotlib figures. NumPy and matplotlib are never imported
here unless such an object is passed in.

Output format rule:

* matplotlib figures -> PNG (text and lines stay sharp);
* lossy sources (JPEG, MPO, WebP, HEIF/AVIF, JPEG 2000) -> JPEG, quality 85;
* everything else (PNG, GIF, BMP, TIFF, arrays, in-memory PIL images) -> PNG, unless the prepared
  image is RGB with more distinct colours than ``min(PHOTO_COLOURS, pixels / 8)`` (a photo
  stored losslessly: line art and screenshots stay far below that), which goes out as JPEG.

A JPEG or PNG file that already fits ``max_edge``, is RGB or L, and has no transparency, animation
or EXIF rotation is sent as its original bytes: a stable hash and no generation loss. Every other
image is re-encoded without metadata (EXIF, ICC, text chunks).
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import os
import threading
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ImageError
from .images import _is_pil_image, describe, image_bytes

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

JPEG_QUALITY = 85
PHOTO_COLOURS = 32_768  # cap on the distinct-colour count that marks a photograph
_LOSSY_FORMATS = frozenset({"JPEG", "MPO", "WEBP", "HEIF", "AVIF", "JPEG2000"})
_DCT_FORMATS = frozenset({"JPEG", "MPO"})  # formats whose decoder can scale down (draft mode)
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_ORIENTATION_TAG = 0x0112
_MIME = {"JPEG": "image/jpeg", "PNG": "image/png"}


@dataclass(frozen=True)
class PreparedImage:
    """An image ready to upload, and what was done to get there.

    ``size`` is what is sent; ``original_size`` is the input's size as displayed (after EXIF
    rotation); ``original_bytes`` is the input's encoded size, 0 for in-memory objects.
    """

    data: bytes = field(repr=False)
    format: str
    size: tuple[int, int]
    original_size: tuple[int, int]
    original_bytes: int
    source: str

    @property
    def b64(self) -> str:
        """The payload as base64 text, as the Ollama API expects it."""
        return base64.b64encode(self.data).decode("ascii")

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the payload."""
        return hashlib.sha256(self.data).hexdigest()

    @property
    def mime(self) -> str:
        """``image/jpeg`` or ``image/png``."""
        return _MIME[self.format]

    def thumbnail_png(self, max_edge: int = 256) -> bytes:
        """A small PNG of the sent image (longest edge at most ``max_edge``), for display."""
        from PIL import Image

        _check_limit(max_edge, "max_edge", allow_none=False)
        with Image.open(io.BytesIO(self.data)) as img:
            img.thumbnail((max_edge, max_edge), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            img.save(buf, format="PNG")
        return buf.getvalue()


def prepare_image(
    obj: Any, *, max_edge: int | None = 1024, max_pixels: int | None = None
) -> PreparedImage:
    """Decode, normalise and re-encode ``obj`` for a vision request.

    EXIF orientation is applied; alpha is composited onto white; CMYK/palette become RGB, 16-bit
    and float images are stretched to 8-bit grey by their actual range. The longest edge is scaled
    down to ``max_edge`` (never up; ``None`` keeps the size). Encoded inputs above ``max_pixels``
    (default ``PIL.Image.MAX_IMAGE_PIXELS``) are refused as possible decompression bombs.
    Animated images give their first frame. Every failure raises ``ImageError``.
    """
    from PIL import Image, ImageOps

    _check_limit(max_edge, "max_edge")
    _check_limit(max_pixels, "max_pixels")
    source = describe(obj)
    data: bytes | None = None
    if _is_ndarray(obj):
        kind, img, fmt = "array", _array_to_image(obj, source), None
    elif _is_pil_image(obj):
        kind, img, fmt = "pil", obj, obj.format
    elif _is_figure(obj):
        kind, data = "figure", _render_figure(obj, source)
    elif isinstance(obj, (bytes, bytearray, memoryview, str, os.PathLike)):
        kind, data = "file", image_bytes(obj)
    else:
        raise ImageError(
            f"Unsupported image input {source}: give a file path, bytes, a base64 string, a data: "
            "URL, a PIL image, a NumPy array or a matplotlib figure.", source=source)

    # catch_warnings changes process-wide state: one image at a time here (batch prepares
    # images in threads), or another thread's filters could be left behind for good.
    with _WARNINGS_LOCK, warnings.catch_warnings():
        if data is not None:
            img, fmt, original_size, unchanged = _decode(data, source, max_edge, max_pixels,
                                                         may_pass=kind == "file")
            if unchanged:
                return PreparedImage(data, fmt, original_size, original_size, len(data), source)
        else:
            _load(img, source)
            original_size = _oriented_size(img.size, _orientation(img, source))
        try:
            img = ImageOps.exif_transpose(img)  # always a new image: the caller's is not touched
            img = _to_rgb_or_l(img, source)
            target = _fit(original_size, max_edge)
            if img.size != target:
                img = img.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
            out_format = _output_format(kind, fmt, img)
            img.info.clear()  # drop EXIF, ICC and text: the CMYK/EXIF ones no longer apply
            buf = io.BytesIO()
            if out_format == "JPEG":
                img.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
            else:
                img.save(buf, format="PNG", optimize=True)
        except ImageError:
            raise
        except Exception as exc:
            raise ImageError(f"Could not convert image {source}: {exc}. Save it as an RGB PNG "
                             "or JPEG and try again.", source=source) from exc
    return PreparedImage(buf.getvalue(), out_format, img.size, original_size,
                         len(data) if data is not None and kind == "file" else 0,
                         source)


_WARNINGS_LOCK = threading.Lock()


def _decode(
    data: bytes, source: str, max_edge: int | None, max_pixels: int | None, *, may_pass: bool
) -> tuple[PILImage, str, tuple[int, int], bool]:
    """Open, bomb-check and load ``data``; returns (image, format, oriented size, send as-is)."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageError(f"Image {source} is empty (0 bytes).", source=source)
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    # Pillow's own warning threshold is checked below with the exact size; later warnings (e.g.
    # GIF frames) are errors unless the caller deliberately allowed more than Pillow's default.
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageError(
            f"{source} is not an image Pillow can read. Use a PNG, JPEG, WebP, GIF, BMP or TIFF "
            "file (HEIC needs the pillow-heif plugin).", source=source) from None
    except Image.DecompressionBombError as exc:
        raise _bomb_error(source, str(exc)) from None
    except Exception as exc:
        raise _damaged(source, exc) from exc
    pixels = img.width * img.height
    if limit is not None and pixels > limit:
        raise _bomb_error(source, f"{img.width}×{img.height} = {pixels:,} pixels, above the limit "
                                  f"of {limit:,}")
    if Image.MAX_IMAGE_PIXELS is None or limit is None or limit <= Image.MAX_IMAGE_PIXELS:
        warnings.simplefilter("error", Image.DecompressionBombWarning)

    fmt = img.format or "unknown"
    orientation = _orientation(img, source)
    size = _oriented_size(img.size, orientation)  # before draft() shrinks img
    target = _fit(img.size, max_edge)
    unchanged = (may_pass and fmt in _MIME and img.mode in ("RGB", "L") and target == img.size
                 and orientation == 1 and not _has_alpha(img)
                 and not getattr(img, "is_animated", False))
    if fmt in _DCT_FORMATS and (unchanged or target != img.size):
        # JPEG DCT scaling decodes at 1/2, 1/4 or 1/8 size. When the original bytes are sent the
        # decode only proves the file is complete, so 1/8 is enough.
        img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)) if unchanged else target)
    _load(img, source)
    if unchanged and fmt == "PNG":  # sent as is: load() checks neither CRCs nor the end chunk
        try:
            Image.open(io.BytesIO(data)).verify()
        except Exception as exc:
            raise _damaged(source, exc) from exc
    return img, fmt, size, unchanged


def _load(img: PILImage, source: str) -> None:
    from PIL import Image

    try:
        img.load()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise _bomb_error(source, str(exc)) from None
    except Exception as exc:
        raise _damaged(source, exc) from exc


def _orientation(img: PILImage, source: str) -> int:
    try:
        value = img.getexif().get(_ORIENTATION_TAG, 1)  # PNG: may load the image to find eXIf
    except Exception as exc:
        raise _damaged(source, exc) from exc
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _oriented_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    width, height = size
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _fit(size: tuple[int, int], max_edge: int | None) -> tuple[int, int]:
    """``size`` scaled down so its longest edge is exactly ``max_edge`` (never up)."""
    width, height = size
    if max_edge is None or max(width, height) <= max_edge:
        return size
    if width >= height:
        return max_edge, max(1, round(height * max_edge / width))
    return max(1, round(width * max_edge / height)), max_edge


def _has_alpha(img: PILImage) -> bool:
    palette = getattr(img, "palette", None)
    return (img.mode in _ALPHA_MODES or "transparency" in img.info
            or (img.mode == "P" and palette is not None and palette.mode == "RGBA"))


def _to_rgb_or_l(img: PILImage, source: str) -> PILImage:
    """RGB or L: alpha onto white, 16-bit/float stretched by range, everything else to RGB."""
    from PIL import Image

    mode = img.mode
    if mode == "F" or mode == "I" or mode.startswith("I;"):
        return _stretch_to_l(img, source)
    if mode == "1":
        return img.convert("L")
    if _has_alpha(img):
        rgba = img.convert("RGBA")
        out = Image.new("RGB", img.size, "white")
        out.paste(rgba, mask=rgba.getchannel("A"))
        return out
    return img if mode in ("RGB", "L") else img.convert("RGB")


def _stretch_to_l(img: PILImage, source: str) -> PILImage:
    from PIL import Image

    grey = img if img.mode == "F" else img.convert("F")
    lo, hi = grey.getextrema()
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ImageError(f"Image {source} contains NaN or infinite values; replace them first.",
                         source=source)
    if hi <= lo:
        return Image.new("L", img.size, int(min(max(lo, 0), 255)))
    scale = 255.0 / (hi - lo)
    offset = 0.5 - lo * scale  # +0.5: convert("L") truncates
    return grey.point(lambda v: v * scale + offset).convert("L")


def _output_format(kind: str, fmt: str | None, img: PILImage) -> str:
    if kind == "figure" or max(img.size) > 65_500:  # (JPEG cannot hold more per side)
        return "PNG"
    if fmt in _LOSSY_FORMATS:
        return "JPEG"
    threshold = min(PHOTO_COLOURS, img.width * img.height // 8)
    if img.mode == "RGB" and img.getcolors(max(threshold, 256)) is None:
        return "JPEG"
    return "PNG"


def _is_ndarray(obj: Any) -> bool:
    return any(c.__module__ == "numpy" and c.__name__ == "ndarray" for c in type(obj).__mro__)


def _is_figure(obj: Any) -> bool:
    return any(c.__name__ == "Figure" and c.__module__.startswith("matplotlib.")
               for c in type(obj).__mro__)


def _array_to_image(obj: Any, source: str) -> PILImage:
    """H×W, H×W×1/3/4 arrays: uint8 as is, bool as 0/255, floats in 0..1 times 255, other
    integers and floats outside 0..1 stretched by their actual range."""
    import numpy as np
    from PIL import Image

    arr = np.asarray(obj)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.size == 0 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        hint = ("; for channels-first data pass arr.transpose(1, 2, 0)"
                if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) else "")
        raise ImageError(f"An array of shape {arr.shape} is not an image: expected H×W, H×W×1, "
                         f"H×W×3 or H×W×4{hint}.", source=source)
    kind = arr.dtype.kind
    if kind == "b":
        arr = arr.astype(np.uint8) * 255
    elif kind in "ui" and arr.dtype != np.uint8:
        arr = _stretch(arr.astype(np.float32), np)
    elif kind == "f":
        if not np.isfinite(arr).all():
            raise ImageError("The array contains NaN or infinite values; replace them first, "
                             "e.g. with numpy.nan_to_num(arr).", source=source)
        if arr.min() >= 0 and arr.max() <= 1:
            arr = np.rint(arr * 255.0).astype(np.uint8)
        else:
            arr = _stretch(arr.astype(np.float32), np)
    elif arr.dtype != np.uint8:
        raise ImageError(f"Arrays of dtype {arr.dtype} are not supported: use uint8, uint16, "
                         "bool, or float in 0..1.", source=source)
    return Image.fromarray(np.ascontiguousarray(arr))


def _stretch(arr: Any, np: Any) -> Any:
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        return np.full(arr.shape, min(max(lo, 0), 255), dtype=np.uint8)
    return np.rint((arr - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _render_figure(fig: Any, source: str) -> bytes:
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png")  # works after plt.close(fig), as the inline backend does
    except Exception as exc:
        raise ImageError(f"Could not render the matplotlib figure: {exc}", source=source) from exc
    return buf.getvalue()


def _bomb_error(source: str, detail: str) -> ImageError:
    return ImageError(
        f"Image {source} is refused as a possible decompression bomb: {detail.rstrip('.')}. "
        "If you trust it, pass a larger max_pixels= (beyond twice PIL.Image.MAX_IMAGE_PIXELS, "
        "raise that too).", source=source)


def _damaged(source: str, exc: BaseException) -> ImageError:
    return ImageError(f"Image {source} is damaged or truncated ({exc}). Re-export or re-download "
                      "it and try again.", source=source)


def _check_limit(value: int | None, name: str, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        expected = "a positive integer or None" if allow_none else "a positive integer"
        raise ImageError(f"{name} must be {expected}, not {value!r}.")
