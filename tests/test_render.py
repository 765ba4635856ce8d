"""escape_html (model text → safe Markdown) and the reply bundles built on it."""

from __future__ import annotations

import html.parser
import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gleitzeit_nb.app.markdown import _math_spans, escape_html
from gleitzeit_nb.app.render import THINKING_TAIL, reply_bundle, stats_line, waiting_bundle

XSS = "<img src=x onerror=alert(1)>"


def raw_tags(md: str) -> list[str]:
    """Tag-like text left live in prose: what a Markdown renderer could turn into HTML."""
    return re.findall(r"<(?!/?code>)[A-Za-z/!?][^\s>]*", md)


# --- escaping outside code ----------------------------------------------------------------------
@pytest.mark.parametrize("payload", [
    "<script>alert(1)</script>", XSS, "<iframe src=x>", "<style>*{}</style>", "<details open ontoggle=x>",
    "<!-- hidden -->", "<?php ?>", "<![CDATA[x]]>", "</p><svg onload=alert(1)>", "<https://example.com>",
    "<a/href=javascript:alert(1)>", "<B>", "<x onclick=1>"])
def test_html_in_prose_shows_as_text(payload):
    md = escape_html(f"before {payload} after")
    assert raw_tags(md) == [] and "&lt;" in md


def test_entities_show_literally_and_markdown_survives():
    assert escape_html("&#60;script> &lt;b&gt; A&B") == "&amp;#60;script> &amp;lt;b&amp;gt; A&amp;B"
    text = "# Title\n\n> quoted > text\n\n- a **b** *c*\n1. [link](https://x.y)\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    assert escape_html(text) == text  # nothing to escape, nothing touched


def test_crlf_is_normalised_and_fences_still_found():
    assert escape_html("a\r\n```\r\n<b>\r\n```\r\n<i>\rx") == "a\n```\n<b>\n```\n&lt;i>\nx"


# --- fenced code ------------------------------------------------------------------------------
@pytest.mark.parametrize("fence", ["```", "````", "~~~", "~~~~~", "```python", "``` js title=x", "~~~ `odd` info"])
def test_fence_content_is_untouched(fence):
    close = fence.split()[0].rstrip("python")
    md = escape_html(f"Code:\n{fence}\nif a < b && c > d: print('<b>&amp;')\n{close}\n<script>x</script>")
    assert "if a < b && c > d: print('<b>&amp;')" in md
    assert md.endswith("&lt;script>x&lt;/script>")  # right after the closed fence: escaped


def test_fence_closing_rules():
    assert escape_html("text <b>\n```html\n<div>\n<p>partial") == "text &lt;b>\n```html\n<div>\n<p>partial"
    # backticks inside, a shorter run and the other fence char do not close; a longer run does
    md = escape_html("````\n```\n~~~\n`a` <x>\n`````\n<y>")
    assert "`a` <x>" in md and md.endswith("&lt;y>")
    assert escape_html("```\n``` not a closer <i>\n") == "```\n``` not a closer <i>\n"
    # backticks in a backtick fence's info string make it no fence at all
    assert escape_html("```a`b <i>") == "```a`b &lt;i>"


def test_fences_in_lists_and_quotes():
    md = escape_html("1. Install:\n   ```bash\n   a && b < in\n   ```\n2. Then <b>")
    assert "a && b < in" in md and md.endswith("2. Then &lt;b>")
    md = escape_html("- a\n  - b\n\n    ```\n    x < y\n    ```\n- <c>")
    assert "x < y" in md and "&lt;c>" in md
    md = escape_html("- ```js\n  if (a<b) {}\n  ```\n\n> ```\n> <q>\n> ```\n<d>")
    assert "if (a<b) {}" in md and "> <q>" in md and md.endswith("&lt;d>")


