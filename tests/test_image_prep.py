"""prepare_image: orientation, modes, resizing, re-encoding, pass-through and refusals."""

import base64
import io
import struct
import warnings
import zlib
from pathlib import Path

import pytest
from PIL import Image

from gleitzeit_nb.core.images import PreparedImage, prepare_image
from gleitzeit_nb.errors import ImageError

WHITE = (255, 255, 255)


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def decoded(prepared: PreparedImage) -> Image.Image:
    img = Image.open(io.BytesIO(prepared.data))
    assert img.format == prepared.format and img.size == prepared.size
    return img


def close(a, b, tol=24) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b))


def write(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory) -> str:
    """A 6000×4000 photo-like JPEG (smooth noise plus a gradient) on disk."""
    noise = Image.effect_noise((1500, 1000), 40).resize((6000, 4000), Image.Resampling.BILINEAR)
    ramp = Image.linear_gradient("L").resize((6000, 4000))
    img = Image.merge("RGB", (noise, ramp, Image.blend(noise, ramp, 0.5)))
    path = tmp_path_factory.mktemp("big") / "photo.jpg"
    img.save(path, format="JPEG", quality=90)
    return str(path)


# --- orientation and modes -------------------------------------------------------------------

def test_exif_orientation_is_applied_and_exif_dropped(tmp_path):
    img = Image.new("RGB", (120, 80), "blue")
    img.paste((255, 0, 0), (0, 0, 32, 32))  # red at the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90° clockwise
    exif[0x010F] = "TestCam"  # Make
    p = prepare_image(write(tmp_path, "rot.jpg", encode(img, "JPEG", exif=exif.tobytes())))
    out = decoded(p)
    assert p.size == (80, 120) and p.original_size == (80, 120) and p.format == "JPEG"
    assert close(out.getpixel((75, 5)), (255, 0, 0))  # top-right once rotated
    assert close(out.getpixel((5, 115)), (0, 0, 255))
    assert "exif" not in out.info and len(out.getexif()) == 0


def test_rgba_transparent_area_becomes_white():
    img = Image.new("RGBA", (40, 20), (0, 0, 0, 0))
    img.paste((0, 128, 0, 255), (20, 0, 40, 20))
    p = prepare_image(encode(img))
    out = decoded(p)
    assert p.format == "PNG" and out.mode == "RGB"
    assert out.getpixel((5, 5)) == WHITE and out.getpixel((30, 5)) == (0, 128, 0)


def test_palette_png_with_transparency():
    img = Image.new("P", (30, 30), 0)
    img.putpalette([0, 0, 0, 200, 0, 0] + [0] * 762)
    img.paste(1, (15, 0, 30, 30))
    p = prepare_image(encode(img, transparency=0))
    out = decoded(p)
    assert out.mode == "RGB" and out.getpixel((2, 2)) == WHITE and out.getpixel((20, 2)) == (200, 0, 0)


def test_la_is_composited_onto_white():
    img = Image.new("LA", (20, 20), (0, 0))
    img.paste((50, 255), (10, 0, 20, 20))
    out = decoded(prepare_image(encode(img)))
    assert out.mode == "RGB" and out.getpixel((2, 2)) == WHITE and out.getpixel((15, 2)) == (50,) * 3


def test_cmyk_jpeg_becomes_rgb():
    img = Image.new("CMYK", (64, 48), (0, 255, 255, 0))  # red
    p = prepare_image(encode(img, "JPEG"))
    out = decoded(p)
    assert p.format == "JPEG" and out.mode == "RGB" and close(out.getpixel((30, 20)), (255, 0, 0))


def gradient16(width=256, lo=1000, step=8) -> Image.Image:
    row = struct.pack(f"<{width}H", *(lo + step * x for x in range(width)))
    return Image.frombytes("I;16", (width, 16), row * 16)


def test_16bit_png_is_stretched_not_clipped():
    data = encode(gradient16())  # values 1000..3040: a plain convert("L") is all white
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    out = decoded(prepare_image(data))
    assert out.mode == "L" and out.getextrema() == (0, 255)
    assert out.getpixel((0, 0)) == 0 and out.getpixel((255, 0)) == 255
    assert 110 < out.getpixel((128, 0)) < 145


@pytest.mark.parametrize("mode, lo, step", [("I", -5000, 40), ("F", 0.0, 1e-5)])
def test_int32_and_float_images_are_stretched(mode, lo, step):
    img = gradient16().convert(mode).point(lambda v: (v - 1000) / 8 * step + lo)
    p = prepare_image(img)
    out = decoded(p)
    assert out.mode == "L" and out.getextrema() == (0, 255) and p.original_bytes == 0
    assert out.getpixel((0, 3)) == 0 and out.getpixel((255, 3)) == 255


