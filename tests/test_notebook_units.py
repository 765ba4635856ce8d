"""Notebook pieces that need no kernel: option parsing, structured replies, tables, scripts."""

import subprocess
import sys

import pytest
from IPython.core.error import UsageError
from pydantic import BaseModel

from gleitzeit_nb.errors import StructuredOutputError
from gleitzeit_nb.notebook.models_table import ModelTable
from gleitzeit_nb.magics.options import llm_parser, split_options, vision_parser
from gleitzeit_nb.app.structured import format_for, parse_reply
from gleitzeit_nb.notebook.vision import split_image
from gleitzeit_nb.core.backend import ModelInfo


@pytest.mark.parametrize("line, expect, rest", [
    ("What's 2+2?", {}, "What's 2+2?"),
    ("-m qwen3 -t 0.5 Why is it so?", {"model": "qwen3", "temperature": 0.5}, "Why is it so?"),
    ("--think Explain", {"think": True}, "Explain"),
    ("--think high Explain", {"think": "high"}, "Explain"),
    ("--system 'Be brief and kind.' Hi", {"system": "Be brief and kind."}, "Hi"),
    ("--max-tokens=5 --seed 3 -o out", {"max_tokens": 5, "seed": 3, "out": "out"}, ""),
    ("-3 squared is?", {}, "-3 squared is?"),
])
def test_split_options(line, expect, rest):
    args, text = split_options(line, llm_parser())
    assert text == rest
    for key, value in expect.items():
        assert getattr(args, key) == value


def test_bad_options_raise_usage_error():
    with pytest.raises(UsageError, match="unrecognized arguments: --nope"):
        split_options("--nope hi", llm_parser())
    with pytest.raises(UsageError, match="invalid float value"):
        split_options("-t hot hi", llm_parser())
    with pytest.raises(UsageError, match="low|medium|high"):
        split_options("--think=max hi", llm_parser())
    args, rest = split_options("--max-edge 512 img.png What?", vision_parser())
    assert args.max_edge == 512 and split_image(rest) == ("img.png", "What?")
    assert split_image('"my photo.jpg" Who?') == ("my photo.jpg", "Who?")


class City(BaseModel):
    name: str
    population: int


def test_structured_replies():
    assert format_for(City)["required"] == ["name", "population"]
    assert parse_reply('{"name": "Porto", "population": 230000}', City).population == 230000
    with pytest.raises(StructuredOutputError, match="does not match City") as info:
        parse_reply('{"name": "Porto"}', City)
    assert not info.value.truncated
    with pytest.raises(StructuredOutputError, match="length limit"):
        parse_reply('{"name": "Por', City, done_reason="length")
    schema = {"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}}
    assert parse_reply('{"a": 1}', schema) == {"a": 1}
    with pytest.raises(StructuredOutputError, match="a"):
        parse_reply('{"a": "x"}', schema)
    assert parse_reply("[1, 2]") == [1, 2]


def test_model_table_without_pandas_escapes():
    table = ModelTable([ModelInfo(name="<b>evil</b>", size=2_000_000_000, capabilities=["vision"],
                                  loaded=True)])
    assert "&lt;b&gt;evil&lt;/b&gt;" in table._repr_html_() and "<b>evil" not in table._repr_html_()
    assert "2.0 GB" in repr(table) and "vision" in repr(table)


def test_chat_from_a_script_streams_to_terminal(sim):
    code = ("import gleitzeit_nb\n"
            f"r = gleitzeit_nb.chat('Hi [[tokens=6]]', model='llama3.2', host={sim.url!r}, display='terminal')\n"
            "r2 = gleitzeit_nb.chat('And again?', model='llama3.2', host=" + repr(sim.url) + ")\n"
            "print('|', len(r.split()), r.usage.output_tokens, len(r2) > 0)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "| 6 6 True" and "6 tokens" in out.stdout
    second = [r.body for r in sim.requests if r.path == "/api/chat"][-1]
    assert len(second["messages"]) == 3  # the session carried over between calls


def test_magics_in_terminal_ipython(sim, tmp_path):
    script = tmp_path / "demo.ipy"
    script.write_text("%load_ext gleitzeit_nb\n%llm -m llama3.2 What is 2+2?\n"
                      "%llm -m llama3.2 -o x Tell me more [[tokens=4]]\nprint('x =', len(x.split()))\n")
    out = subprocess.run([sys.executable, "-m", "IPython", "--no-banner", "--colors=nocolor",
                          str(script)], capture_output=True, text=True, timeout=60,
                         env={**__import__("os").environ, "OLLAMA_HOST": sim.url})
    assert out.returncode == 0, out.stderr
    assert "x = 4" in out.stdout and "tokens" in out.stdout
    assert [r.body["messages"][0]["content"] for r in sim.requests if r.path == "/api/chat"][0] == "What is 2+2?"


def test_unterminated_quotes_are_usage_errors():
    from IPython.core.error import UsageError

    from gleitzeit_nb.magics.options import llm_parser, split_options
    from gleitzeit_nb.notebook.vision import split_image

    with pytest.raises(UsageError, match="no closing quote"):
        split_image('"unterminated.png what is this')
    with pytest.raises(UsageError, match="no closing quote"):
        split_options('--system "be brief hello', llm_parser())