@pytest.mark.parametrize("text", [
    "- item\n    ```\n  ```\n  " + XSS,            # closer of a nested fence, then HTML in the item
    "  ```\nx\n  ```\n  " + XSS,                    # indented fence, less indented content
    "- ```\n  a\n" + XSS + "\n  ```\n  " + XSS,     # lazy line: marked keeps the fence open
    "> ```\n> a\nlazy\n> ```\n> " + XSS,            # lazy line in a block quote
    "$$\n ```\n$$\n" + XSS + "\n ```\n" + XSS,      # a fence line hidden inside math
    "\t```\n" + XSS + "\n```\n" + XSS,              # tabs make columns uncertain
])
def test_ambiguous_structure_never_leaves_html_live(text):
    md = escape_html(text)
    assert "<img" not in md


def test_link_definitions_are_neutralised():
    # marked lets a definition's title span lines, swallowing the fence below; so no definitions
    text = '[x]: /u "\n```\n"\n' + XSS + "\n```\n" + XSS
    assert escape_html(text) == '&#91;x]: /u "\n```\n"\n' + XSS + "\n```\n&lt;" + XSS[1:]
    assert escape_html("- [a]: <b>") == "- &#91;a]: &lt;b>"


def test_quotes_cannot_break_out_of_the_code_language_attribute():
    # JupyterLab writes the info string into class="language-..." without escaping it
    md = escape_html('```x"onmouseover="alert(1)\ncode\n```')
    assert '"' not in md.splitlines()[0] and "&quot;" in md
    md = escape_html('```js $a"onmouseover="b$\nx')  # math pasted back into the attribute
    assert '"onmouseover' not in md
    assert '"' not in escape_html('see www.x.y/$x"onmouseover="a$ ok')  # or into an autolink


# --- inline code ------------------------------------------------------------------------------
def test_plain_code_spans_are_untouched():
    md = escape_html("Use `a && b`, `x < 3`, ``a`b < c`` and `&lt;` but not <b>")
    assert "`a && b`" in md and "`x < 3`" in md and "``a`b < c``" in md and "`&lt;`" in md
    assert md.endswith("&lt;b>")


def test_tag_like_code_spans_become_inert_code_elements():
    md = escape_html("Wrap it in `<div class=\"x\">` or `</b>` then *`<i>`*.")
    assert "<code>&lt;div class=&#34;x&#34;&gt;</code>" in md and "<code>&lt;/b&gt;</code>" in md
    assert "*<code>&lt;i&gt;</code>*" in md and raw_tags(md) == []
    md = escape_html("*a `` " + XSS + " a`b* ``")  # marked's emphasis would split this span
    assert "<img" not in md and md.startswith("*a <code>")


@pytest.mark.parametrize("text", ["unbalanced ` <b> here", "``two` <b>", "\\`<b>`", "`a\n\n<b>`"])
def test_unpaired_backticks_leave_text_escaped(text):
    assert "<b>" not in escape_html(text)


def test_span_on_a_fence_like_line_is_not_turned_into_a_fence():
    # converting it would strip the backticks from the info string and open a fence
    md = escape_html("```~ `<b>` <i>\n<j>")
    assert md.startswith("```~ `&lt;b>`") and "<i>" not in md and "<j>" not in md


# --- math -------------------------------------------------------------------------------------
def test_math_is_left_to_jupyterlab_except_tags_and_quotes():
    md = escape_html("If $x<y$ and $$\\begin{aligned} a &= b \\\\ c &= d \\end{aligned}$$ then <b>")
    assert "$x\\lt y$" in md and "a &= b" in md and md.endswith("&lt;b>")
    assert escape_html('$\\text{"q"}<2$') == "$\\text{''q''}<2$"
    assert escape_html("`$a<2$` and <b>\n```\n$x<y$\n```") == "`$a<2$` and &lt;b>\n```\n$x<y$\n```"


JS_SPACE = "\t\n\x0b\x0c\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


