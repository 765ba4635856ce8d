"""{Err}, {In[n]}, {Out[n]}, %llm_fix and %%llm --code/--format in a real kernel against the
simulator: the prompts are checked where they arrive (``sim.requests``), the next-cell code in
the execute reply's payload."""

from __future__ import annotations

import re
import sysconfig

import pytest

from gleitzeit_nb.magics.reply_format import CODE_PUT, NO_CODE

from .kernel import magics_kernel, start_kernel
from .sim_data import chat_bodies as chats

SHARED_SIM = True


@pytest.fixture(scope="module")
def kernel(shared_sim):
    yield from magics_kernel(shared_sim)


@pytest.fixture(autouse=True)
def fresh(kernel):
    kernel.run("%llm_reset\n%config LLMMagics.model = 'llama3.2:latest'\n"
               "%config LLMMagics.host = ''\n%config LLMMagics.replay = 'off'")


def prompt(sim) -> str:
    return chats(sim)[-1]["messages"][-1]["content"]


def count(ex) -> int:
    return ex.reply["content"]["execution_count"]


def next_cell(ex) -> list[dict]:
    return [p for p in ex.reply["content"]["payload"] if p["source"] == "set_next_input"]


def test_err_in_and_out_arrive_in_the_prompt(kernel, sim):
    kernel.run("def ratio(a, b):\n    return a / b")
    bad = kernel.run("ratio(1, 0)")
    assert bad.error["ename"] == "ZeroDivisionError"
    shown = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(bad.error["traceback"]))  # IPython's, as ever
    assert len(bad.error["traceback"]) > 2 and "ratio(1, 0)" in shown and "a / b" in shown
    calc = kernel.run("21 * 2")
    later = kernel.run("undefined_name")
    n, m, k = count(bad), count(calc), count(later)
    ex = kernel.run(f"%%llm\nLast: {{Err}}\nEarlier: {{Err[{n}]}}\nCode: {{In[{m}]}} = {{Out[{m}]}}")
    assert ex.status == "ok", ex.error
    assert prompt(sim) == (
        "Last: Traceback (most recent call last; trimmed):\n"
        f"  Cell In[{k}], line 1, in <module>\n    undefined_name\n"
        "NameError: name 'undefined_name' is not defined\n"
        "Earlier: Traceback (most recent call last; trimmed):\n"
        f"  Cell In[{n}], line 1, in <module>\n    ratio(1, 0)\n"
        f"  Cell In[{n - 1}], line 2, in ratio\n    return a / b\n"
        "ZeroDivisionError: division by zero\n"
        "Code: 21 * 2 = 42")


def test_err_traceback_is_trimmed_and_machine_independent(kernel, sim):
    bad = kernel.run("import json\njson.loads('{bad')")
    kernel.run("%%llm\n{Err}")
    sent = prompt(sim)
    assert sent.startswith(f"Traceback (most recent call last; trimmed):\n  Cell In[{count(bad)}]")
    assert '  File "json/__init__.py", in loads\n' in sent  # relative, no line number
    assert "JSONDecodeError: Expecting property name" in sent
    for machine in ("interactiveshell", "ipykernel", "/tmp", sysconfig.get_paths()["stdlib"]):
        assert machine not in sent

    kernel.run("def down(n):\n    return down(n - 1) if n else 1 / 0")
    kernel.run("down(200)")
    kernel.run("%%llm\n{Err}")
    sent = prompt(sim)
    assert sent.count("in down\n") <= 8 and "more frames" in sent and len(sent) < 1500
    assert sent.endswith("ZeroDivisionError: division by zero")

    syntax = kernel.run("x = (1,")
    assert syntax.error["ename"] == "SyntaxError"
    kernel.run("%%llm\n{Err}")
    sent = prompt(sim)
    assert sent.startswith(f"Cell In[{count(syntax)}], line 1\n    x = (1,\n")  # (stripped)
    assert "SyntaxError" in sent and "compilerop" not in sent and "Traceback" not in sent


