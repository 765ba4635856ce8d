"""Tool-call approval buttons in a real kernel: clicks sent as a front-end sends them."""

from __future__ import annotations

import queue
import time
from typing import Any

import pytest

from .kernel import Kernel

SETUP = ("import asyncio, ipywidgets as w\n"
         "from gleitzeit_nb.app import bridge\n"
         "from gleitzeit_nb.notebook import comms\n"
         "from gleitzeit_nb.notebook.approval import ask_in_notebook, can_ask_in_notebook\n")
HOSTILE = {"q": "<b>x</b><script>alert(1)</script>", "n": 3}


class Frontend:
    """Drives the kernel like a notebook front-end: widget models from iopub, clicks on shell."""

    def __init__(self, kernel: Kernel) -> None:
        self.k = kernel
        self.models: dict[str, dict[str, Any]] = {}  # comm id -> current widget state
        self.log: list[tuple[str, str, str]] = []  # (parent msg id, msg type, state/text)
        self.replies: dict[str, dict[str, Any]] = {}

    def execute(self, code: str) -> str:
        return self.k.kc.execute(code)

    def read_until(self, done, timeout: float = 10.0) -> None:
        """Read iopub (recording widgets and the order of events) until ``done()`` holds."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout} s; saw {self.log[-12:]}")
            try:
                msg = self.k.kc.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                continue
            content, kind = msg["content"], msg["msg_type"]
            if kind == "comm_open":
                self.models[content["comm_id"]] = dict(content["data"].get("state", {}))
            elif kind == "comm_msg" and content["data"].get("method") == "update":
                self.models.setdefault(content["comm_id"], {}).update(content["data"]["state"])
            detail = content.get("execution_state") or content.get("text") or content.get("ename", "")
            self.log.append((msg["parent_header"].get("msg_id", ""), kind, detail))

    def idle(self, msg_id: str) -> bool:
        return (msg_id, "status", "idle") in self.log

    def finish(self, msg_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until ``msg_id`` went idle and return its execute_reply content."""
        self.read_until(lambda: self.idle(msg_id), timeout)
        while msg_id not in self.replies:
            reply = self.k.kc.get_shell_msg(timeout=timeout)
            self.replies[reply["parent_header"]["msg_id"]] = reply["content"]
        return self.replies[msg_id]

    def stdout(self, msg_id: str) -> str:
        return "".join(t for p, kind, t in self.log if p == msg_id and kind == "stream")

    def buttons(self, description: str) -> list[str]:
        return [c for c, s in self.models.items()
                if s.get("_model_name") == "ButtonModel" and s.get("description") == description]

    def wait_for_button(self, description: str, count: int = 1) -> str:
        """The comm id of the newest ``description`` button once ``count`` of them exist."""
        self.read_until(lambda: len(self.buttons(description)) >= count)
        return self.buttons(description)[-1]

    def click(self, comm_id: str, subshell_id: str | None = None) -> None:
        """What ipywidgets 8 sends on a click (JupyterLab >= 4.4 addresses it to a subshell)."""
        msg = self.k.kc.session.msg("comm_msg", {
            "comm_id": comm_id, "data": {"method": "custom", "content": {"event": "click"}}})
        if subshell_id is not None:
            msg["header"]["subshell_id"] = subshell_id
        self.k.kc.shell_channel.send(msg)

    def statuses(self) -> list[str]:
        return [s["value"] for s in self.models.values()
                if s.get("_model_name") == "HTMLModel" and "font-size:90%" in s.get("value", "")]

    def order(self, *msg_ids: str) -> list[tuple[str, str]]:
        """(which cell, busy/idle) in the order iopub reported them, for ``msg_ids``."""
        names = {m: f"cell{i + 1}" for i, m in enumerate(msg_ids)}
        return [(names[p], state) for p, kind, state in self.log if kind == "status" and p in names]


