"""Prompts holding code, in a real kernel against the simulator: ``--no-interpolate`` sends them
as typed, and a filled ``{x}`` inside an f-string gives one hint line in the cell's output."""

from __future__ import annotations

import pytest
from PIL import Image

from .kernel import start_kernel

SHARED_SIM = True
CODE = 'print(f"{x} items")\nd = {{"a": 1}}'
HINT = ('%%llm:3: CodeBraceWarning: {x} inside f"…" was filled from the notebook; use '
        "--no-interpolate or {{x}} to send it as typed.\n")


@pytest.fixture(scope="module")
def kernel(shared_sim, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("code")
    Image.new("RGB", (32, 32), "red").save(workdir / "red.png")
    k = start_kernel(shared_sim.url, "%load_ext gleitzeit_nb\nx = 3", cwd=str(workdir),
                     GLEITZEIT_DISPLAY="final")
    yield k
    k.shutdown()


def sent(sim) -> str:
    return [r.body for r in sim.requests if r.path == "/api/chat"][-1]["messages"][-1]["content"]


def test_no_interpolate_sends_the_cell_as_typed(kernel, sim):
    ex = kernel.run(f"%%llm --no-interpolate\nExplain:\n{CODE}\n")
    assert ex.status == "ok", ex.error
    assert sent(sim) == f"Explain:\n{CODE}" and ex.stderr == ""
    ex = kernel.run("%llm --no-interpolate -t 0.2 What does {x} in f'{x}' mean? {{y}}")
    assert ex.status == "ok", ex.error
    assert sent(sim) == "What does {x} in f'{x}' mean? {{y}}" and ex.stderr == ""


def test_no_interpolate_on_vision(kernel, sim):
    ex = kernel.run("%vision --no-interpolate -m llava red.png Is this f'{x}' code?")
    assert ex.status == "ok", ex.error
    assert sent(sim) == "Is this f'{x}' code?" and ex.stderr == ""
    ex = kernel.run("%%vision -m llava red.png\nIs {x} red?")
    assert sent(sim) == "Is 3 red?"


def test_filled_fstring_placeholder_gives_one_hint_line(kernel, sim):
    ex = kernel.run(f"%%llm\nExplain:\n{CODE}\nUse {{x}} and f'{{x}}' twice.")
    assert ex.status == "ok", ex.error
    assert sent(sim) == 'Explain:\nprint(f"3 items")\nd = {"a": 1}\nUse 3 and f\'3\' twice.'
    assert ex.stderr == HINT  # once, naming the first line; no path, so nbval can compare it
    again = kernel.run(f"%%llm\nExplain:\n{CODE}")
    assert again.stderr == HINT  # every run of such a cell says it


def test_prose_placeholder_gives_no_hint(kernel, sim):
    ex = kernel.run("%%llm\nWhy are there {x} items in f(x)?")
    assert ex.status == "ok", ex.error
    assert sent(sim) == "Why are there 3 items in f(x)?" and ex.stderr == ""
    ex = kernel.run('%llm Explain print(f"{{x}} items")')
    assert sent(sim) == 'Explain print(f"{x} items")' and ex.stderr == ""
