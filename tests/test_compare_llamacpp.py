"""``gleitzeit_nb.compare`` over two servers in one call: the Ollama simulator and the real
llama.cpp server, in a real kernel. Greedy decoding makes llama.cpp's answer comparable with a
raw request's text."""

from __future__ import annotations

import json

import httpx
import pytest

from .kernel import Kernel

QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def kernel(llama, shared_sim, tmp_path_factory):
    k = Kernel({"GLEITZEIT_DISPLAY": "final", "GLEITZEIT_REPLAY": "", "GLEITZEIT_STORE": ""},
               cwd=str(tmp_path_factory.mktemp("nb")))
    ex = k.run("%load_ext gleitzeit_nb\nimport gleitzeit_nb, json\n"
               f"%llm_host add sim {shared_sim.url}\n%llm_host add llama {llama.v1}")
    assert ex.status == "ok", ex.error
    yield k
    k.shutdown()


def test_compare_over_the_simulator_and_llama_cpp(kernel, llama, shared_sim):
    ex = kernel.run(f"df = gleitzeit_nb.compare({QUESTION!r}, ['llama3.2@sim', 'smollm2@llama'],"
                    " temperature=0, seed=1, max_tokens=40)\n"
                    "print(json.dumps(df.to_dict('records')))")
    assert ex.status == "ok", ex.error
    sim_row, llama_row = json.loads(ex.stdout)
    assert (sim_row["model"], sim_row["host"], sim_row["status"]) == ("llama3.2", "sim", "done")
    assert (llama_row["model"], llama_row["host"], llama_row["status"]) == (
        "smollm2", "llama", "done")
    body = next(r.body for r in shared_sim.requests if r.path == "/api/chat")
    expected_sim = httpx.post(f"{shared_sim.url}/api/chat", json={**body, "stream": False}
                              ).json()["message"]["content"]
    assert sim_row["answer"] == expected_sim
    expected = llama.raw_chat([{"role": "user", "content": QUESTION}], max_tokens=40)
    assert expected.strip() and llama_row["answer"] == expected
    for row in (sim_row, llama_row):
        assert row["output_tokens"] > 0 and row["tokens_per_s"] > 0
        assert 0 < row["ttft_s"] <= row["seconds"] and row["error"] is None
    shown = ex.text("text/plain")  # final mode: the one table, its plain text
    assert "── smollm2 · llama ──\n" + expected in shown and "llama.cpp · " in shown
    assert "── llama3.2 · sim ──\n" + expected_sim in shown and "simulator · " in shown
