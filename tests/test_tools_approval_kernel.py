"""``%%llm --tools … --approve always`` in a live kernel: the Approve / Refuse buttons decide,
clicked as a front-end clicks them, on both APIs; the decision reaches the model."""

from __future__ import annotations

import pytest

from .kernel import start_kernel
from .test_approval_kernel import Frontend

SHARED_SIM = True


@pytest.fixture(scope="module")
def kernel(shared_sim):
    k = start_kernel(shared_sim.url, "%load_ext gleitzeit_nb\n"
                     "def get_rows(n: int) -> str:\n"
                     "    '''The first rows.'''\n"
                     "    return 'rows:' + str(n)\n", GLEITZEIT_DISPLAY="live")
    yield k
    k.shutdown()


@pytest.mark.parametrize("api", ["ollama", "openai"])
@pytest.mark.parametrize("button,expected", [("Approve", "rows:2"),
                                             ("Refuse", "Error: the user refused this call")])
def test_buttons_decide_and_the_model_hears_it(kernel, sim, api, button, expected):
    host = sim.url + ("/v1" if api == "openai" else "")
    sim.script_tools([{"name": "get_rows", "arguments": {"n": 2}}], then="ok: {results}")
    fe = Frontend(kernel)
    cell = fe.execute(f"%%llm --tools get_rows --approve always --host {host} -o r\n"
                      "Rows?")
    fe.click(fe.wait_for_button(button))
    reply = fe.finish(cell, timeout=15)
    assert reply["status"] == "ok", reply
    bodies = [r.body for r in sim.requests if r.path in ("/api/chat", "/v1/chat/completions")]
    assert len(bodies) == 2
    [result] = [m for m in bodies[1]["messages"] if m["role"] == "tool"]
    assert result["content"].startswith(expected)
    status = kernel.value("r.tool_calls[0].status")
    assert status == ("ok" if button == "Approve" else "refused")
    kernel.run("%llm_reset")
