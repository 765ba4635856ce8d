"""``%%llm -m a,b`` in a browser: headless JupyterLab, Playwright, Debian's chromium.

The simulator streams slowly (``token_delay``) so the columns can be seen growing side by side.
The screenshot goes to the test's tmp dir (its path is printed; ``pytest -s`` shows it).
"""

from __future__ import annotations

import time

import httpx
import pytest

from .browser.lab import BROWSER_MARKS, start_cell, assert_grows, notebook_page, run_cell, wait_for

pytestmark = BROWSER_MARKS
SHARED_SIM = True  # one simulator for the module's notebook; `sim` is it, reset per test

CELLS = ["%load_ext gleitzeit_nb",
         "%%llm -m llama3.2,qwen3\nCompare yourselves, in a long answer [[tokens=80]]",
         "%%llm -m llama3.2,qwen3\nShow code"]


@pytest.fixture(scope="module")
def page(shared_sim, tmp_path_factory, pytestconfig):
    env = {"OLLAMA_HOST": shared_sim.url, "GLEITZEIT_DISPLAY": "live", "GLEITZEIT_REPLAY": ""}
    with notebook_page(tmp_path_factory.mktemp("lab"), CELLS, env, pytestconfig) as pg:
        yield pg


def test_two_columns_stream_side_by_side(page, sim, tmp_path):
    t0 = time.monotonic()
    run_cell(page, 0)
    sim.token_delay = 0.04
    start_cell(page, 1)  # (run_cell would wait for the cell to finish, and the columns with it)
    table = page.locator(".jp-Cell").nth(1).locator("table.gleitzeit-compare")
    table.wait_for()
    headers, answers = table.locator("tr").nth(0).locator("th"), table.locator("tr").nth(1)
    assert headers.count() == 2
    assert [headers.nth(i).inner_text().split("\n")[0] for i in range(2)] == ["llama3.2", "qwen3"]
    assert_grows(page, answers.locator("td").nth(1))
    wait_for(lambda: table.locator("sub").count() == 2
             and "tok/s" in table.locator("sub").nth(1).inner_text(), 20, "both footers")

    cells = [answers.locator("td").nth(i) for i in range(2)]
    boxes = [c.bounding_box() for c in cells]
    assert all(b and b["width"] > 300 and b["height"] > 20 for b in boxes), boxes
    assert boxes[1]["x"] >= boxes[0]["x"] + boxes[0]["width"] - 2, "not side by side"
    assert abs(boxes[1]["y"] - boxes[0]["y"]) < 2, "not on one row"
    bodies = {r.body["model"]: r.body for r in sim.requests if r.path == "/api/chat"}
    for cell, model in zip(cells, ["llama3.2:latest", "qwen3:latest"]):
        expected = httpx.post(f"{sim.url}/api/chat", json={**bodies[model], "stream": False}
                              ).json()["message"]["content"]
        assert cell.inner_text().strip() == expected
    path = tmp_path / "compare_columns.png"
    table.screenshot(path=str(path))
    print(f"screenshot: {path}")
    print(f"compare browser test: {time.monotonic() - t0:.1f} s")


def test_cells_keep_indentation_and_wrap_long_words(page, sim):
    word = "w" * 300
    sim.reply_with(f"def f():\n    return 1  # $x$ \\alpha\n{word}", count=2)
    run_cell(page, 0)
    run_cell(page, 2)
    table = page.locator(".jp-Cell").nth(2).locator("table.gleitzeit-compare")
    cell = table.locator("tr").nth(1).locator("td").nth(0)
    wait_for(lambda: word in cell.text_content(), 20, "the long word")
    assert "\n    return 1  # $x$ \\alpha\n" in cell.text_content()  # indented, no math
    assert cell.locator(".MathJax, mjx-container, .katex").count() == 0
    style = cell.evaluate("e => [getComputedStyle(e).whiteSpace, e.scrollWidth, e.clientWidth,"
                          " e.closest('table').parentElement.scrollWidth,"
                          " e.closest('table').parentElement.clientWidth]")
    assert style[0] == "pre-wrap", style
    assert style[1] <= style[2] and style[3] <= style[4], f"overflows sideways: {style}"
    assert cell.inner_text().splitlines()[1].startswith("    return 1")