def test_err_messages_a_user_variable_and_our_own_errors(kernel, sim):
    kernel.run("1 / 0")
    missing = kernel.run("%%llm\nWhy {Err[9999]}?")
    assert missing.status == "error" and "Cell [9999] raised no error (cells that failed:" \
        in missing.error["evalue"]
    kernel.run("Err = 'my own Err'")
    kernel.run("%%llm\n{Err}")
    assert prompt(sim) == "my own Err"
    kernel.run("del Err")
    ours = kernel.run("%%llm -m llama9:70b\nhi")  # our error: one line, not kept as {Err}
    assert ours.error["ename"] == "ModelNotFoundError" and len(ours.error["traceback"]) <= 3
    unnumbered = kernel.collect(kernel.kc.execute("not_kept", store_history=False))
    assert unnumbered.error["ename"] == "NameError"  # a cell without In[n]: not kept
    usage = kernel.run("%llm_fix 9999")
    assert usage.status == "error" and "Cell [9999] raised no error (cells that failed:" \
        in usage.stderr and "%llm_fix alone take the last" in usage.stderr
    kernel.run("%%llm\n{Err}")
    assert prompt(sim).endswith("ZeroDivisionError: division by zero")


def test_err_in_option_values(kernel, sim):
    kernel.run("1 / 0")
    ex = kernel.run('%%llm --system "Known failure: {Err}"\nWhy?')
    assert ex.status == "ok", ex.error
    system = chats(sim)[-1]["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("Known failure: Traceback")
    assert system["content"].endswith("ZeroDivisionError: division by zero")
    ex = kernel.run('%llm_fix --system "Last: {Err}"')
    assert ex.status == "ok", ex.error
    assert chats(sim)[-1]["messages"][0]["content"].endswith("ZeroDivisionError: division by zero")


def test_nothing_to_fix_is_said_clearly(sim):
    k = start_kernel(sim.url, "%load_ext gleitzeit_nb")
    try:
        fix = k.run("%llm_fix")
        assert fix.status == "error"
        said = "No error to fix: no cell has raised an error since %load_ext gleitzeit_nb"
        assert said in fix.stderr
        err = k.run("%%llm\nExplain {Err}")
        assert err.error["ename"] == "InvalidParamsError"
        assert said in err.error["evalue"]
        assert len(err.error["traceback"]) <= 3
        assert chats(sim) == []
    finally:
        k.shutdown()


SETUP = ("import pandas as pd\n"
         "df = pd.DataFrame({'city': ['Lisbon', 'Porto'] * 5000, 'sales': range(10_000)})\n"
         "def total(frame):\n    return frame['sale'].sum()")
FAILING = "t = total(df)\nprint(t)"


def test_llm_fix_sends_code_error_and_variable_summaries(kernel, sim):
    kernel.run(SETUP)
    bad = kernel.run(FAILING)
    assert bad.error["ename"] == "KeyError"
    kernel.run("other_error")
    ex = kernel.run(f"%llm_fix {count(bad)}")
    assert ex.status == "ok", ex.error
    sent = prompt(sim)
    assert f"The cell (In[{count(bad)}]):\n```python\n{FAILING}\n```" in sent
    assert "    return frame['sale'].sum()\n" in sent and "KeyError: 'sale'" in sent
    assert "- df: pandas DataFrame, 10,000 rows × 2 columns; columns (dtype): city (" in sent
    assert "sales (int64)" in sent and "- total: function total(frame)" in sent
    assert "Lisbon" not in sent and "print:" not in sent and len(sent) < 2500  # never rows
    assert "fenced ```python code block" in sent
    assert ex.text("text/markdown") and next_cell(ex) == []  # shown; no --code: no next cell
    kernel.run("%llm_fix")
    assert "NameError: name 'other_error' is not defined" in prompt(sim)  # the last failure


def test_llm_fix_says_which_cell_and_whether_it_ran_fine_since(kernel, sim):
    bad = kernel.run("value = missing_name + 1")
    ex = kernel.run("%llm_fix")
    said = ex.text().splitlines()[0]
    assert said == (f"Fixing the error of cell [{count(bad)}]: NameError: name 'missing_name' "
                    "is not defined")
    kernel.run("missing_name = 1")
    again = kernel.run("value = missing_name + 1")
    assert again.status == "ok"
    ex = kernel.run(f"%llm_fix {count(bad)}")
    assert ex.text().splitlines()[0] == said + (" (its code has run without an error since, in "
                                                f"cell [{count(again)}])")
    kernel.run("del missing_name")


CORRECTED = "t = total(df.rename(columns={'sales': 'sale'}))\nprint(t)"
FIX_REPLY = ("The column is called `sales`.\n\n```python\n" + CORRECTED + "\n```\n\n"
             "<img src=x onerror=alert(1)> Run it again.")


def test_llm_fix_code_puts_the_code_block_into_the_next_cell(kernel, sim):
    kernel.run(SETUP)
    kernel.run(FAILING)
    sim.reply_with(FIX_REPLY)
    ex = kernel.run("%llm_fix --code -o fix")
    assert ex.status == "ok", ex.error
    assert next_cell(ex) == [{"source": "set_next_input", "text": CORRECTED, "replace": False}]
    md = ex.text("text/markdown")
    assert "The column is called" in md and CODE_PUT in md
    assert "<img" not in md and "&lt;img src=x" in md  # model HTML stays escaped
    assert kernel.value("['t' in globals(), str(fix).startswith('The column')]") == [False, True]


def test_llm_fix_code_takes_the_last_block_and_says_so(kernel, sim):
    kernel.run(SETUP)
    kernel.run(FAILING)
    sim.reply_with("This line fails:\n```python\nt = total(df)\n```\nCorrected:\n```python\n"
                   + CORRECTED + "\n```")
    ex = kernel.run("%llm_fix --code")
    assert next_cell(ex) == [{"source": "set_next_input", "text": CORRECTED, "replace": False}]
    assert f"{CODE_PUT}: the last of 2 Python code blocks" in ex.text()
    sim.reply_with("Run this:\n> ```sh\n> pip install pandas\n> ```")
    ex = kernel.run("%%llm --code\nInstall?")
    assert [p["text"] for p in next_cell(ex)] == ["%%bash\npip install pandas"]
    assert "the reply's code block is sh: put in as %%bash" in ex.text()


def test_llm_code_and_the_formats(kernel, sim):
    sim.reply_with("Two ways:\n```bash\npip install x\n```\n1. Or\n   ```python\n   print('hi')\n"
                   "   print('<b>')\n   ```\n")
    ex = kernel.run("%%llm --code\nPrint hi")
    assert ex.status == "ok", ex.error
    assert [p["text"] for p in next_cell(ex)] == ["print('hi')\nprint('<b>')"]
    assert "Two ways" in ex.text("text/markdown") and CODE_PUT in ex.text()
    sim.reply_with("No code here.")
    ex = kernel.run("%%llm --format code\nPrint hi")
    assert next_cell(ex) == [] and NO_CODE in ex.text()

    sim.reply_with("Hi <b>bold</b> **not Markdown**\n<script>alert(1)</script>")
    ex = kernel.run("%%llm --format text\nhi")
    bundles = [m["content"]["data"] for m in ex.of_type("display_data", "update_display_data")]
    assert bundles and all(list(b) == ["text/plain"] for b in bundles)
    assert ex.text().startswith("Hi <b>bold</b> **not Markdown**\n<script>alert(1)</script>")

    ex = kernel.run("%%llm --format json -o data\nGive JSON")
    assert ex.status == "ok" and chats(sim)[-1]["format"] == "json"
    assert kernel.value("type(data).__name__") in ("dict", "list")
    before = len(chats(sim))
    both = kernel.run("%%llm --code --json\nhi")
    assert both.status == "error" and "Choose one reply format" in both.stderr
    assert len(chats(sim)) == before


def _fix_in_new_kernel(sim, store, mode: str, host: str = "") -> tuple[object, object]:
    k = start_kernel(sim.url, "%load_ext gleitzeit_nb")
    try:
        k.run(f"%config LLMMagics.store = '{store}'\n%config LLMMagics.replay = '{mode}'\n"
              f"%config LLMMagics.model = 'llama3.2:latest'\n%config LLMMagics.host = '{host}'")
        k.run(SETUP)
        k.run(FAILING)
        ex = k.run("%llm_fix --code -o fix")
        return ex, k.value("[str(fix), fix.status]")
    finally:
        k.shutdown()


def test_llm_fix_replays_in_another_kernel(sim, tmp_path, dead_url):
    """The prompt does not depend on the kernel (its temporary cell files) or the machine."""
    store = tmp_path / "store"
    sim.reply_with(FIX_REPLY)
    live, (text, status) = _fix_in_new_kernel(sim, store, "record")
    assert live.status == "ok" and status == "done" and len(list(store.glob("*.json"))) == 1
    before = len(chats(sim))
    again, (text_again, status_again) = _fix_in_new_kernel(sim, store, "replay", dead_url)
    assert again.status == "ok", again.error
    assert len(chats(sim)) == before  # offline
    assert (text_again, status_again) == (text, "replayed")
    assert next_cell(again) == [{"source": "set_next_input", "text": CORRECTED,
                                 "replace": False}]
