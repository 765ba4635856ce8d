"""``{var}`` interpolation of prompts: placeholders, literal brace text, LaTeX, errors."""

from __future__ import annotations

import datetime
import warnings
from types import SimpleNamespace

import pytest

from gleitzeit_nb.errors import InvalidParamsError
from gleitzeit_nb.app.interpolate import LONG_VALUE_CHARS, interpolate

NS = {
    "name": "Ada",
    "x": 3.14159,
    "n": 42,
    "digits": 3,
    "items": ["a", "b", "c"],
    "d": {"key": "value", "k'q": "quoted", 1: "one"},
    "obj": SimpleNamespace(attr="A", inner=SimpleNamespace(rows=[{"id": 7}])),
    "when": datetime.date(2024, 5, 17),
    "größe": 5,
}


def render(template: str) -> str:
    return interpolate(template, NS)


def error(template: str, namespace: dict | None = None) -> str:
    with pytest.raises(InvalidParamsError) as info:
        interpolate(template, NS if namespace is None else namespace)
    assert info.value.param == "prompt"
    return str(info.value)


@pytest.mark.parametrize("template, expected", [
    ("Hello {name}!", "Hello Ada!"),
    ("{name}{n}", "Ada42"),
    ("{obj.attr}", "A"),
    ("{obj.inner.rows[0]}", "{'id': 7}"),
    ('{obj.inner.rows[0]["id"]}', "7"),
    ("{items[0]}{items[-1]}", "ac"),
    ('{d["key"]} {d[\'key\']}', "value value"),
    ('{d["k\'q"]}', "quoted"),
    ("{d[1]}", "one"),
    ("{x:.2f}", "3.14"),
    ("{n:>5}|", "   42|"),
    ("{n:05d}", "00042"),
    ("{n:,}", "42"),
    ("{x:.{digits}f}", "3.142"),
    ("{name!r}", "'Ada'"),
    ("{name!r:>7}", "  'Ada'"),
    ("{name!s}", "Ada"),
    ("{größe}", "5"),
    ("{when:%Y-%m-%d}", "2024-05-17"),
    ("{when:%d %B}", "17 May"),
    ("{x:}", "3.14159"),
])
def test_placeholders(template, expected):
    assert render(template) == expected


def test_ascii_conversion():
    assert interpolate("{s!a}", {"s": "é"}) == "'\\xe9'"


@pytest.mark.parametrize("template, expected", [
    ("{{name}}", "{name}"),
    ("{{{name}}}", "{Ada}"),
    ("a }} b {{ c", "a } b { c"),
    ('{{"user": "{name}"}}', '{"user": "Ada"}'),
    ('{{"a": {{"b": {n}}}}}', '{"a": {"b": 42}}'),
])
def test_double_braces_are_literal(template, expected):
    assert render(template) == expected


@pytest.mark.parametrize("text", [
    '{"a": 1}',
    'Return JSON like {"name": "...", "tags": {"x": [1, 2]}}',
    '[{"id": 1}, {"id": 2}]',
    "{ }",
    "{}",
    "{ name }",
    "{ x + y }",
    "Answer with {yes, no, maybe}",
    "Answer {yes or no}",
    "{not sure}",
    "{1, 2, 3}",
    "{a: 1}",
    "{name: value}",
    "if (x) { return y; }",
    "def f(): return {k: v for k, v in d.items()}",
    "{x!z}",
    "{a != b}",
    "lone { brace",
    "lone } brace",
    "}{",
    "{unclosed {name",
])
def test_other_brace_text_is_left_as_is(text):
    assert render(text) == text


def test_unclosed_brace_before_a_placeholder():
    assert render("{ and {name}") == "{ and Ada"
    assert render("}} and {name} }") == "} and Ada }"


def test_literal_group_is_copied_verbatim_including_nested_placeholders():
    assert render('{"user": "{name}"} and {name}') == '{"user": "{name}"} and Ada'
    assert render('{"a": {"b": 1}} {n}') == '{"a": {"b": 1}} 42'


@pytest.mark.parametrize("text", [
    r"\frac{a}{b}",
    r"$\frac{x}{n}$",
    r"\frac{\alpha}{b_{i}}",
    r"\sqrt{x} + \sqrt[3]{n}",
    r"x^{n} + a_{i}",
    r"x^{y^{2}}",
    r"\text{Hello {name}}",
    r"\begin{cases} x & n \end{cases}",
    r"\mathbf{x}{n}",
    r"x^{{n}}",
    r"\left\{ x \right\}",
    r"file_{n}.txt",
])
def test_latex_groups_are_left_alone(text):
    assert render(text) == text


def test_latex_and_placeholders_mix():
    assert render(r"Simplify $\frac{a}{b}$ for {name} with x^{2}, n={n}") == (
        r"Simplify $\frac{a}{b}$ for Ada with x^{2}, n=42")
    assert render(r"\frac{a}{b} {n}") == r"\frac{a}{b} 42"  # a space ends the chain
    assert render("{name}{n}") == "Ada42"  # chaining applies after LaTeX groups only


def test_text_without_braces_is_returned_unchanged():
    text = "No braces here: 2+2? ok\n"
    assert interpolate(text, {}) is text


def test_undefined_name_message():
    msg = error("Summarise {df_sales}")
    assert msg == ("Name 'df_sales' in {df_sales} is not defined in the notebook; define it "
                   "first, or write {{df_sales}} for literal braces.")
    assert "{df_sales.total:.2f}" in error("{df_sales.total:.2f}")
    assert "{{df_sales.total:.2f}}" in error("{df_sales.total:.2f}")


