"""Several OpenAI-compatible servers in one batch: the work is spread by each one's slots."""

from __future__ import annotations

import time

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


def test_hosts_of_two_apis_are_refused_before_any_request():
    import pytest

    from gleitzeit_nb.errors import InvalidParamsError

    with OllamaSimulator() as sim:
        with pytest.raises(InvalidParamsError, match="one API, not ollama and openai"):
            batch.run_batch(["q"], model=MODEL, hosts=[sim.url, sim.url + "/v1"],
                            progress=False)
        assert sim.requests == []


def test_a_row_over_the_deadline_is_that_rows_error():
    from gleitzeit_nb.errors import ProviderTimeoutError

    with OllamaSimulator(token_delay=0.05) as sim:
        out = batch.run_batch(["short [[tokens=2]]", "long [[tokens=200]]"], model=MODEL,
                              host=sim.url, deadline=1.0, progress=False)
        assert out[0] and out[1] is None
        assert isinstance(out.errors[1], ProviderTimeoutError)
        assert "deadline of 1.0 s" in str(out.errors[1])
        deadline = time.monotonic() + 2
        while not sim.disconnects and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sim.disconnects  # the long row's request was closed, not left generating
