"""``%llm?``, the inspector and ``%llm --help`` in a real kernel show each option with the help
its parser gives it."""

from __future__ import annotations

import re

import pytest

from gleitzeit_nb.magics import options as opts
from gleitzeit_nb.magics.batch_magic import _PARSER as BATCH

from .kernel import Kernel

PARSERS = {"llm": opts.llm_parser(), "vision": opts.vision_parser(), "llm_batch": BATCH,
           "llm_chat": opts.chat_parser(), "llm_models": opts.host_parser(),
           "llm_host": opts.server_parser(), "llm_fix": opts.fix_parser()}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def kernel():
    k = Kernel()
    ex = k.run("%load_ext gleitzeit_nb")
    assert ex.status == "ok", ex.error
    yield k
    k.shutdown()


def words(text: str) -> str:
    return " ".join(ANSI.sub("", text).split())


def page(ex) -> str:
    return words("".join(p["data"]["text/plain"] for p in ex.reply["content"].get("payload", [])
                         if p.get("source") == "page"))


def option_helps(parser) -> list[str]:
    """Each option with its help, as argparse lists it (``-m MODEL, --model MODEL model…``)."""
    formatter = parser._get_formatter()
    return [words(formatter._format_action_invocation(a) + " "
                  + a.help % dict(vars(a), prog=parser.prog))
            for a in parser._actions if a.help]


def test_load_ext_builds_no_help_text(kernel):
    for lazy in ("batch_magic", "fix_magic"):
        assert kernel.value(f"'gleitzeit_nb.magics.{lazy}' in __import__('sys').modules") is False


@pytest.mark.parametrize("magic", list(PARSERS))
def test_question_mark_shows_each_option_with_its_help(kernel, magic):
    shown = page(kernel.run(f"%{magic}?"))
    helps = option_helps(PARSERS[magic])
    assert len(helps) == len([a for a in PARSERS[magic]._actions if a.help]) >= 1
    missing = [h for h in helps if h not in shown]
    assert missing == [], shown
    assert f"usage: {PARSERS[magic].prog}" in shown


def test_cell_magic_help_and_the_max_tokens_line(kernel):
    shown = page(kernel.run("%%llm?"))
    assert "--max-tokens MAX_TOKENS stop after this many tokens" in shown
    assert "--no-interpolate send the prompt as typed" in shown
    assert shown.startswith("Docstring: Chat: ``%%llm [options]``")  # the docstring, then options


def test_inspector_shows_the_options(kernel):
    msg_id = kernel.kc.inspect("%llm", cursor_pos=4, detail_level=0)
    reply = kernel.kc.get_shell_msg(timeout=10)
    assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["found"]
    assert "--max-tokens MAX_TOKENS stop after this many tokens" in words(
        reply["content"]["data"]["text/plain"])


@pytest.mark.parametrize("line", ["%llm --help", "%llm -h", "%%llm --help\nnot sent",
                                  "%llm_host --help", "%llm_batch -h", "%llm_fix --help"])
def test_help_flags_page_the_same_text(kernel, line):
    ex = kernel.run(line)
    assert ex.status == "ok", ex.error
    name = line.lstrip("%").split()[0]
    shown = page(ex)
    assert all(h in shown for h in option_helps(PARSERS[name])) and "usage:" in shown