def remove_math_reference(text: str) -> list[tuple[int, int]]:
    """A line-by-line port of JupyterLab's removeMath (rendermime latex.ts), slow and literal."""
    split = re.compile(r"(\$\$?|\\(?:begin|end)\{[a-z]*\*?\}|\\[{}$]|[{}]|(?:\n[" + JS_SPACE
                       + r"]*)+|@@\d+@@|\\\\(?:\(|\)|\[|\]))", re.I | re.A)
    coded = "`" in text or "~~~" in text
    if coded:
        text = text.replace("~", "~T")
        text = re.sub(r"^(?P<f>`{3,}|(?:~T){3,})[^`\n]*\n([\s\S]*?)^(?P=f)`*$",
                      lambda m: m[0].replace("$", "~D"), text, flags=re.M)
        text = re.sub(r"(^|[^\\])(`+)([^\n]*?[^`\n])\2(?!`)", lambda m: m[0].replace("$", "~D"), text, flags=re.M)
    blocks, spans = split.split(text), []
    start = end = last = None
    braces, i = 0, 1
    while i < len(blocks):
        b = blocks[i]
        if b[0] == "@":
            pass
        elif start is not None:
            if b == end:
                if braces:
                    last = i
                else:
                    spans.append((start, i))
                    start = end = last = None
            elif re.search(r"\n.*\n", b):
                if last is not None:
                    i = last
                    spans.append((start, i))
                start = end = last = None
                braces = 0
            elif b == "{":
                braces += 1
            elif b == "}" and braces:
                braces -= 1
        elif b in ("$", "$$"):
            start, end, braces = i, b, 0
        elif b in ("\\\\(", "\\\\["):
            start, end, braces = i, "\\\\)" if b[-1] == "(" else "\\\\]", 0
        elif b[1:6] == "begin":
            start, end, braces = i, "\\end" + b[6:], 0
        i += 2
    if start is not None and last is not None:
        spans.append((start, last))
    offs = [0]
    for b in blocks:
        offs.append(offs[-1] + len(b) - (b.count("~") if coded else 0))
    return [(offs[a], offs[b + 1]) for a, b in spans]


def test_math_detection_matches_jupyterlab_remove_math():
    pieces = ["$", "$$", "\\\\(", "\\\\)", "\\\\[", "\\\\]", "{", "}", "\n", "\n\n", "\n \n", " ", "@@1@@", "\\begin{x}",
              "\\end{x}", "\\BEGIN{x}", "`", "``", "```", "~~~", "~~~~", "a", "\\$", "\\{", "\n```\n", "\n~~~\n", "\n````\n"]
    rng = random.Random(1)
    checked = 0
    for _ in range(6000):
        t = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 30)))
        got = _math_spans(t)
        if got is not None:  # None: ambiguous, the caller escapes everything
            assert got == remove_math_reference(t), repr(t)
            checked += 1
    assert checked > 5000


# --- against the Markdown parser JupyterLab ships ----------------------------------------------
MARKED_RUNNER = r"""
const fs = require('fs'); globalThis.self = globalThis;
const src = fs.readFileSync(process.argv[2], 'utf8');
const name = src.match(/self\.((?:webpack|rspack)Chunk[A-Za-z0-9_$]*)/)[1];
const pushed = []; globalThis[name] = { push: (x) => pushed.push(x) }; (0, eval)(src);
const mods = pushed[0][1], cache = {};
const req = (id) => cache[id] ? cache[id].exports : (mods[id](cache[id] = { exports: {} }, cache[id].exports, req), cache[id].exports);
req.d = (e, d) => { for (const k in d) Object.defineProperty(e, k, { enumerable: true, get: d[k] }); };
req.r = (e) => Object.defineProperty(e, '__esModule', { value: true });
req.o = (o, p) => Object.prototype.hasOwnProperty.call(o, p);
const marked = req(Object.keys(mods)[0]);
const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const md = new marked.Marked({ gfm: true, async: false });
// like JupyterLab's highlighting renderer, which puts the language into the class unescaped
md.use({ renderer: { code(t) { return `<pre><code class="language-${t.lang || ''}">${esc(t.text)}</code></pre>`; } } });
process.stdout.write(JSON.stringify(JSON.parse(fs.readFileSync(0, 'utf8')).map((d) => md.parse(d))));
"""


