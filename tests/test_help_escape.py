"""``%llm What is 2+2?`` reaches the magic; ``%llm?`` and other help requests still work."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from IPython.core.inputtransformer2 import TransformerManager

from gleitzeit_nb.errors import InvalidParamsError
from gleitzeit_nb.magics.help_escape import HelpEscape, register, unregister

from .kernel import Kernel


def fake_shell(automagic: bool = True, user_ns: dict | None = None,
               magics: tuple[str, ...] = ("llm", "vision", "llm_batch")) -> SimpleNamespace:
    return SimpleNamespace(
        automagic=automagic, user_ns=user_ns or {}, user_global_ns={},
        find_line_magic=lambda name: (lambda line: line) if name in magics else None,
        input_transformers_cleanup=[])


def call(name: str, text: str, head: str = "") -> str:
    return f"{head}get_ipython().run_line_magic({name!r}, {text!r})\n"


@pytest.fixture
def escape() -> HelpEscape:
    return HelpEscape(fake_shell(), ["llm", "vision", "llm_batch"])


def cell_lines(cell: str) -> list[str]:
    return cell.splitlines(keepends=True)


# -- the transform alone: lines in, lines out ------------------------------------------------

@pytest.mark.parametrize("line, expected", [
    ("%llm What is 2+2?\n", call("llm", "What is 2+2?")),
    ("%llm What is in it?", call("llm", "What is in it?")),
    ("%vision img.png What is in it??\n", call("vision", "img.png What is in it??")),
    ("%llm_batch -m qwen Why?\n", call("llm_batch", "-m qwen Why?")),
    ("%llm   spaced  out?   \n", call("llm", "spaced  out?")),
    ("%llm ??? \n", None),
    ("    %llm indented?\n", call("llm", "indented?", "    ")),
    ("\t%llm tab?\n", call("llm", "tab?", "\t")),
    ("%llm What's \"this\" \\n C:\\dir\\ ?\n", call("llm", "What's \"this\" \\n C:\\dir\\ ?")),
    ("%llm 'single' and \"double\"?\n", call("llm", "'single' and \"double\"?")),
    ("x = %llm What is 2+2?\n", call("llm", "What is 2+2?", "x = ")),
    ("answer=%llm Why?\n", call("llm", "Why?", "answer=")),
    ("d['k'] = %llm Why?\n", call("llm", "Why?", "d['k'] = ")),
    ("a, b = %llm Why?\n", call("llm", "Why?", "a, b = ")),
])
def test_question_lines_become_magic_calls(escape, line, expected):
    out = escape([line])
    assert out == ([expected] if expected else [line])


@pytest.mark.parametrize("line", [
    "%llm?\n", "%llm??\n", "llm?\n", "llm??\n", "%llm ?\n", "  %llm?\n",
    "%llm What is 2+2\n",          # no question mark: IPython handles it already
    "%time What?\n",               # not a registered magic
    "%llmx What?\n",
    "!echo What?\n",
    "x?\n", "obj.attr??\n",
    "x == %llm What?\n",
    "x += %llm What?\n",
    "print('%llm What?')\n",
    "# %llm What?\n",
])
def test_other_lines_are_untouched(escape, line):
    assert escape([line]) == [line]


def test_cell_magics_are_untouched(escape):
    for cell in ["%%llm\nWhat is 2+2?\n", "%%llm -m qwen\n%llm inner?\n", "%%time\nx?\n"]:
        lines = cell_lines(cell)
        assert escape(lines) == lines


def test_only_the_magic_line_of_a_cell_is_rewritten(escape):
    lines = cell_lines("a = 1\n%llm What is {a}?\nb = a?\nif a:\n    %llm Inside?\nprint(a)\n")
    assert escape(lines) == [
        "a = 1\n", call("llm", "What is {a}?"), "b = a?\n", "if a:\n",
        call("llm", "Inside?", "    "), "print(a)\n"]


def test_lines_inside_strings_and_brackets_are_untouched(escape):
    cells = [
        "s = '''\n%llm Not a magic?\n'''\n",
        's = """x\n%llm Not a magic?\n"""\n',
        "f(1,\n%llm Not a magic?\n)\n",
        "x = 1 + \\\n%llm Not a magic?\n",
    ]
    for cell in cells:
        assert escape(cell_lines(cell)) == cell_lines(cell)


def test_strings_closed_before_the_magic_line(escape):
    lines = cell_lines("s = '''a\nb'''\nt = 'it\\'s'  # it's\n%llm Now?\n")
    assert escape(lines)[-1] == call("llm", "Now?")


def test_apostrophes_in_other_magic_lines_do_not_open_strings(escape):
    lines = cell_lines("%llm What's up\n%llm And now?\n")
    assert escape(lines) == ["%llm What's up\n", call("llm", "And now?")]


def test_backslash_continued_magic_line(escape):
    lines = cell_lines("%llm a long \\\nquestion?\nx = 1\n")
    assert escape(lines) == [call("llm", "a long  question?"), "x = 1\n"]


def test_automagic_single_line():
    shell = fake_shell()
    escape = HelpEscape(shell, ["llm"])
    assert escape(["llm What is 2+2?\n"]) == [call("llm", "What is 2+2?")]
    assert escape(["llm = 3?\n"]) == ["llm = 3?\n"]
    assert escape(["llm == 3?\n"]) == ["llm == 3?\n"]
    assert escape(["llm, b = 1, 2?\n"]) == ["llm, b = 1, 2?\n"]
    # Not in a multi-line cell, where IPython never applies automagic.
    assert escape(["x = 1\n", "llm What?\n"]) == ["x = 1\n", "llm What?\n"]


@pytest.mark.parametrize("shell", [
    fake_shell(automagic=False),
    fake_shell(user_ns={"llm": 1}),
    fake_shell(magics=()),
])
def test_automagic_respects_the_shell(shell):
    escape = HelpEscape(shell, ["llm", "vision"])
    assert escape(["llm What is it?\n"]) == ["llm What is it?\n"]
    assert escape(["%llm What is it?\n"]) == [call("llm", "What is it?")]


def test_builtin_names_are_shadowing():
    escape = HelpEscape(fake_shell(magics=("open",)), ["open"])
    assert escape(["open What?\n"]) == ["open What?\n"]


def test_register_is_idempotent_and_merges_names():
    shell = fake_shell()
    register(shell, ["llm"])
    register(shell, ["llm", "%vision"])
    installed = shell.input_transformers_cleanup
    assert len(installed) == 1 and installed[0].names == {"llm", "vision"}
    unregister(shell)
    unregister(shell)
    assert installed == []


def test_register_rejects_bad_names():
    with pytest.raises(InvalidParamsError):
        register(fake_shell(), ["llm", "not a name"])


def test_full_ipython_transform_pipeline():
    tm = TransformerManager()
    tm.cleanup_transforms.append(HelpEscape(fake_shell(), ["llm"]))
    assert tm.transform_cell("%llm What is in it?") == call("llm", "What is in it?")
    assert tm.transform_cell("  %llm What's up?\n") == call("llm", "What's up?")
    assert tm.transform_cell(">>> %llm Prompt stripped?\n") == call("llm", "Prompt stripped?")
    assert tm.transform_cell("%llm?") == "get_ipython().run_line_magic('pinfo', '%llm')\n"
    assert tm.transform_cell("%llm??") == "get_ipython().run_line_magic('pinfo2', '%llm')\n"
    assert tm.transform_cell("x?") == "get_ipython().run_line_magic('pinfo', 'x')\n"
    assert tm.transform_cell("%%llm\nWhat?\n") == (
        "get_ipython().run_cell_magic('llm', '', 'What?\\n')\n")
    assert tm.transform_cell("!ls x?") == "get_ipython().run_line_magic('pinfo', 'x')\n"
    assert tm.check_complete("%llm What's up?") == ("complete", None)


# -- a real kernel ---------------------------------------------------------------------------

SETUP = '''
from IPython.core.magic import register_line_magic
from gleitzeit_nb.magics.help_escape import register

@register_line_magic
def echo_q(line):
    "Echo the line."
    print(line)

@register_line_magic
def ret_q(line):
    return line.upper()

register(get_ipython(), ["echo_q", "ret_q"])
del echo_q, ret_q  # the decorator binds the names, which would shadow the magics for automagic
'''


@pytest.fixture(scope="module")
def kernel():
    k = Kernel()
    try:
        ex = k.run(SETUP)
        assert ex.status == "ok", ex.error
        yield k
    finally:
        k.shutdown()


def pages(ex) -> str:
    return "".join(p.get("data", {}).get("text/plain", "")
                   for p in ex.reply["content"].get("payload", []) if p.get("source") == "page")


def test_kernel_question_reaches_the_magic(kernel):
    ex = kernel.run("%echo_q What is in it?")
    assert ex.error is None and ex.stdout == "What is in it?\n"
    ex = kernel.run("%echo_q img.png What is in it??")
    assert ex.stdout == "img.png What is in it??\n" and not pages(ex)


def test_kernel_help_on_the_magic_still_works(kernel):
    for cell in ["%echo_q?", "%echo_q??", "echo_q?"]:
        ex = kernel.run(cell)
        assert ex.error is None and ex.stdout == ""
        assert "Echo the line." in pages(ex) + ex.text()


def test_kernel_help_on_objects_still_works(kernel):
    ex = kernel.run("value = 5\nvalue?")
    assert "int" in pages(ex) + ex.text()


def test_kernel_multi_line_cell(kernel):
    ex = kernel.run("a = 2\n%echo_q Is a even?\nprint(a * 2)\n")
    assert ex.error is None and ex.stdout == "Is a even?\n4\n"


def test_kernel_quotes_and_backslashes(kernel):
    ex = kernel.run("%echo_q What's \"C:\\new\\table\" and '\\n'?")
    assert ex.error is None
    assert ex.stdout == "What's \"C:\\new\\table\" and '\\n'?\n"


def test_kernel_assignment_and_automagic(kernel):
    ex = kernel.run("x = %ret_q why?\nprint(x)")
    assert ex.error is None and ex.stdout == "WHY?\n"
    ex = kernel.run("echo_q Is automagic on?")
    assert ex.stdout == "Is automagic on?\n"
    kernel.run("%automagic off")
    try:
        ex = kernel.run("%echo_q Still fine without automagic?")
        assert ex.stdout == "Still fine without automagic?\n"
        ex = kernel.run("echo_q Not a magic call now?")
        assert ex.stdout == "Object `now` not found.\n"  # IPython's help, as without us
    finally:
        kernel.run("%automagic on")


def test_kernel_cell_magic_body_untouched(kernel):
    ex = kernel.run("%%capture out\n%echo_q inside a cell magic?\n")
    assert ex.error is None
    ex = kernel.run("print(out.stdout, end='')")
    assert ex.stdout == "inside a cell magic?\n"


def test_kernel_unregister_restores_ipython_behaviour(kernel):
    kernel.run("from gleitzeit_nb.magics.help_escape import unregister\nunregister(get_ipython())")
    try:
        ex = kernel.run("%echo_q What is in it?")
        assert ex.stdout == "Object `it` not found.\n"  # IPython's help on `it` took over
    finally:
        kernel.run("register(get_ipython(), ['echo_q', 'ret_q'])")
