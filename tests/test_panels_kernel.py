"""ChatPanel and VisionPanel in a real kernel against the simulator (no browser)."""

from __future__ import annotations

import base64
import io
import subprocess
import sys

import pytest
from PIL import Image

from gleitzeit_nb.testing import OllamaSimulator

from .kernel import start_kernel

SHARED_SIM = True


@pytest.fixture(scope="module")
def kernel(shared_sim, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("panels")
    k = start_kernel(shared_sim.url, "from gleitzeit_nb.widgets import ChatPanel, VisionPanel\nimport json",
                     cwd=str(workdir), MPLBACKEND="agg")
    k.workdir = workdir
    yield k
    k.shutdown()


def output_comm_updates(ex) -> list[dict]:
    """The state updates the kernel sent to widgets during ``ex`` (outputs of Output widgets)."""
    return [m["content"]["data"]["state"] for m in ex.of_type("comm_msg")
            if m["content"]["data"].get("method") == "update"
            and "outputs" in m["content"]["data"].get("state", {})]


def test_send_streams_and_fills_messages(kernel, sim):
    sim.reply_with("The answer is 42, streamed word by word for the panel test.")
    sim.token_delay = 0.02
    assert kernel.run("p = ChatPanel(model='llama3.2', session='kt')").status == "ok"
    ex = kernel.run("reply = await p.send('What is the answer?')")
    assert ex.status == "ok", ex.error
    updates = output_comm_updates(ex)
    texts = [u["outputs"][0]["data"]["text/plain"] for u in updates if u["outputs"]]
    assert len(texts) >= 3, texts  # the answer grew in several updates
    assert len(texts) < 40  # … throttled, not one update per token
    assert "42" in texts[-1]
    msgs = kernel.value("p.messages")
    assert msgs == [{"role": "user", "content": "What is the answer?"},
                    {"role": "assistant",
                     "content": "The answer is 42, streamed word by word for the panel test."}]
    # the session is the one %%llm -s kt uses
    assert kernel.value("len(__import__('gleitzeit_nb.app.connections', fromlist=['x'])"
                         ".CONNECTIONS.sessions.get('kt'))") == 2
    assert kernel.value("p.send_button.disabled") is False


def test_stop_twice_still_closes_the_stream(kernel, sim):
    """A double-click on Stop: the second cancel must not cut short the closing connection."""
    sim.token_delay = 0.02
    assert kernel.run("import asyncio\np = ChatPanel(model='llama3.2')\n"
                      "t = p.send('Tell me a long story [[tokens=400]]')\n"
                      "await asyncio.sleep(0.4)\n"
                      "p.stop()\nawait asyncio.sleep(0)\np.stop()\np.clear()\n"
                      "await asyncio.gather(t, return_exceptions=True)").status == "ok"
    assert sim.wait_for_disconnects(1, timeout=1.0), "the server kept generating"
    assert kernel.value("p.messages") == []


def test_stop_closes_stream_and_keeps_partial(kernel, sim):
    sim.token_delay = 0.05
    assert kernel.run("p = ChatPanel(model='llama3.2')\n"
                      "t = p.send('Tell me a long story [[tokens=400]]')").status == "ok"
    assert kernel.value("p.send_button.disabled") is True
    # let it stream a while: the loop runs between cells, and while a cell awaits
    assert kernel.run("import asyncio\nawait asyncio.sleep(0.6)").status == "ok"
    assert kernel.run("p.stop()\nawait t").status == "ok"
    assert sim.wait_for_disconnects(1, timeout=1.0), "simulator saw no disconnect"
    partial = kernel.value("p.messages[-1]['content']")
    assert partial and len(partial.split()) < 400
    md = kernel.value("p.transcript.children[-1].children[1].outputs[0]['data']['text/markdown']")
    assert "stopped" in md
    assert kernel.value("p.send_button.disabled") is False
    assert kernel.value("p.stop_button.disabled") is True


def test_model_text_is_escaped(kernel, sim):
    evil = 'Hi <script>alert(1)</script> <img src=x onerror="alert(2)"> done'
    sim.reply_with(evil)
    assert kernel.run("p = ChatPanel(model='llama3.2')\n"
                      "await p.send('<b>bold?</b> <script>x()</script>')").status == "ok"
    outs = kernel.value("[c.children[1].outputs[0]['data'] for c in p.transcript.children]")
    user_md, bot_md = outs[0]["text/markdown"], outs[1]["text/markdown"]
    for md in (user_md, bot_md):
        assert "<script" not in md and "<img" not in md and "<b>" not in md
    assert "&lt;script" in bot_md and "onerror" in bot_md  # shown as text, not live
    assert outs[1]["text/plain"].startswith(evil)


def test_error_is_shown_in_panel(kernel, sim):
    assert kernel.run("p = ChatPanel(model='no-such-model')\n"
                      "r = await p.send('hi')").status == "ok"
    err = kernel.value("p.error")
    assert err and "no-such-model" in err
    assert "no-such-model" in kernel.value("p.status.value")


def test_model_dropdown_lists_server_models(kernel, sim):
    assert kernel.run("p = ChatPanel(); v = VisionPanel()\n"
                      "await p._models_task; await v._models_task").status == "ok"
    chat_opts, vision_opts = kernel.value("[list(p.model_picker.options), "
                                           "list(v.model_picker.options)]")
    assert "llama3.2:latest" in chat_opts and "nomic-embed-text:latest" not in chat_opts
    assert vision_opts[0] == "(auto)" and len(vision_opts) >= 2
    assert "llama3.2:latest" not in vision_opts


def sent_image(sim) -> Image.Image:
    body = [r.body for r in sim.requests if r.path == "/api/chat"][-1]
    (b64,) = body["messages"][-1]["images"]
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def test_vision_rgba_png(kernel, sim):
    img = Image.new("RGBA", (300, 200), (255, 0, 0, 0))
    img.paste((0, 0, 255, 255), (0, 0, 100, 100))
    img.save(kernel.workdir / "alpha.png")
    sim.reply_with("A blue square on white.")
    ex = kernel.run("v = VisionPanel()\nv.load_image('alpha.png')\n"
                    "r = await v.ask('What is this?')")
    assert ex.status == "ok", ex.error
    assert kernel.value("v.answer") == "A blue square on white."
    sent = sent_image(sim)
    assert sent.mode in ("RGB", "L") and sent.size == (300, 200)
    assert sent.getpixel((250, 150))[:3] == (255, 255, 255)  # alpha composited onto white
    thumb = kernel.value("__import__('base64').b64encode(v.thumbnail.value).decode()")
    assert Image.open(io.BytesIO(base64.b64decode(thumb))).size == (256, 171)


def test_vision_large_jpeg_uploaded_bytes(kernel, sim):
    buf = io.BytesIO()
    Image.new("RGB", (4000, 3000), (20, 120, 40)).save(buf, format="JPEG", quality=90)
    (kernel.workdir / "big.jpg").write_bytes(buf.getvalue())
    # the FileUpload path: bytes from an upload dict, as the widget delivers them
    ex = kernel.run("import datetime\nnow = datetime.datetime.now(datetime.timezone.utc)\n"
                    "data = open('big.jpg', 'rb').read()\nv = VisionPanel()\n"
                    "v.upload.value = ({'name': 'big.jpg', 'type': 'image/jpeg', "
                    "'size': len(data), 'content': memoryview(data), 'last_modified': now},)\n"
                    "r = await v.ask('Colour?')")
    assert ex.status == "ok", ex.error
    assert max(sent_image(sim).size) <= 1024
    assert "4000×3000" in kernel.value("v.caption.value")


def test_vision_ask_while_running_keeps_the_answer_and_same_file_reloads(kernel, sim):
    img = Image.new("RGB", (64, 64), "navy")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    data = base64.b64encode(buf.getvalue()).decode()
    sim.token_delay = 0.02
    ex = kernel.run("import base64, datetime\nv = VisionPanel(model='llava')\n"
                    f"raw = base64.b64decode('{data}')\n"
                    "up = ({'name': 'a.png', 'type': 'image/png', 'size': len(raw), "
                    "'content': memoryview(raw), "
                    "'last_modified': datetime.datetime.now(datetime.timezone.utc)},)\n"
                    "v.upload.value = up\nfirst = v.image\nv.image = None\n"
                    "v.upload.value = up\nprint(v.image is not None, v.upload.value == ())\n"
                    "t = v.ask('Describe [[tokens=80]]')\nawait asyncio.sleep(0.5)\n"
                    "before = v.output.outputs[0]['data']['text/plain']\n"
                    "try:\n    v.ask('again')\nexcept RuntimeError as e:\n    print(e)\n"
                    "print(v.output.outputs[0]['data']['text/plain'] == before != '…')\nawait t")
    assert ex.status == "ok", ex.error
    loaded, refused, kept = ex.stdout.strip().splitlines()
    assert loaded == "True True" and "already running" in refused and kept == "True"


def test_vision_bad_image_is_reported(kernel, sim):
    assert kernel.run("v = VisionPanel()\nv.path.value = 'missing.png'").status == "ok"
    assert "missing.png" in kernel.value("v.status.value")


def test_session_shared_with_magic_and_clear(kernel, sim):
    sim.reply_with("first from the magic")
    assert kernel.run("%load_ext gleitzeit_nb").status == "ok"
    assert kernel.run("%%llm -s shared -m llama3.2\nHello from a cell").status == "ok"
    assert kernel.run("p = ChatPanel(model='llama3.2', session='shared')").status == "ok"
    assert kernel.value("len(p.transcript.children)") == 2  # the cell's turn is shown
    sim.reply_with("second from the panel")
    assert kernel.run("await p.send('And from the panel')").status == "ok"
    assert kernel.run("%%llm -s shared -m llama3.2\nBack in a cell").status == "ok"
    sent = [r.body for r in sim.requests if r.path == "/api/chat"][-1]["messages"]
    assert [m["content"] for m in sent] == ["Hello from a cell", "first from the magic",
                                             "And from the panel", "second from the panel",
                                             "Back in a cell"]
    sim.token_delay = 0.05
    assert kernel.run("t = p.send('long [[tokens=300]]')\nimport asyncio\n"
                      "await asyncio.sleep(0.3)\np.clear()\nawait t\n"
                      "await asyncio.sleep(0)").status == "ok"
    assert kernel.value("[p.messages, len(p.transcript.children)]") == [[], 0]
    assert "stopped" not in kernel.value("p.status.value")  # the cleared request left no status


def test_turns_added_elsewhere_show_up_and_one_panel_answers_at_a_time(kernel, sim):
    assert kernel.run("import gleitzeit_nb, asyncio\n"
                      "a = ChatPanel(model='llama3.2', session='sync')\n"
                      "b = ChatPanel(model='llama3.2', session='sync')\n"
                      "await a.send('from a')\n"
                      "gleitzeit_nb.chat('from a script', model='llama3.2', session='sync')"
                      ).status == "ok"
    assert kernel.run("await b.send('from b')").status == "ok"
    shown = kernel.value("[c.children[1].outputs[0]['data']['text/plain'] "
                         "for c in b.transcript.children]")
    assert [t for t in shown[::2]] == ["from a", "from a script", "from b"]  # in session order
    sim.token_delay = 0.02
    ex = kernel.run("t = a.send('long [[tokens=100]]')\n"
                    "try:\n    b.send('meanwhile')\nexcept RuntimeError as e:\n    print(e)\n"
                    "await t")
    assert "is answering in another panel" in ex.stdout
    assert kernel.run("await b.send('after')").status == "ok"  # free again


def test_model_list_loads_once_the_server_is_up(kernel, dead_url):
    port = int(dead_url.rsplit(":", 1)[1])
    assert kernel.run(f"late = ChatPanel(host={dead_url!r})\nawait late._models_task").status == "ok"
    assert kernel.value("list(late.model_picker.options)") == ["(auto)"]
    with OllamaSimulator(port=port):
        assert kernel.run("await late.send('hi')\nawait late._models_task").status == "ok"
        assert "llama3.2:latest" in kernel.value("list(late.model_picker.options)")


def test_panels_need_a_running_loop_and_say_so():
    code = ("from gleitzeit_nb.widgets import ChatPanel\n"
            "p = ChatPanel(host='http://127.0.0.1:9')\n"
            "try:\n    p.send('hi')\nexcept RuntimeError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code],
                         capture_output=True, text=True, timeout=60)
    assert "asyncio.run()" in out.stdout and "gleitzeit_nb.chat()" in out.stdout
    assert "never awaited" not in out.stderr and "destroyed but it is pending" not in out.stderr
