"""%llm_pull in a browser: headless JupyterLab, Playwright, Debian's chromium.

The simulator downloads at a set speed, so the bars can be seen part-way and then full.
Screenshots go to the test's tmp dir (their paths are printed; ``pytest -s`` shows them).
"""

from __future__ import annotations

import time

import pytest

from gleitzeit_nb.testing.pull import LIBRARY

from .browser.lab import BROWSER_MARKS, notebook_page, wait_for

pytestmark = BROWSER_MARKS
SHARED_SIM = True  # one simulator for the module's notebook; `sim` is it, reset per test

CELLS = ["%load_ext gleitzeit_nb\n%llm_pull mistral"]


@pytest.fixture(scope="module")
def page(shared_sim, tmp_path_factory, pytestconfig):
    env = {"OLLAMA_HOST": shared_sim.url, "GLEITZEIT_DISPLAY": "live", "MPLBACKEND": "agg"}
    with notebook_page(tmp_path_factory.mktemp("lab"), CELLS, env, pytestconfig) as pg:
        yield pg


def width(bar) -> float:
    """How full a bar is drawn, in percent of its track (0 when it is not there)."""
    if not bar.count():
        return 0.0
    return float(bar.evaluate("el => parseFloat(el.style.width) || 0"))


def test_pull_bar_fills_to_100_percent(page, sim, tmp_path):
    t0 = time.monotonic()
    sim.registry.speed = 1.2e9  # 4.1 GB: about 3.5 s
    cell = page.locator(".jp-Notebook .jp-Cell").nth(0)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    panel = page.locator(".gleitzeit-pull")
    panel.wait_for()
    total = panel.locator(".gleitzeit-pull-total .progress-bar")
    wait_for(lambda: 5 < width(total) < 90, 10, "the overall bar part-way")
    assert panel.is_visible() and "B/s · ETA" in panel.inner_text()
    mid = tmp_path / "pull_bar_partway.png"
    panel.screenshot(path=str(mid))
    print(f"screenshot: {mid}")

    wait_for(lambda: "pulled" in panel.inner_text(), 15, "the pull to finish")
    assert width(total) == 100
    layers = panel.locator(".gleitzeit-pull-layer .progress-bar")
    assert layers.count() == 4 and all(width(layers.nth(i)) == 100 for i in range(4))
    text = panel.inner_text()
    assert "4.1 GB in 4 layers" in text and "done in" in text
    assert sim.registry.history[-1].outcome == "success"
    assert sim.registry.downloaded("mistral") == LIBRARY["mistral:latest"]
    box = total.bounding_box()
    assert box and box["width"] > 100, "the bar is not drawn"
    done = tmp_path / "pull_bar_done.png"
    panel.screenshot(path=str(done))
    print(f"screenshot: {done}")
    print(f"pull browser test: {time.monotonic() - t0:.1f} s")
