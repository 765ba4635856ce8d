"""The pieces of %llm_fix and --code that need no kernel: variable summaries, code blocks,
the prompt's fence."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gleitzeit_nb.app.code_blocks import CellCode, CodeBlock, cell_code, code_blocks, fence_for
from gleitzeit_nb.app.fix_prompt import fix_prompt
from gleitzeit_nb.app.tracebacks import CellError, cell_error, trim_traceback
from gleitzeit_nb.app.var_summary import names_in, summarize, variable_summaries


def test_summaries_never_hold_whole_values():
    secret = "s3cr3t-value"
    ns = {"arr": np.zeros((3, 4), dtype="float32"),
          "s": pd.Series([secret] * 5, name="token"),
          "d": {f"k{i}": secret for i in range(12)},
          "words": [secret, 1, 2.0],
          "text": secret * 100,
          "n": 7,
          "_private": 1}
    lines = variable_summaries("print(arr, s, d, words, text, n, _private, missing)", ns)
    assert lines == [
        "arr: numpy ndarray, shape (3, 4), dtype float32",
        "s: pandas Series 'token', length 5, dtype " + str(ns["s"].dtype),
        "d: dict of 12 items; keys: 'k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8', 'k9', …",
        "words: list of length 3; items: str, int, float",
        "text: str of length 1,200",
        "n: int = 7"]
    assert secret not in "\n".join(lines)


def test_wide_frames_and_odd_objects_stay_short():
    wide = pd.DataFrame(np.zeros((2, 50)), columns=[f"c{i}" for i in range(50)])
    text = summarize(wide)
    assert text.startswith("pandas DataFrame, 2 rows × 50 columns") and text.endswith("… 20 more")
    assert len(text) < 520

    class Broken:
        def __len__(self):
            raise RuntimeError("no")

    assert summarize(Broken()).endswith("Broken")


def test_names_in_order_even_when_the_code_does_not_parse():
    assert names_in("y = f(x)\nprint(x, z)") == ["y", "f", "x", "print", "z"]
    assert names_in("y = f(x\nz") == ["y", "f", "x", "z"]


def test_the_code_for_the_next_cell():
    reply = "A:\n~~~sh\nls\n~~~\n\n```Python title\nx = 1\n```\n```python\nsecond()\n```"
    assert [b.language for b in code_blocks(reply)] == ["sh", "python", "python"]
    assert cell_code(reply) == CellCode("x = 1", "the first of 2 Python code blocks")
    assert cell_code(reply, last=True) == CellCode("second()", "the last of 2 Python code blocks")
    assert cell_code("only ```inline``` code") == CellCode(None)
    assert cell_code("```\nraw()\n```") == CellCode("raw()")  # untagged: taken as Python
    assert cell_code("cut short:\n```python\nhalf(") == CellCode("half(")


def test_a_fix_reply_quoting_the_failing_line_first_gives_the_corrected_cell():
    reply = ("The line\n```python\ntotal(df)\n```\nfails. Corrected:\n```python\n"
             "total(df.rename(columns={'sales': 'sale'}))\n```")
    assert cell_code(reply, last=True).code == "total(df.rename(columns={'sales': 'sale'}))"
    assert "last in your answer" in fix_prompt(CellError(1, "x", "E", "e", "E: e"))


def test_blockquoted_tab_indented_and_non_python_blocks():
    quoted = "> Try:\n> ```python\n> if x:\n>     y()\n> ```\n> done\n\nafter"
    assert code_blocks(quoted) == [CodeBlock("python", "if x:\n    y()")]
    nested = "> 1. Run\n>    ```py\n>    a = 1\n>    ```"
    assert cell_code(nested) == CellCode("a = 1")
    tabbed = "-\t```python\n\tif x:\n\t\ty()\n\t```"
    assert cell_code(tabbed) == CellCode("if x:\n\ty()")
    assert cell_code("```bash\npip install x\n```") == CellCode(
        "%%bash\npip install x", "the reply's code block is bash: put in as %%bash")
    refused = cell_code("```r\nsummary(df)\n```")
    assert refused.code is None and "code block is r, not Python" in refused.note


def test_the_prompt_fences_code_that_holds_fences():
    code = 'md = """\n```python\nx\n```\n"""'
    sent = fix_prompt(CellError(5, code, "E", "e", "E: e"), ["md: str of length 20"])
    assert f"````python\n{code}\n````" in sent and fence_for(code) == "````"
    assert sent.endswith("The error:\nE: e\n\nThe variables it uses, as they are now:\n"
                         "- md: str of length 20")


def test_no_memory_address_and_no_home_folder_in_prompt_text(tmp_path, monkeypatch):
    home, elsewhere, work = tmp_path / "home", tmp_path / "elsewhere", tmp_path / "work"
    for folder in (home / "lib", elsewhere, work):
        folder.mkdir(parents=True)
    (home / "lib" / "mine.py").write_text("def boom(x):\n    raise ValueError(f'bad {x!r}')\n")
    (elsewhere / "theirs.py").write_text("def call(f, x):\n    return f(x)\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.syspath_prepend(str(home / "lib"))
    monkeypatch.syspath_prepend(str(elsewhere))
    cell = "import mine, theirs\ntheirs.call(mine.boom, object())"
    try:
        exec(compile(cell, "<cell-1>", "exec"), {})
    except ValueError as exc:
        caught = exc
    label = lambda f: "Cell In[1]" if f == "<cell-1>" else None  # noqa: E731
    error = cell_error(1, cell, caught, label)
    text = trim_traceback(caught, label, str(work))
    assert 'File "theirs.py", line 2, in call' in text
    assert 'File "~/lib/mine.py", line 2, in boom' in text
    assert str(tmp_path) not in text
    assert "ValueError: bad <object object at 0x…>" in text and "0x…" in error.evalue
    assert summarize({Opaque(): 1}) == "dict of 1 items; keys: <Opaque at 0x…>"


class Opaque:
    def __repr__(self) -> str:
        return f"<Opaque at {hex(id(self))}>"


def _trimmed(cell: str) -> str:
    label = lambda f: "Cell In[1]" if f == "<cell-1>" else None  # noqa: E731
    try:
        exec(compile(cell, "<cell-1>", "exec"), {})
    except BaseException as exc:  # noqa: BLE001 - the cell's own
        return trim_traceback(exc, label)
    raise AssertionError("the cell did not fail")


def test_groups_causes_and_contexts():
    group = _trimmed("raise ExceptionGroup('checks', [ValueError('a'), *[KeyError(i) for i in "
                     "range(6)]])")
    assert group.endswith("ExceptionGroup: checks (7 sub-exceptions)\n  1. ValueError: a\n"
                          "  2. KeyError: 0\n  3. KeyError: 1\n  4. KeyError: 2\n  5. KeyError: 3\n"
                          "  … 2 more")
    caused = _trimmed("try:\n    {}['k']\nexcept KeyError as e:\n    raise ValueError('bad') from e")
    assert caused.endswith("ValueError: bad\n(caused by KeyError: 'k')")
    handling = _trimmed("try:\n    {}['k']\nexcept KeyError:\n    raise ValueError('bad')")
    assert handling.endswith("ValueError: bad\n(raised while handling KeyError: 'k')")
    hidden = _trimmed("try:\n    {}['k']\nexcept KeyError:\n    raise ValueError('bad') from None")
    assert hidden.endswith("ValueError: bad")