def test_namespace_is_the_only_source():
    assert "Name 'len'" in error("{len}")
    assert interpolate("{len}", {"len": 1}) == "1"


@pytest.mark.parametrize("template, fragments", [
    ("{obj.atr}", ["Attribute 'atr'", "SimpleNamespace", "{obj.atr}", "{{obj.atr}}"]),
    ("{items[5]}", ["Index 5", "out of range", "list", "length 3", "{{items[5]}}"]),
    ('{d["nope"]}', ["Key 'nope'", "dict", "{{d[\"nope\"]}}"]),
    ("{n[0]}", ["Indexing the int value with 0", "TypeError", "not subscriptable"]),
    ("{name:.2f}", ["Format spec ':.2f'", "str value", "{{name:.2f}}"]),
    ("{x:.{nope}f}", ["Name 'nope'", "{x:.{nope}f}"]),
])
def test_attribute_index_and_format_errors(template, fragments):
    msg = error(template)
    for fragment in fragments:
        assert fragment in msg


def test_property_that_raises_is_reported():
    class Broken:
        @property
        def value(self):
            raise RuntimeError("boom")

    msg = error("{b.value}", {"b": Broken()})
    assert "Reading attribute 'value' raised RuntimeError: boom" in msg


@pytest.mark.parametrize("template", [
    "{f()}", "{a+b}", "{df.head()}", "{df.head(n=3)}", "{len(items)}", "{2+2}",
    "{d[key]}", "{items[1:2]}", "{x*2}", '{", ".join(items)}', "{lambda: 1}",
    "{[i for i in items]}", "{(y := 1)}",
])
def test_expressions_are_rejected(template):
    msg = error(template)
    assert "only names, attributes and indexing" in msg
    assert "{{" + template[1:-1] + "}}" in msg


def test_nothing_is_evaluated():
    calls = []

    class Spy:
        def __call__(self):
            calls.append(1)
            return "called"

    with pytest.raises(InvalidParamsError):
        interpolate("{spy()}", {"spy": Spy()})
    assert calls == []


def test_non_string_template_is_rejected():
    with pytest.raises(InvalidParamsError):
        interpolate(None, {})  # type: ignore[arg-type]


def test_multiline_template():
    template = "Name: {name}\nCode:\n    def f():\n        return {x: 1}\nDone {n}\n"
    assert render(template) == "Name: Ada\nCode:\n    def f():\n        return {x: 1}\nDone 42\n"


class _FakeFrame:
    """Stands in for a pandas DataFrame: same class name and module, no pandas needed."""

    def to_markdown(self) -> str:  # with tabulate installed; never used (machine-dependent)
        return "| a |\n|---|\n| 1 |"

    def to_string(self) -> str:
        return "   a\n0  1"

    def __format__(self, spec: str) -> str:
        return "FORMATTED"


_FakeFrame.__name__ = _FakeFrame.__qualname__ = "DataFrame"
_FakeFrame.__module__ = "pandas.core.frame"


def test_dataframe_renders_as_text_whatever_is_installed():
    assert interpolate("{df}", {"df": _FakeFrame()}) == "   a\n0  1"
    # A conversion means the user asked for plain text; a spec must be a table form.
    assert interpolate("{df!s}", {"df": _FakeFrame()}).startswith("<")
    with pytest.raises(InvalidParamsError, match="a table takes :full"):
        interpolate("{df:x}", {"df": _FakeFrame()})


def test_subclass_of_a_dataframe_counts():
    class Mine(_FakeFrame):
        pass

    assert interpolate("{df}", {"df": Mine()}) == "   a\n0  1"


def test_class_named_dataframe_elsewhere_is_formatted_normally():
    class DataFrame:
        def __format__(self, spec: str) -> str:
            return "plain"

    assert interpolate("{df}", {"df": DataFrame()}) == "plain"


def test_real_pandas_objects():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"region": ["north", "south"], "sales": [10, 20]})
    out = interpolate("Data:\n{df}\nTotal: {total}", {"df": df, "total": df["sales"].sum()})
    assert "north" in out and "south" in out and "Total: 30" in out
    assert "DataFrame" not in out
    series = interpolate("{s}", {"s": df["sales"]})
    assert "10" in series and "20" in series
    assert interpolate("{df.shape[0]}", {"df": df}) == "2"
    assert interpolate('{df["sales"][1]}', {"df": df}) == "20"


@pytest.mark.parametrize("spec", ["head(20", "head( 20)", "Head(2)", "summary()", ".2f"])
def test_a_malformed_table_form_lists_the_table_forms(spec):
    pd = pytest.importorskip("pandas")
    with pytest.raises(InvalidParamsError) as err:
        interpolate(f"{{big:{spec}}}", {"big": pd.DataFrame({"a": [1, 2]})})
    assert str(err.value) == (f"{{big:{spec}}}: a table takes :full, :summary, :head(N) or "
                              ":tail(N), written exactly so (e.g. {big:head(20)}).")


def test_long_values_are_kept_with_a_warning():
    big = "x" * (LONG_VALUE_CHARS + 1)
    with pytest.warns(UserWarning, match=r"\{big\} puts 20,001 characters"):
        out = interpolate("<{big}>", {"big": big})
    assert out == f"<{big}>"


def test_values_at_the_limit_do_not_warn():
    ok = "x" * LONG_VALUE_CHARS
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert interpolate("{ok}", {"ok": ok}) == ok


def test_placeholder_values_are_not_reinterpolated():
    assert interpolate("{a}", {"a": "{b}", "b": "no"}) == "{b}"
