"""%%llm and %vision in JupyterLab, as a user sees them: headless chromium driven by Playwright.

The escaping test runs in the real front end: model-written HTML must show as text and never
run, while the Markdown around it renders. Screenshots go to ``build/screenshots/``.
"""

from __future__ import annotations

import pytest
from PIL import Image

from .browser.lab import BROWSER_MARKS, output_area, assert_grows, notebook_page, run_cell, shot, wait_for

pytestmark = BROWSER_MARKS
SHARED_SIM = True  # one simulator for the module's notebook; `sim` is it, reset per test

CELLS = [
    '%load_ext gleitzeit_nb\n%config LLMMagics.model = "llama3.2"',
    "%%llm\nShow me some Markdown",
    "%%llm\nTell me a long story [[tokens=600]]",
    "%vision square.png What colour is the square?",
]

REPLY = """## Findings

- first point
- second point

| region | sales |
|---|---|
| North | 100 |

```python
print("hi")
```

Inline math $x^2$ and a trap: <img src=x onerror="window.__pwned=1"> and
<script>window.__pwned=2</script> <b>not bold</b>.
"""


@pytest.fixture(scope="module")
def page(shared_sim, tmp_path_factory, pytestconfig):
    root = tmp_path_factory.mktemp("magics")
    img = Image.new("RGB", (1600, 1200), "white")
    img.paste((30, 60, 200), (400, 300, 1200, 900))
    img.save(root / "square.png")
    env = {"OLLAMA_HOST": shared_sim.url, "GLEITZEIT_DISPLAY": "", "MPLBACKEND": "agg"}
    with notebook_page(root, CELLS, env, pytestconfig) as pg:
        run_cell(pg, 0)
        yield pg


def test_markdown_renders_and_model_html_stays_text(page, sim):
    sim.reply_with(REPLY)
    run_cell(page, 1)
    out = output_area(page, 1)
    wait_for(lambda: "tokens" in out.inner_text(), 15, "the finished reply (stats footer)")
    assert out.locator("h2", has_text="Findings").count() == 1
    assert out.locator("li").count() >= 2 and out.locator("table td", has_text="North").count() == 1
    assert out.locator("pre", has_text='print("hi")').count() == 1
    text = out.inner_text()
    assert '<img src=x onerror="window.__pwned=1">' in text and "<script>" in text
    assert "<b>not bold</b>" in text and out.locator("b", has_text="not bold").count() == 0
    assert out.locator("img[src=x], script").count() == 0
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned === undefined")
    shot(page, out, "llm_markdown.png")


def test_interrupt_keeps_partial_and_closes_stream(page, sim):
    sim.token_delay = 0.05
    before = len(sim.disconnects)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(2)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    out = output_area(page, 2)
    assert_grows(page, out)
    wait_for(lambda: len(out.inner_text().split()) > 15, 10, "some streamed text")
    shown = out.inner_text().split()
    page.get_by_role("menuitem", name="Kernel").click()
    page.get_by_role("menuitem", name="Interrupt Kernel").click()
    wait_for(lambda: "interrupted" in out.inner_text(), 10, "the interrupted mark")
    assert sim.wait_for_disconnects(before + 1, timeout=2.0), "the HTTP stream was not closed"
    kept = out.inner_text().split()
    assert kept[:len(shown) - 2] == shown[:-2], "the partial answer was not kept"
    wait_for(lambda: "KeyboardInterrupt" in out.inner_text(), 5, "the cell to show the interrupt")
    assert "connection closed" in out.inner_text() and "nest_asyncio" not in out.inner_text()
    shot(page, out, "llm_interrupted.png")
    sim.token_delay = 0.0


def test_vision_shows_the_image_beside_the_answer(page, sim):
    run_cell(page, 3)
    out = output_area(page, 3)
    wait_for(lambda: "tokens" in out.inner_text(), 15, "the vision answer")
    thumb = out.locator("img").first
    box = thumb.bounding_box()
    assert box and box["width"] > 50, "thumbnail not shown"
    assert "1024" in out.inner_text()  # the simulator describes the image it received
    request = [r for r in sim.requests if r.path == "/api/chat"][-1]
    assert request.body["messages"][-1]["images"]
    shot(page, out, "vision_magic.png")
