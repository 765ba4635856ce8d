"""The approval buttons in a real JupyterLab (headless chromium): a click on Approve ends a
running cell, and a cell queued behind it runs only afterwards. JupyterLab >= 4.4 sends widget
messages to a kernel subshell, which the kernel-level tests can only imitate."""

from __future__ import annotations

import pytest

from .browser.lab import BROWSER_MARKS, start_cell, notebook_page, run_cell, shot, wait_for

pytestmark = BROWSER_MARKS

CELLS = [
    "from gleitzeit_nb.app import bridge\n"
    "from gleitzeit_nb.notebook.approval import ask_in_notebook, can_ask_in_notebook\n"
    "print('can ask:', can_ask_in_notebook())",
    "r = bridge.run(ask_in_notebook('search', {'q': '<b>x</b><script>alert(1)</script>'},"
    " call_id='call-1'))\nprint('ANSWER', r)",
    "print('NEXT', r)",
]


@pytest.fixture(scope="module")
def page(tmp_path_factory, pytestconfig):
    with notebook_page(tmp_path_factory.mktemp("lab"), CELLS, {}, pytestconfig) as pg:
        yield pg


def output(page, index: int) -> str:
    area = page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea")
    return area.inner_text() if area.count() else ""


def test_approve_in_a_running_cell_then_the_queued_cell_runs(page):
    run_cell(page, 0)
    wait_for(lambda: "can ask: True" in output(page, 0), 10, "the first cell's output")
    start_cell(page, 1)
    box = page.locator(".gleitzeit-approval")
    box.wait_for()
    start_cell(page, 2)  # queued behind the waiting cell
    page.wait_for_timeout(800)
    assert "NEXT" not in output(page, 2)
    text = box.inner_text()
    assert "<b>x</b><script>alert(1)</script>" in text  # shown as text, not markup
    assert box.locator("script").count() == 0 and box.locator("b").count() == 0
    shot(page, box, "approval-waiting.png")
    box.get_by_role("button", name="Approve").click()
    wait_for(lambda: "NEXT True" in output(page, 2), 15, "the queued cell's output")
    assert "ANSWER True" in output(page, 1)
    assert "✓ approved" in box.inner_text()
    assert box.get_by_role("button", name="Approve").is_disabled()
    shot(page, box, "approval-approved.png")
