"""Tools in JupyterLab, as a user sees them (headless chromium): the Approve / Refuse buttons
of ``%%llm --tools --approve always``, and each call as a collapsed block whose model-steered
content (arguments, a result holding HTML) shows as text. Screenshots: ``build/screenshots/``."""

from __future__ import annotations

import pytest

from .browser.lab import BROWSER_MARKS, start_cell, output_area, notebook_page, shot, wait_for

pytestmark = BROWSER_MARKS
SHARED_SIM = True

CELLS = [
    '%load_ext gleitzeit_nb\n%config LLMMagics.model = "llama3.2"\n'
    "def lookup(q: str) -> str:\n"
    "    '''Look something up.'''\n"
    "    return '<img src=x onerror=\"window.__pwned=1\"><b>bold</b> result for ' + q\n",
    "%%llm --tools lookup --approve always\nLook it up.",
]


@pytest.fixture(scope="module")
def page(shared_sim, tmp_path_factory, pytestconfig):
    env = {"OLLAMA_HOST": shared_sim.url, "GLEITZEIT_DISPLAY": "", "MPLBACKEND": "agg"}
    with notebook_page(tmp_path_factory.mktemp("tools"), CELLS, env, pytestconfig) as pg:
        yield pg


def test_approve_then_the_call_shows_collapsed_and_escaped(page, sim):
    sim.script_tools([{"name": "lookup", "arguments": {"q": "<script>window.__pwned=2</script>"}}],
                     then="Found it: {results}")
    start_cell(page, 0)
    wait_for(lambda: output_area(page, 0).count() and True, 10, "the setup cell")
    page.wait_for_timeout(500)
    start_cell(page, 1)
    out = output_area(page, 1)
    box = page.locator(".gleitzeit-approval")
    box.wait_for(timeout=20_000)
    assert "<script>window.__pwned=2</script>" in box.inner_text()  # the arguments, as text
    assert box.locator("script").count() == 0
    # the reply above the buttons already shows the pending call
    wait_for(lambda: "waiting for approval" in out.inner_text(), 10, "the pending call block")
    shot(page, out, "tools-approval.png")
    box.get_by_role("button", name="Approve").click()
    wait_for(lambda: "Found it" in out.inner_text() and "tokens" in out.inner_text(), 20,
             "the final answer")
    details = out.locator("details", has_text="lookup(")
    assert details.count() == 1
    assert details.get_attribute("open") is None  # collapsed
    assert "✓" in details.locator("summary").inner_text()
    details.locator("summary").click()
    text = details.inner_text()
    assert '<img src=x onerror="window.__pwned=1"><b>bold</b> result for' in text
    assert details.locator("img, script").count() == 0  # nothing of it became markup
    assert details.locator("b", has_text="bold").count() == 0
    assert "✓ approved" in box.inner_text()
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned === undefined")
    shot(page, out, "tools-call-expanded.png")
    [result] = [m for r in sim.requests if r.path == "/api/chat"
                for m in r.body["messages"] if m["role"] == "tool"]
    assert result["content"].startswith("<img src=x")