@pytest.fixture(scope="module")
def kernel():
    k = Kernel()
    ex = k.run(SETUP)
    assert ex.status == "ok", ex.error
    yield k
    k.shutdown()


@pytest.fixture
def fe(kernel):
    return Frontend(kernel)


def ask_cell(answer_var: str = "r", *, how: str = "bridge", args: dict | None = None) -> str:
    call = f"ask_in_notebook('search', {args or HOSTILE!r}, call_id='call-1')"
    run = f"bridge.run({call})" if how == "bridge" else f"await {call}"
    return f"{answer_var} = {run}\nprint('ANSWER', {answer_var})"


@pytest.mark.parametrize("button,answer", [("Approve", True), ("Refuse", False)])
def test_click_in_a_running_cell_decides(fe, button, answer):
    """A synchronous cell (as in a magic: bridge.run on the kernel's loop via nest-asyncio)."""
    cell = fe.execute(ask_cell())
    target = fe.wait_for_button(button)
    time.sleep(0.2)  # the cell is now waiting
    assert not fe.idle(cell)
    fe.click(target)
    reply = fe.finish(cell)
    assert reply["status"] == "ok", reply
    assert f"ANSWER {answer}" in fe.stdout(cell)
    state = fe.models[target]
    assert state["disabled"] is True
    assert any(("✓ approved" if answer else "✗ refused") in v for v in fe.statuses())


def test_model_html_in_arguments_is_shown_escaped(fe):
    cell = fe.execute(ask_cell())
    fe.click(fe.wait_for_button("Approve"))
    assert fe.finish(cell)["status"] == "ok"
    values = [s.get("value", "") for s in fe.models.values() if s.get("_model_name") == "HTMLModel"]
    shown = "\n".join(values)
    assert "&lt;b&gt;x&lt;/b&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    assert "<script>" not in shown and "<b>x" not in shown
    assert "<code>search</code>" in shown and "call-1" in shown


def test_cells_queued_while_waiting_run_after_it_in_order(fe):
    first = fe.execute(ask_cell())
    approve = fe.wait_for_button("Approve")
    second = fe.execute("print('second')")
    third = fe.execute("import time; time.sleep(0.2); print('third')")
    time.sleep(0.5)  # both requests have reached the kernel: they must wait
    assert fe.order(first, second, third) == [("cell1", "busy")]
    fe.click(approve)
    for cell in (first, second, third):
        assert fe.finish(cell)["status"] == "ok"
    assert fe.order(first, second, third) == [
        ("cell1", "busy"), ("cell1", "idle"), ("cell2", "busy"), ("cell2", "idle"),
        ("cell3", "busy"), ("cell3", "idle")]
    assert "ANSWER True" in fe.stdout(first) and fe.stdout(second) == "second\n"
    assert fe.k.value("comms._active is None")  # the kernel's own handling is back


def test_cell_that_awaits_and_a_click_addressed_to_a_subshell(fe):
    """A cell with top-level await; the click comes the way JupyterLab >= 4.4 sends it."""
    kc = fe.k.kc
    kc.control_channel.send(kc.session.msg("create_subshell_request", {}))
    created = kc.control_channel.get_msg(timeout=10)["content"]
    assert created["status"] == "ok", created
    cell = fe.execute(ask_cell(how="await"))
    refuse = fe.wait_for_button("Refuse")
    time.sleep(0.2)
    fe.click(refuse, subshell_id=created["subshell_id"])
    assert fe.finish(cell)["status"] == "ok"
    assert "ANSWER False" in fe.stdout(cell)


def test_double_click_the_first_decision_counts(fe):
    cell = fe.execute(ask_cell())
    approve = fe.wait_for_button("Approve")
    refuse = fe.wait_for_button("Refuse")
    fe.click(approve)
    fe.click(refuse)
    assert fe.finish(cell)["status"] == "ok"
    assert "ANSWER True" in fe.stdout(cell)