def marked_chunk() -> Path | None:
    static = Path(sys.prefix, "share", "jupyter", "lab", "static")
    for f in sorted(static.glob("*.js")) if static.is_dir() else []:
        if f.stat().st_size < 200_000 and "blockSkip" in (text := f.read_text(errors="ignore")) \
                and "TextRenderer" in text and "marked" not in f.name:
            return f
    return None


class LiveHTML(html.parser.HTMLParser):
    ALLOWED = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "pre", "code", "em", "strong", "del",
               "a", "img", "table", "thead", "tbody", "tr", "th", "td", "blockquote", "hr", "br", "input",
               "details", "summary", "div", "sub"}  # the last four: render.py's own wrapper

    def __init__(self) -> None:
        super().__init__()
        self.bad: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.bad += [tag] if tag not in self.ALLOWED else []
        self.bad += [f"{tag}[{k}={v}]" for k, v in attrs if k in ("href", "src") and v
                     and re.sub(r"[\s\x00-\x1f]", "", v).lower().startswith(("javascript:", "vbscript:", "data:"))]
        self.bad += [f"{tag}[{k}]" for k, _ in attrs if k not in {"class", "href", "src", "alt", "title", "type",
                     "checked", "disabled", "start", "align", "id", "open"} and (tag, k) != ("div", "style")]

    handle_startendtag = handle_starttag

    def handle_comment(self, data):
        self.bad.append("<!--")

    def handle_pi(self, data):
        self.bad.append("<?")

    def unknown_decl(self, data):
        self.bad.append("<![")


@pytest.mark.skipif(shutil.which("node") is None or marked_chunk() is None,
                    reason="needs node and the marked build JupyterLab ships")
