"""Vision inputs: every accepted form reaches the server as the same base64; bad ones never do."""

import base64
import io

import pytest
from PIL import Image

from gleitzeit_nb.errors import ImageError

from .conftest import generation_requests


def png_bytes(size=(64, 48), mode="RGB", color="red") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, format="PNG")
    return buf.getvalue()


def vision(image_key, value, prompt="What is this?"):
    return {"model": "llava:latest", "messages": [{"role": "user", "content": prompt}], image_key: value}


@pytest.mark.parametrize("form", ["path", "pathlike", "bytes", "base64", "data_url"])
async def test_image_forms_send_the_file_bytes(provider, sim, tmp_path, form):
    data = png_bytes()
    f = tmp_path / "red.png"
    f.write_bytes(data)
    value = {"path": str(f), "pathlike": f, "bytes": data,
             "base64": base64.b64encode(data).decode(),
             "data_url": "data:image/png;base64," + base64.b64encode(data).decode()}[form]
    result = await provider.handle_request("vision", vision("images", [value]))
    sent = generation_requests(sim)[-1].body["messages"][-1]["images"]
    assert [base64.b64decode(s) for s in sent] == [data]
    assert "PNG image of 64x48" in result["response"]


async def test_image_path_guide_parameter_and_pil(provider, sim, tmp_path):
    f = tmp_path / "a.png"
    f.write_bytes(png_bytes((10, 20)))
    pil = Image.new("RGBA", (30, 40), (0, 0, 255, 128))
    result = await provider.handle_request("vision", {**vision("image_path", str(f)), "images": [pil]})
    assert result["image_analyzed"] == str(f)
    sent = generation_requests(sim)[-1].body["messages"][-1]["images"]
    sizes = [Image.open(io.BytesIO(base64.b64decode(s))).size for s in sent]
    assert sizes == [(10, 20), (30, 40)]


async def test_vision_streams(provider, sim):
    stream = await provider.stream_request("vision", vision("images", [png_bytes()]))
    await stream.collect()
    assert stream.done and stream.text.startswith("I see a PNG image")


@pytest.mark.parametrize("make, text", [
    (lambda d: str(d / "nope.jpg"), "Image file not found"),
    (lambda d: (d / "t.jpg").write_text("not an image") and str(d / "t.jpg"), "not a readable image"),
    (lambda d: png_bytes()[:60], "damaged or truncated|not a readable image"),
    (lambda d: b"", "empty"),
    (lambda d: "data:image/png,abc", "data: URL"),
    (lambda d: "x" * 100 + "!!", "neither an existing file nor valid base64"),
    (lambda d: 42, "Unsupported image input"),
    (lambda d: str(d), "is a directory"),
])
async def test_bad_images_fail_before_any_request(provider, sim, tmp_path, make, text):
    value = make(tmp_path)
    with pytest.raises(ImageError, match=text):
        await provider.handle_request("vision", vision("images", [value]))
    with pytest.raises(ImageError, match=text):
        provider.stream_request("vision", vision("images", [value]))
    assert generation_requests(sim) == []


async def test_truncated_jpeg_is_an_image_error(provider, sim, tmp_path):
    buf = io.BytesIO()
    Image.effect_noise((400, 300), 50).convert("RGB").save(buf, format="JPEG")
    f = tmp_path / "cut.jpg"
    f.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="cut.jpg"):
        await provider.handle_request("vision", vision("image_path", str(f)))
