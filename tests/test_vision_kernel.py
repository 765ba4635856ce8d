"""%vision in a real kernel: images made here with Pillow, checked as the simulator received them."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from .kernel import start_kernel

SHARED_SIM = True


@pytest.fixture(scope="module")
def kernel(shared_sim, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("vision")
    k = start_kernel(shared_sim.url, "%load_ext gleitzeit_nb", cwd=str(workdir),
                     GLEITZEIT_DISPLAY="live", MPLBACKEND="agg")
    k.workdir = workdir
    yield k
    k.shutdown()


def chat_bodies(sim) -> list[dict]:
    return [r.body for r in sim.requests if r.path == "/api/chat"]


def sent_image(sim) -> Image.Image:
    body = chat_bodies(sim)[-1]
    (b64,) = body["messages"][-1]["images"]
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def thumbnail(ex) -> Image.Image:
    (msg,) = [m for m in ex.of_type("display_data") if "image/png" in m["content"]["data"]]
    return Image.open(io.BytesIO(base64.b64decode(msg["content"]["data"]["image/png"])))


def save(kernel, name: str, img: Image.Image, **kw) -> str:
    path = kernel.workdir / name
    img.save(path, **kw)
    return name


def test_exif_rotated_jpeg(kernel, sim):
    img = Image.new("RGB", (400, 200), "white")
    img.paste((255, 0, 0), (0, 0, 40, 40))  # a red corner, top-left before rotation
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    name = save(kernel, "rot.jpg", img, exif=exif, quality=95)
    ex = kernel.run(f"%vision -m llava {name} Which way is up?")
    assert ex.status == "ok", ex.error
    sent = sent_image(sim)
    assert sent.size == (200, 400)
    r, g, b = sent.convert("RGB").getpixel((190, 10))[:3]
    assert r > 200 and g < 60  # the corner moved to the top-right
    assert thumbnail(ex).size[1] <= 256


def test_rgba_png_onto_white(kernel, sim):
    img = Image.new("RGBA", (100, 80), (0, 0, 0, 0))
    img.paste((0, 0, 255, 255), (0, 0, 50, 80))
    name = save(kernel, "alpha.png", img)
    kernel.run(f"%vision -m llava {name} What is here?")
    sent = sent_image(sim).convert("RGB")
    assert sent.getpixel((90, 40)) == (255, 255, 255) and sent.getpixel((10, 40)) == (0, 0, 255)


def test_cmyk_and_16bit(kernel, sim):
    save(kernel, "cmyk.jpg", Image.new("CMYK", (120, 90), (0, 255, 255, 0)))
    kernel.run("%vision -m llava cmyk.jpg Colour?")
    assert sent_image(sim).mode in ("RGB", "L")
    deep = Image.new("I;16", (64, 64))
    deep.putdata([i * 16 for i in range(64 * 64)])
    save(kernel, "deep.png", deep)
    ex = kernel.run("%vision -m llava deep.png Describe")
    assert ex.status == "ok", ex.error
    lo, hi = sent_image(sim).convert("L").getextrema()
    assert hi - lo > 200  # contrast kept, not flattened


def test_large_jpeg_sent_small(kernel, sim):
    save(kernel, "big.jpg", Image.effect_noise((6000, 4000), 40).convert("RGB"), quality=90)
    ex = kernel.run("%vision -m llava big.jpg Describe it")
    assert ex.status == "ok", ex.error
    assert max(sent_image(sim).size) == 1024
    assert "1024×683" in str(ex.of_type("display_data")[0]["content"]["data"]["text/plain"])
    kernel.run("%vision -m llava --max-edge 512 big.jpg Again")
    assert max(sent_image(sim).size) == 512


@pytest.mark.parametrize("setup, name, text", [
    (lambda d: (d / "cut.jpg").write_bytes(_jpeg_bytes()[:3000]), "cut.jpg", "cut.jpg"),
    (lambda d: (d / "notes.jpg").write_text("not an image"), "notes.jpg", "notes.jpg"),
    (lambda d: None, "missing.png", "not found"),
])
def test_bad_files_are_image_errors(kernel, sim, setup, name, text):
    setup(kernel.workdir)
    ex = kernel.run(f"%vision -m llava {name} What?")
    assert ex.status == "error" and ex.error["ename"] == "ImageError"
    assert text in ex.error["evalue"] and len(ex.error["traceback"]) <= 3
    assert not [r for r in sim.requests if r.path == "/api/chat"]


def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((300, 200), 40).convert("RGB").save(buf, format="JPEG")
    return buf.getvalue()


def test_namespace_objects(kernel, sim):
    ex = kernel.run(
        "from PIL import Image\nimport numpy as np\nimport matplotlib.pyplot as plt\n"
        "pil = Image.new('RGB', (50, 40), 'green')\n"
        "arr = (np.random.default_rng(0).random((30, 20, 3)) * 255).astype('uint8')\n"
        "fig, ax = plt.subplots(figsize=(4, 3), dpi=50)\nax.plot([1, 3, 2])\nplt.close(fig)\n")
    assert ex.status == "ok", ex.error
    for var, size in (("pil", (50, 40)), ("arr", (20, 30)), ("fig", (200, 150))):
        ex = kernel.run(f"%vision -m llava {var} What is it?")
        assert ex.status == "ok", ex.error
        assert sent_image(sim).size == size


def test_cell_form_output_and_session(kernel, sim):
    save(kernel, "red.png", Image.new("RGB", (32, 32), "red"))
    ex = kernel.run("%%vision -m llava -o ans -s pics red.png\nWhat colour dominates?")
    assert ex.status == "ok", ex.error
    body = [r.body for r in sim.requests if r.path == "/api/chat"][-1]
    assert body["messages"][-1]["content"] == "What colour dominates?"
    assert kernel.run("print(ans.startswith('I see a PNG image of 32x32'))").stdout.strip() == "True"
    kernel.run("%%llm -s pics -m llava\nAnd the shape?")
    follow = [r.body for r in sim.requests if r.path == "/api/chat"][-1]
    assert follow["messages"][0]["images"]  # the image stays in the session's context


def test_question_mark_line(kernel, sim):
    save(kernel, "q.png", Image.new("RGB", (16, 16), "blue"))
    ex = kernel.run("%vision -m llava q.png What is in it?")
    assert ex.status == "ok", ex.error
    body = [r.body for r in sim.requests if r.path == "/api/chat"][-1]
    assert body["messages"][-1]["content"] == "What is in it?"


def test_non_vision_model_warns(kernel, sim):
    save(kernel, "w.png", Image.new("RGB", (16, 16), "blue"))
    ex = kernel.run("%vision -m llama3.2 w.png What?")
    assert "no vision capability" in ex.stderr and "llava:latest" in ex.stderr


def test_without_a_model_a_vision_model_is_picked(kernel, sim):
    save(kernel, "auto.png", Image.new("RGB", (24, 24), "orange"))
    ex = kernel.run("%vision auto.png What colour?")
    assert ex.status == "ok", ex.error
    assert chat_bodies(sim)[-1]["model"] == "llava:latest"  # the installed vision model
    kernel.run("%config LLMMagics.vision_model = 'gemma3'")
    try:
        assert kernel.run("%vision auto.png Again?").status == "ok"
        assert chat_bodies(sim)[-1]["model"].startswith("gemma3")
    finally:
        kernel.run("%config LLMMagics.vision_model = ''")


def test_bytes_variable_and_thumbnail_shows_what_was_sent(kernel, sim):
    ex = kernel.run("import io\nfrom PIL import Image\nbuf = io.BytesIO()\n"
                    "Image.new('RGB', (2048, 1024), 'purple').save(buf, format='PNG')\n"
                    "raw = buf.getvalue()")
    assert ex.status == "ok", ex.error
    ex = kernel.run("%vision -m llava raw What is it?")
    assert ex.status == "ok", ex.error
    sent, thumb = sent_image(sim), thumbnail(ex)
    assert sent.size == (1024, 512)
    assert abs(thumb.size[0] / thumb.size[1] - 2.0) < 0.05  # same picture, scaled down
    assert thumb.convert("RGB").getpixel((thumb.size[0] // 2, thumb.size[1] // 2)) == \
        sent.convert("RGB").getpixel((512, 256))


def test_figure_closed_by_the_inline_backend(kernel, sim):
    ex = kernel.run("%matplotlib inline\nimport matplotlib.pyplot as plt\n"
                    "fig2, ax2 = plt.subplots(figsize=(4, 2), dpi=50)\nax2.bar([1, 2], [3, 1])")
    assert ex.status == "ok", ex.error
    assert kernel.value("plt.fignum_exists(fig2.number)") is False  # shown, then closed
    ex = kernel.run("%vision -m llava fig2 Describe the chart")
    assert ex.status == "ok", ex.error
    assert sent_image(sim).size == (200, 100)