def test_bilevel_and_animated_gif_first_frame():
    assert decoded(prepare_image(Image.new("1", (8, 8), 1))).getpixel((0, 0)) == 255
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue")]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    out = decoded(prepare_image(gif))
    assert out.mode == "RGB" and out.getpixel((8, 8)) == (255, 0, 0)


# --- size, re-encoding and pass-through ------------------------------------------------------

def test_big_jpeg_is_drafted_down_to_1024(big_jpeg, monkeypatch):
    from PIL import JpegImagePlugin

    decoded_at = []
    real_load = JpegImagePlugin.JpegImageFile.load

    def load(self):
        decoded_at.append(self.size)  # after draft(): the size the decoder actually produces
        return real_load(self)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", load)
    p = prepare_image(big_jpeg, max_edge=1024)
    assert decoded_at and max(decoded_at[0]) <= 6000 // 4  # DCT-scaled, never a full decode
    assert p.size == (1024, 683) and p.original_size == (6000, 4000) and p.format == "JPEG"
    assert p.original_bytes == len(Path(big_jpeg).read_bytes())
    assert len(p.data) * 10 <= p.original_bytes
    decoded(p)


def test_max_edge_none_keeps_size(big_jpeg):
    p = prepare_image(big_jpeg, max_edge=None)
    assert p.size == p.original_size == (6000, 4000)
    assert p.data == Path(big_jpeg).read_bytes()


def test_portrait_and_never_upscaled():
    tall = prepare_image(Image.new("RGB", (300, 900), "red"), max_edge=100)
    assert tall.size == (33, 100) and tall.original_size == (300, 900)
    assert prepare_image(Image.new("RGB", (30, 20)), max_edge=4000).size == (30, 20)


@pytest.mark.parametrize("mode, fmt", [("RGB", "PNG"), ("L", "PNG"), ("RGB", "JPEG"), ("L", "JPEG")])
def test_small_rgb_or_grey_file_passes_through_byte_identical(tmp_path, mode, fmt):
    data = encode(Image.linear_gradient("L").convert(mode).resize((200, 100)), fmt)
    for obj in (write(tmp_path, f"a.{fmt.lower()}", data), data, base64.b64encode(data).decode()):
        p = prepare_image(obj)
        assert p.data == data and p.format == fmt and p.size == (200, 100)
        assert p.mime == f"image/{fmt.lower()}" and p.original_bytes == len(data)


def test_photographic_png_becomes_jpeg_and_line_art_stays_png():
    noise = Image.effect_noise((400, 300), 60)
    photo = Image.merge("RGB", (noise, noise.transpose(Image.Transpose.ROTATE_180), noise))
    assert prepare_image(encode(photo), max_edge=256).format == "JPEG"
    art = Image.new("RGB", (400, 300), "white")
    art.paste((0, 0, 200), (50, 50, 350, 60))
    assert prepare_image(encode(art), max_edge=256).format == "PNG"


def test_sha256_stable_and_thumbnail(big_jpeg):
    rgba = encode(Image.new("RGBA", (500, 400), (10, 20, 30, 128)))
    first, second = prepare_image(rgba), prepare_image(rgba)
    assert first.sha256 == second.sha256 and first == second
    assert base64.b64decode(first.b64) == first.data and len(first.sha256) == 64
    for p in (first, prepare_image(big_jpeg, max_edge=None)):
        thumb = Image.open(io.BytesIO(p.thumbnail_png()))
        assert thumb.format == "PNG" and max(thumb.size) == 256
    assert max(Image.open(io.BytesIO(first.thumbnail_png(64))).size) == 64
    assert "data=" not in repr(first)


# --- refusals --------------------------------------------------------------------------------

def test_truncated_jpeg_names_the_file(tmp_path):
    data = encode(Image.effect_noise((400, 300), 50).convert("RGB"), "JPEG")
    path = write(tmp_path, "cut.jpg", data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"cut\.jpg.*truncated"):
        prepare_image(path)


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not an image at all")
    with pytest.raises(ImageError, match=r"notes\.jpg.*not an image") as err:
        prepare_image(str(path))
    assert err.value.source == f"'{path}'"


def png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("width, height, max_pixels, shown", [
    (10_000, 10_000, None, "100,000,000 pixels"),  # above Pillow's warning limit
    (20_000, 20_000, None, "400000000 pixels"),  # above its hard limit: Pillow's message
    (640, 480, 100_000, "307,200 pixels"),
])
def test_decompression_bombs_are_refused(tmp_path, width, height, max_pixels, shown):
    path = write(tmp_path, "bomb.png", png_header(width, height))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may leak as a mere warning
        with pytest.raises(ImageError, match=rf"bomb\.png.*decompression bomb.*{shown}"):
            prepare_image(path, max_pixels=max_pixels)