@pytest.mark.parametrize("how,error", [("bridge", "KeyboardInterrupt"),
                                       ("await", "CancelledError")])  # (ipykernel's choice)
def test_interrupt_while_waiting(fe, how, error):
    cell = fe.execute(ask_cell(how=how))
    fe.wait_for_button("Approve")
    time.sleep(0.3)
    started = time.monotonic()
    fe.k.interrupt()
    reply = fe.finish(cell, timeout=5)
    assert time.monotonic() - started < 3.0
    assert reply["status"] == "error" and reply["ename"] == error
    assert any("⏹ interrupted" in v for v in fe.statuses())
    assert fe.k.value("comms._active is None")
    # the kernel goes on: the next cells run, and the next question can be answered
    assert fe.k.run("print('after')").stdout == "after\n"
    again = fe.execute(ask_cell())
    fe.click(fe.wait_for_button("Approve", count=2))
    assert fe.finish(again)["status"] == "ok" and "ANSWER True" in fe.stdout(again)


def test_background_task_gets_the_click(fe):
    """As ChatPanel runs a request: a task that goes on after its cell has finished."""
    start = fe.execute(
        "panel = w.VBox(); display(panel)\n"
        "def into_panel(box): panel.children = panel.children + (box,)\n"
        "t = asyncio.ensure_future(ask_in_notebook('delete', {'path': '/tmp/x'}, show=into_panel))")
    assert fe.finish(start)["status"] == "ok"
    fe.click(fe.wait_for_button("Approve"))  # the kernel is idle now
    done = fe.execute("print('ANSWER', await asyncio.wait_for(t, 5))")
    assert fe.finish(done)["status"] == "ok" and "ANSWER True" in fe.stdout(done)
    assert fe.k.value("comms._active is None")


def test_background_wait_while_another_cell_drives_the_loop(fe):
    """A panel's question is pending when a magic-like cell runs: the click still gets through."""
    start = fe.execute("t = asyncio.ensure_future(ask_in_notebook('delete', {'path': '/x'}))")
    assert fe.finish(start)["status"] == "ok"
    refuse = fe.wait_for_button("Refuse")
    busy = fe.execute("bridge.run(asyncio.sleep(1.5))\nprint('DONE', t.done(), t.done() and t.result())")
    fe.read_until(lambda: (busy, "status", "busy") in fe.log)
    time.sleep(0.3)
    fe.click(refuse)
    assert fe.finish(busy)["status"] == "ok"
    assert "DONE True False" in fe.stdout(busy)  # decided during the cell, not after it


def test_cancelled_background_wait_says_interrupted(fe):
    start = fe.execute("t = asyncio.ensure_future(ask_in_notebook('delete', {'path': '/x'}))")
    assert fe.finish(start)["status"] == "ok"
    fe.wait_for_button("Approve")
    stop = fe.execute("t.cancel()\nawait asyncio.sleep(0.05)\nprint('CANCELLED', t.cancelled())")
    assert fe.finish(stop)["status"] == "ok" and "CANCELLED True" in fe.stdout(stop)
    assert any("⏹ interrupted" in v for v in fe.statuses())
    assert fe.k.value("comms._active is None")


def test_can_ask_only_where_someone_watches(kernel):
    assert kernel.value("can_ask_in_notebook()") is False  # a headless kernel: final mode
    ex = kernel.run("import os\nos.environ['GLEITZEIT_DISPLAY'] = 'live'\n"
                    "print(can_ask_in_notebook())\ndel os.environ['GLEITZEIT_DISPLAY']")
    assert ex.stdout == "True\n"


async def test_outside_a_kernel_it_says_so():
    from gleitzeit_nb.notebook.approval import ask_in_notebook, can_ask_in_notebook

    assert can_ask_in_notebook() is False
    with pytest.raises(RuntimeError, match="Jupyter kernel"):
        await ask_in_notebook("f", {})