def test_fuzz_against_jupyterlabs_marked_finds_no_live_html(tmp_path):
    runner = tmp_path / "marked_run.js"
    runner.write_text(MARKED_RUNNER)
    pieces = ["```", "````", "~~~", "```py", "``` x`y", "    ```", "  ```", "\t```", "- ", "1. ", "2) ", "  - ", "> ",
              "> - ", "`", "``", "\\`", "$", "$$", "\\begin{x}", "\\end{x}", "\\\\(", "{", "}", '[x]: /u "', "*", "**",
              "_", "|", "|---|", "[x](", "](", "www.x.y/", '$x"onmouseover="a$', "`<b>`", "\n", "\n", "\n\n", " ",
              "    ", "text", "a<b", "&", '"', "'"]
    payloads = [XSS, "<script>alert(1)</script>", "<!-- c -->", "<details open ontoggle=alert(1)>", "<?php ?>",
                "</p><svg onload=alert(1)>", "<https://e.x>", 'x"onmouseover="alert(1)',
                "[x](javascript:alert(1))", "[y](JAVA\\script:alert(2) 't')", "[z]( data:text/html,<b>)",
                "[w](\n javascript:alert(3))"]
    rng = random.Random(7)
    docs = ["".join(rng.choice(payloads) if rng.random() < 0.25 else rng.choice(pieces)
                    for _ in range(rng.randint(3, 30))) for _ in range(4000)]
    mds = [escape_html(d) for d in docs[:3000]] + [  # and whole bundles: thinking, mark, footer
        reply_bundle(d, docs[i - 1], model=docs[i - 2][:20], stats={"finish_reason": docs[i - 3][:9]}, note=docs[i - 4],
                     status=("streaming", "done", "interrupted", "error")[i % 4])["text/markdown"]
        for i, d in enumerate(docs[3000:])]
    views, maths = [], []
    for md in mds:  # what JupyterLab does: lift math out, parse, put it back
        parts, found, last = [], [], 0
        for a, b in remove_math_reference(md):
            parts += [md[last:a], f"@@{len(found)}@@"]
            found.append(md[a:b].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
            last = b
        views.append("".join(parts) + md[last:])
        maths.append(found)
    out = subprocess.run(["node", str(runner), str(marked_chunk())], input=json.dumps(views),
                         capture_output=True, text=True, check=True, timeout=120)
    bad = []
    for doc, page, found in zip(mds, json.loads(out.stdout), maths):
        checker = LiveHTML()
        checker.feed(re.sub(r"@@(\d+)@@", lambda m: found[int(m[1])] if int(m[1]) < len(found) else m[0], page))
        bad += [(doc, checker.bad)] if checker.bad else []
    assert bad == [], bad[:3]


# --- long and adversarial input (timings: bench/escape.py) ------------------------------------

@pytest.mark.parametrize("make", [
    lambda n: "`<a>` " * (n // 6), lambda n: "$" * n + "<x>", lambda n: "`a\n" * (n // 3) + "$<b>",
    lambda n: ("`" * 50 + "$ x\n") * (n // 54) + "<x>", lambda n: "- a\n" * (n // 4) + "    ```\n<x>",
    lambda n: "~~~ a\n" * (n // 6) + "<x>", lambda n: "- " * (n // 2) + "```\n<x>", lambda n: "\\" * n + "`<x>`",
    lambda n: "](" * (n // 2) + "javascript:x)"])
def test_adversarial_inputs_finish_and_stay_inert(make):
    """Input built to provoke quadratic work: a regression shows as the test timeout."""
    text = make(200_000)
    assert len(escape_html(text)) >= len(text)  # nothing dropped (escaping only lengthens)


# --- bundles ------------------------------------------------------------------------------------
STATS = {"output_tokens": 52, "generation_seconds": 1.3, "input_tokens": 26, "load_seconds": 2.1,
         "prompt_seconds": 0.2, "total_seconds": 4.0, "finish_reason": "stop"}


def test_text_plain_is_the_reply_itself():
    b = reply_bundle("Hi <b>there</b>", model="m", status="streaming")
    assert b["text/plain"] == "Hi <b>there</b>" and b["text/markdown"] == "Hi &lt;b>there&lt;/b>"
    b = reply_bundle("Hi", "hmm", model="llama3.2:latest", stats=STATS, status="done")
    assert b["text/plain"].startswith("Hi\n\n[thinking]\nhmm\n[/thinking]")
    assert b["text/plain"].endswith("[llama3.2:latest · 52 tokens · 40.0 tok/s · load 2.1 s · prompt 26 tokens]")


def test_thinking_block_open_while_streaming_collapsed_when_done():
    live = reply_bundle("answer", "step <1> & `x`", model="m")["text/markdown"]
    assert live.startswith("<details open><summary>Thinking…</summary>") and live.endswith("answer")
    assert "step &lt;1&gt; &amp; `x`" in live
    done = reply_bundle("answer", "one two\n\nthree", model="m", status="done")["text/markdown"]
    assert done.startswith("<details><summary>Thinking (3 words)</summary>") and "one two<br><br>three" in done
    assert "\n" not in done.split("</details>")[0]  # one HTML block: nothing in it can open a fence


def test_streaming_thinking_shows_only_its_tail():
    thinking = "a" * 10_000 + "END"
    live = reply_bundle("", thinking, model="m")["text/markdown"]
    assert f"last {THINKING_TAIL:,} of {len(thinking):,} characters" in live and "END" in live
    assert len(live) < THINKING_TAIL + 300
    assert len(reply_bundle("", thinking, model="m", status="done")["text/markdown"]) > 10_000


@pytest.mark.parametrize("stats, expected", [
    (STATS, "52 tokens · 40.0 tok/s · load 2.1 s · prompt 26 tokens"),
    ({**STATS, "load_seconds": 0.05}, "52 tokens · 40.0 tok/s · prompt 26 tokens"),
    ({**STATS, "finish_reason": "length"}, "· stopped: length limit (max_tokens or the context size)"),
    ({**STATS, "finish_reason": "length", "length_limit": "max_tokens"},
     "· stopped: max_tokens reached (raise --max-tokens / max_tokens=)"),
    ({**STATS, "finish_reason": "length", "length_limit": "context"},
     "· stopped: the context size is full (raise --num-ctx / num_ctx=, or the server's; --new starts afresh)"),
    ({"finish_reason": "load"}, "model loaded, nothing generated"),
    ({"finish_reason": "unload"}, "model unloaded"),
    ({"output_tokens": 3, "generation_seconds": None, "input_tokens": None}, "3 tokens"),
    (None, ""), ({}, "")])
def test_stats_line(stats, expected):
    line = stats_line(stats)
    assert line.endswith(expected) if expected.startswith("·") else line == expected


def test_footer_and_show_stats():
    md = reply_bundle("x", model="qwen3:8b", stats={**STATS, "finish_reason": "length"}, status="done")["text/markdown"]
    assert md.endswith("<sub>qwen3:8b · 52 tokens · 40.0 tok/s · load 2.1 s · prompt 26 tokens · "
                       "stopped: length limit (max&#95;tokens or the context size)</sub>")
    assert "<sub>" not in reply_bundle("x", model="m", stats=STATS, status="done", show_stats=False)["text/markdown"]
    assert "<sub>" not in reply_bundle("x", model="m", stats=STATS)["text/markdown"]  # not while streaming


@pytest.mark.parametrize("status, mark", [("interrupted", "⏹ *interrupted — partial reply*"),
                                          ("stopped", "⏹ *stopped — partial reply*"), ("error", "⚠ *error*")])
def test_status_marks(status, mark):
    b = reply_bundle("partial", model="m", status=status)
    assert b["text/markdown"].startswith("partial\n\n" + mark) and status in b["text/plain"]


def test_error_note_is_escaped_and_replay_is_marked():
    md = reply_bundle("", model="m", status="error", note="<img src=x onerror=alert(1)> *boom* $x$")["text/markdown"]
    assert "<img" not in md and "*boom*" not in md and "$" not in md and md.endswith("&#42;boom&#42; &#36;x&#36;*")
    assert "<sub>m · replayed · 52 tokens" in reply_bundle("x", model="m", stats=STATS, status="replayed")["text/markdown"]
    with pytest.raises(ValueError, match="streaming, done"):
        reply_bundle("x", model="m", status="finished")


def test_a_reply_cut_inside_a_code_block_still_shows_its_footer():
    md = reply_bundle("```py\nx = 1 <", model="m", stats=STATS, status="interrupted")["text/markdown"]
    assert md.startswith("```py\nx = 1 <\n```\n\n⏹") and md.endswith("</sub>")


def test_waiting_bundle():  # elapsed seconds and a loading hint; the model name is escaped
    b = waiting_bundle("llama3.2:latest")
    assert b["text/plain"] == "⏳ waiting for llama3.2:latest…" and "**llama3.2:latest**" in b["text/markdown"]
    assert waiting_bundle("m", 1.2)["text/plain"].endswith("(1 s)")
    assert "loading the model" in waiting_bundle("m", 7.0)["text/markdown"]
    assert "<" not in waiting_bundle("<b>", 0)["text/markdown"]


def test_the_footer_names_the_server_that_wrote_the_reply():
    stats = {"output_tokens": 3, "server": "llama.cpp"}
    assert stats_line(stats) == "llama.cpp · 3 tokens"
    assert stats_line(stats, status="replayed") == "llama.cpp · replayed · 3 tokens"
    md = reply_bundle("Hi", model="smollm2", stats=stats, status="replayed")["text/markdown"]
    assert md.endswith("<sub>smollm2 · llama.cpp · replayed · 3 tokens</sub>")


def test_one_mark_and_footer_helper_for_replies_and_columns():
    from gleitzeit_nb.app.render import footer_text, status_mark

    assert status_mark("done") is None
    assert status_mark("error", "boom") == ("⚠", "error: boom")
    assert footer_text({"output_tokens": 3}, status="streaming") == ""
    assert footer_text(None, status="replayed") == "replayed"
    assert footer_text({"output_tokens": 3}, status="done", show_stats=False) == ""
    assert footer_text({"first_token_seconds": 0.5}, status="done", first_token=True) == \
        "first token 0.50 s"
