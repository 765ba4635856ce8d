"""%llm_fix --code in JupyterLab, as a user sees it: headless chromium driven by Playwright.

The corrected code must arrive as a new cell below the %llm_fix cell, not run. Screenshots go to
``build/screenshots/``.
"""

from __future__ import annotations

import pytest

from .browser.lab import BROWSER_MARKS, notebook_page, run_cell, shot, wait_for

pytestmark = BROWSER_MARKS
SHARED_SIM = True  # one simulator for the module's notebook; `sim` is it, reset per test

CELLS = [
    '%load_ext gleitzeit_nb\n%config LLMMagics.model = "llama3.2"',
    "import pandas as pd\ndf = pd.DataFrame({'city': ['Lisbon', 'Porto'], 'sales': [3, 4]})",
    "df['sale'].sum()",
    "%llm_fix --code",
    "# the last cell",
]

CORRECTED = "df['sales'].sum()  # the column is 'sales'"
REPLY = f"The column is called `sales`, not `sale`.\n\n```python\n{CORRECTED}\n```\n"


@pytest.fixture(scope="module")
def page(shared_sim, tmp_path_factory, pytestconfig):
    root = tmp_path_factory.mktemp("fix")
    env = {"OLLAMA_HOST": shared_sim.url, "GLEITZEIT_DISPLAY": "", "MPLBACKEND": "agg"}
    with notebook_page(root, CELLS, env, pytestconfig) as pg:
        run_cell(pg, 0)
        yield pg


def cells(page):
    return page.locator(".jp-Notebook .jp-Cell")


def test_llm_fix_code_puts_the_fix_into_a_new_cell_below(page, sim):
    run_cell(page, 1)
    run_cell(page, 2)
    out = cells(page).nth(2).locator(".jp-OutputArea")
    wait_for(lambda: "KeyError" in out.inner_text(), 10, "the cell's KeyError")
    sim.reply_with(REPLY)
    run_cell(page, 3)
    fix_out = cells(page).nth(3).locator(".jp-OutputArea")
    wait_for(lambda: "code put into the next cell" in fix_out.inner_text(), 15,
             "the note under the reply")
    assert "The column is called" in fix_out.inner_text()
    wait_for(lambda: cells(page).count() == len(CELLS) + 1, 10, "a new cell")
    new = cells(page).nth(4)
    assert new.locator(".jp-InputArea-editor").inner_text().strip() == CORRECTED
    assert new.locator(".jp-InputPrompt").inner_text().strip() in ("[ ]:", "")  # not run
    assert "the last cell" in cells(page).nth(5).inner_text()
    sent = [r.body for r in sim.requests if r.path == "/api/chat"][-1]["messages"][-1]["content"]
    assert "df['sale'].sum()" in sent and "KeyError: 'sale'" in sent
    shot(page, page.locator(".jp-Notebook"), "llm_fix_code.png")
