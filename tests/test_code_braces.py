"""Placeholders in pasted code: the f-string hint, ``--no-interpolate``'s verbatim prompt, and
the spans ``interpolate`` reports."""

from __future__ import annotations

import warnings

import pytest

from gleitzeit_nb.app.code_braces import CodeBraceWarning, fill_prompt, in_fstrings
from gleitzeit_nb.app.interpolate import interpolate
from gleitzeit_nb.errors import InvalidParamsError

NS = {"x": 3, "n": 2, "name": "Ada"}


def fill(text: str, **kw) -> tuple[str, list[str]]:
    """The filled prompt and the messages of the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prompt = fill_prompt(text, NS, **kw)
    return prompt, [str(w.message) for w in caught if w.category is CodeBraceWarning]


@pytest.mark.parametrize("code, filled", [
    ('print(f"{x} items")', 'print(f"3 items")'),
    ("s = f'{x}'", "s = f'3'"),
    ('pattern = rf"{x}\\d+"', 'pattern = rf"3\\d+"'),
    ("FR'{x}'.upper()", "FR'3'.upper()"),
    ('rows = [f"{x}", other]', 'rows = [f"3", other]'),
    ('label = f"{x!r:>4} of {n}"', 'label = f"   3 of 2"'),
    ('doc = f"""\nline {x}\n"""', 'doc = f"""\nline 3\n"""'),
    ('Why does print(f"{x} items") fail when {name} runs it?',
     'Why does print(f"3 items") fail when Ada runs it?'),
])
def test_placeholders_in_fstrings_are_filled_with_a_hint(code, filled):
    prompt, hints = fill(code)
    assert prompt == filled
    assert len(hints) == 1 and 'inside f"…"' in hints[0] and "--no-interpolate" in hints[0]


@pytest.mark.parametrize("prose", [
    "Summarise {x} in {n} words, {name}.",
    "f'(x) = {x} and g'(x) = {n}",   # derivatives: a "(" follows the closing quote
    "the chef's {x}' .",             # an apostrophe inside a word opens nothing
    'print("{x} items")',             # a plain string: no f prefix
    'print(f"{{x}} items")',          # escaped: sent as f"{x}", nothing filled
    "```python\nreturn {x}\n```",     # a code block may well want the value
    'an f"unclosed {x}',
    "Use the f-string {x} here",
])
def test_prose_and_escaped_placeholders_give_no_hint(prose):
    assert fill(prose)[1] == []


def test_one_hint_names_every_placeholder_and_its_cell_line():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fill_prompt('Fix this:\nprint(f"{x} of {n}")\nprint(f"{x}")', NS, where="%%llm",
                    first_line=2)
    (w,) = caught
    assert (w.filename, w.lineno, w.category) == ("%%llm", 3, CodeBraceWarning)
    assert str(w.message) == ('{x}, {n} inside f"…" were filled from the notebook; use '
                              "--no-interpolate or {{x}}, {{n}} to send them as typed.")
    assert warnings.formatwarning(w.message, w.category, w.filename, w.lineno) == (
        f"%%llm:3: CodeBraceWarning: {w.message}\n")  # one line, no source or path


def test_the_hint_text_for_one_placeholder():
    assert fill('print(f"{x} items")')[1] == [
        '{x} inside f"…" was filled from the notebook; use --no-interpolate or {{x}} to send '
        "it as typed."]


def test_the_hint_can_be_silenced_like_any_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", CodeBraceWarning)
        assert fill_prompt('print(f"{x}")', NS) == 'print(f"3")'
    assert caught == []


def test_verbatim_sends_the_text_as_typed():
    code = 'print(f"{x} items"); d = {{"a": 1}}; {undefined}; {1+1}'
    prompt, hints = fill(code, verbatim=True)
    assert prompt == code and hints == []
    with pytest.raises(InvalidParamsError):
        fill_prompt(code, NS)  # without it, {undefined} and {1+1} are errors


def test_interpolate_reports_the_spans_it_filled():
    spans: list[tuple[int, int]] = []
    text = "a {x} {{n}} \\frac{x}{n} {name!r} {yes, no}"
    assert interpolate(text, NS, filled=spans) == "a 3 {n} \\frac{x}{n} 'Ada' {yes, no}"
    assert [text[s:e] for s, e in spans] == ["{x}", "{name!r}"]


def test_in_fstrings_keeps_the_spans_inside_the_quotes():
    text = 'x = {x}; f"{x}"'
    assert in_fstrings(text, [(4, 7), (11, 14)]) == [(11, 14)]
