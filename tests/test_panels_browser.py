"""ChatPanel and VisionPanel in a browser: headless JupyterLab, Playwright, Debian's chromium.

The simulator streams slowly (``token_delay``) so the growing text and Stop can be seen.
Screenshots go to ``build/screenshots/`` (their paths are printed; ``pytest -s`` shows them).
"""

from __future__ import annotations

import time

import pytest
from PIL import Image

from .browser.lab import BROWSER_MARKS, assert_grows, notebook_page, run_cell, shot, wait_for

pytestmark = BROWSER_MARKS
SHARED_SIM = True  # one simulator for the module's notebook; `sim` is it, reset per test

CELLS = [
    "from gleitzeit_nb.widgets import ChatPanel, VisionPanel\n"
    "chat = ChatPanel(model='llama3.2')\nchat",
    "vision = VisionPanel()\nvision",
]


@pytest.fixture(scope="module")
def page(shared_sim, tmp_path_factory, pytestconfig):
    env = {"OLLAMA_HOST": shared_sim.url, "GLEITZEIT_DISPLAY": "live", "MPLBACKEND": "agg"}
    with notebook_page(tmp_path_factory.mktemp("lab"), CELLS, env, pytestconfig) as pg:
        yield pg


def test_chat_panel_streams_and_stops(page, sim):
    t0 = time.monotonic()
    run_cell(page, 0)
    panel = page.locator(".gleitzeit-chat")
    panel.wait_for()
    answers = panel.locator(".gleitzeit-assistant")

    sim.token_delay = 0.04
    panel.locator("textarea").fill("Say something [[tokens=60]]")
    panel.get_by_role("button", name="Send").click()
    first = answers.nth(0)
    assert_grows(page, first)
    wait_for(lambda: "tokens" in first.inner_text(), 15, "the finished reply (stats footer)")
    assert panel.get_by_role("button", name="Send").is_enabled()

    sim.token_delay = 0.15
    panel.locator("textarea").fill("Tell me a long story [[tokens=400]]")
    panel.get_by_role("button", name="Send").click()
    second = answers.nth(1)
    wait_for(lambda: len(second.inner_text().split()) > 12, 10, "the slow reply to start")
    assert panel.get_by_role("button", name="Send").is_disabled()
    shown = second.inner_text()
    panel.get_by_role("button", name="Stop").click()
    wait_for(lambda: "stopped" in second.inner_text(), 5, "the stopped mark")
    assert sim.wait_for_disconnects(1, timeout=1.0), "the HTTP stream was not closed"
    kept = second.inner_text()
    page.wait_for_timeout(600)
    assert second.inner_text() == kept, "text kept changing after Stop"
    assert kept.startswith(shown.rstrip()), "the partial answer was not kept"
    assert "stopped after" in panel.inner_text()
    shot(page, panel, "chat_panel.png")
    print(f"chat browser test: {time.monotonic() - t0:.1f} s")


def test_vision_panel_upload_ask_stop(page, sim, tmp_path):
    t0 = time.monotonic()
    img = Image.new("RGBA", (2400, 1600), (0, 0, 0, 0))
    img.paste((200, 30, 30, 255), (200, 200, 1400, 1200))
    path = tmp_path / "upload.png"
    img.save(path)
    run_cell(page, 1)
    panel = page.locator(".gleitzeit-vision")
    panel.wait_for()
    # ipywidgets' FileUpload keeps its <input type=file> out of the DOM: use the file chooser
    with page.expect_file_chooser() as chooser:
        panel.locator(".widget-upload").click()
    chooser.value.set_files(str(path))
    wait_for(lambda: "sent:" in panel.inner_text(), 10, "the thumbnail caption")
    assert "from 2400×1600" in panel.inner_text() and "1024×683" in panel.inner_text()
    box = panel.locator("img").first.bounding_box()
    assert box and box["width"] > 50, "thumbnail not shown"

    sim.token_delay = 0.04
    panel.locator("textarea").fill("What colour is the square? [[tokens=50]]")
    panel.get_by_role("button", name="Ask").click()
    answer = panel.locator(".gleitzeit-answer")
    assert_grows(page, answer)
    wait_for(lambda: "tokens" in answer.inner_text(), 15, "the vision answer")
    shot(page, panel, "vision_panel.png")

    sim.token_delay = 0.15
    before = len(sim.disconnects)
    panel.locator("textarea").fill("Describe every pixel [[tokens=400]]")
    panel.get_by_role("button", name="Ask").click()
    # (the simulator's reply starts by quoting the prompt: the new answer, not the last one)
    wait_for(lambda: "Describe every" in answer.inner_text()
             and len(answer.inner_text().split()) > 12 and "tokens" not in answer.inner_text(),
             10, "the slow vision answer to start")
    shown = answer.inner_text()
    panel.get_by_role("button", name="Stop").click()
    wait_for(lambda: "stopped" in answer.inner_text(), 5, "the stopped mark")
    assert sim.wait_for_disconnects(before + 1, timeout=1.0)
    assert answer.inner_text().startswith(shown.rstrip()), "the partial answer was not kept"
    shot(page, panel, "vision_panel_stopped.png")
    page.screenshot(path=str(page.shots / "notebook.png"), full_page=True)
    print(f"screenshot: {page.shots / 'notebook.png'}")
    print(f"vision browser test: {time.monotonic() - t0:.1f} s")