def test_max_pixels_can_be_raised_and_bad_arguments():
    assert prepare_image(Image.new("RGB", (50, 50)), max_pixels=10).size == (50, 50)  # in memory
    for kw in ({"max_edge": 0}, {"max_edge": 1.5}, {"max_pixels": -1}, {"max_edge": True}):
        with pytest.raises(ImageError, match="must be a positive integer"):
            prepare_image(b"x", **kw)
    for bad, text in ((42, "Unsupported image input"), (b"", "empty"), ("/no/such.png", "not found")):
        with pytest.raises(ImageError, match=text):
            prepare_image(bad)


# --- NumPy arrays and matplotlib figures -----------------------------------------------------

def test_numpy_arrays():
    np = pytest.importorskip("numpy", reason="numpy is an optional extra")
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[:, 30:] = (255, 0, 0)
    out = decoded(prepare_image(rgb))
    assert out.size == (60, 40) and out.getpixel((45, 10)) == (255, 0, 0) and out.getpixel((5, 5)) == (0, 0, 0)
    grey = np.tile(np.linspace(0.0, 1.0, 64), (16, 1))
    out = decoded(prepare_image(grey))
    assert out.mode == "L" and out.getpixel((0, 0)) == 0 and out.getpixel((63, 0)) == 255
    mask = np.zeros((10, 10), bool)
    mask[:, 5:] = True
    out = decoded(prepare_image(mask[:, :, None]))
    assert out.mode == "L" and out.getpixel((7, 0)) == 255 and out.getpixel((2, 0)) == 0
    wide = np.tile(np.arange(1000, 1256, dtype=np.uint16), (4, 1))
    assert decoded(prepare_image(wide)).getextrema() == (0, 255)
    rgba = np.zeros((8, 8, 4), np.uint8)
    assert decoded(prepare_image(rgba)).getpixel((0, 0)) == WHITE
    with pytest.raises(ImageError, match="channels-first"):
        prepare_image(np.zeros((3, 20, 30), np.uint8))
    with pytest.raises(ImageError, match="NaN"):
        prepare_image(np.full((4, 4), np.nan))
    with pytest.raises(ImageError, match="dtype complex"):
        prepare_image(np.zeros((4, 4), complex))


def test_closed_matplotlib_figure():
    matplotlib = pytest.importorskip("matplotlib", reason="matplotlib is an optional extra")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3), dpi=50)
    ax.plot([0, 1, 2], [0, 1, 0], color="red")
    plt.close(fig)  # what the inline backend does at the end of a cell
    p = prepare_image(fig)
    out = decoded(p)
    assert p.format == "PNG" and p.size == (200, 150) and p.original_bytes == 0
    assert out.mode == "RGB" and out.getpixel((1, 1)) == WHITE


def test_parallel_preparation_leaves_the_warning_filters_alone():
    import asyncio

    jpeg = encode(Image.effect_noise((2000, 1500), 50).convert("RGB"), "JPEG")
    before = list(warnings.filters)

    async def many():
        await asyncio.gather(*[asyncio.to_thread(prepare_image, jpeg) for _ in range(8)])

    asyncio.run(many())
    assert warnings.filters == before


@pytest.mark.parametrize("damage", ["crc", "no_end"])
def test_png_sent_as_is_is_checked_whole(damage):
    data = bytearray(encode(Image.new("RGB", (30, 30), "teal")))
    if damage == "crc":
        idat = data.index(b"IDAT")
        length = struct.unpack(">I", data[idat - 4:idat])[0]
        data[idat + 4 + length] ^= 0xFF  # first byte of the IDAT CRC
    else:
        data = data[:-12]  # no IEND chunk
    with pytest.raises(ImageError, match="damaged or truncated"):
        prepare_image(bytes(data))


def test_very_wide_images_are_png_when_jpeg_cannot_hold_them():
    img = Image.merge("RGB", [Image.effect_noise((70_000, 2), 60) for _ in range(3)])  # photo-like
    p = prepare_image(img, max_edge=None)
    assert p.format == "PNG" and p.size == (70_000, 2)


def test_pil_images_of_any_mode_encode_for_the_provider():
    from gleitzeit_nb.core.images import encode_image

    for img in (Image.new("CMYK", (8, 8), (0, 255, 255, 0)), Image.new("F", (8, 8), 0.5)):
        assert base64.b64decode(encode_image(img))[:8] == b"\x89PNG\r\n\x1a\n"
    closed = Image.new("RGB", (8, 8))
    closed.close()
    with pytest.raises(ImageError, match="cannot be encoded"):
        encode_image(closed)
