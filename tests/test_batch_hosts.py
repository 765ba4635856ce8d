"""Several OpenAI-compatible servers in one batch: the work is spread by each one's slots."""

from __future__ import annotations

import gleitzeit_nb.batch as batch
from gleitzeit_nb.testing import OllamaSimulator

MODEL = "llama3.2:latest"


def completions(sim) -> int:
    return sum(r.path == "/v1/chat/completions" for r in sim.requests)


def test_rows_go_to_servers_by_their_published_slots():
    with OllamaSimulator(parallel=1, token_delay=0.01) as small, \
            OllamaSimulator(parallel=3, token_delay=0.01) as big:
        prompts = [f"q{i} [[tokens=10]]" for i in range(24)]
        out = batch.run_batch(prompts, model=MODEL, hosts=[small.url + "/v1", big.url + "/v1"],
                              progress=False)
        assert (out.concurrency, out.concurrency_source) == (4, "server slots")
        assert all(r.startswith(f'You said: "q{i}') for i, r in enumerate(out))
        assert completions(small) + completions(big) == 24
        assert completions(big) >= 2 * completions(small) > 0  # ~3:1, as their slots
        assert small.max_active == 1 and big.max_active <= 3
