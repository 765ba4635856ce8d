"""A real ipykernel driven over jupyter_client, with the iopub messages of each execution."""

from __future__ import annotations

import json
import os
import queue
import time
from dataclasses import dataclass, field
from collections.abc import Iterator
from typing import Any

from jupyter_client import KernelManager


@dataclass
class Execution:
    """What one execute request produced on iopub, in order, plus the shell reply."""

    msgs: list[dict[str, Any]] = field(default_factory=list)
    reply: dict[str, Any] = field(default_factory=dict)

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [m for m in self.msgs if m["msg_type"] in types]

    @property
    def status(self) -> str:
        return self.reply.get("content", {}).get("status", "")

    @property
    def stdout(self) -> str:
        return "".join(m["content"]["text"] for m in self.of_type("stream")
                       if m["content"]["name"] == "stdout")

    @property
    def stderr(self) -> str:
        return "".join(m["content"]["text"] for m in self.of_type("stream")
                       if m["content"]["name"] == "stderr")

    def final_outputs(self) -> dict[str, dict[str, Any]]:
        """display_id (or a running index) -> its last data bundle, updates applied."""
        out: dict[str, dict[str, Any]] = {}
        for i, m in enumerate(self.of_type("display_data", "update_display_data", "execute_result")):
            did = m["content"].get("transient", {}).get("display_id") or f"#{i}"
            out[did] = m["content"]["data"]
        return out

    def text(self, mime: str = "text/plain") -> str:
        """All final outputs of one MIME type, joined."""
        return "\n".join(d.get(mime, "") for d in self.final_outputs().values())

    @property
    def error(self) -> dict[str, Any] | None:
        errs = self.of_type("error")
        return errs[0]["content"] if errs else None


class Kernel:
    """Start with ``Kernel(env)``; ``run(code)`` executes and waits for the kernel to go idle."""

    def __init__(self, env: dict[str, str] | None = None, cwd: str | None = None) -> None:
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env={**os.environ, **(env or {})}, cwd=cwd)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code: str, timeout: float = 60, on_msg=None) -> Execution:
        msg_id = self.kc.execute(code, store_history=True)
        return self.collect(msg_id, timeout, on_msg)

    def collect(self, msg_id: str, timeout: float = 60, on_msg=None) -> Execution:
        ex = Execution()
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"kernel did not go idle in {timeout} s; got {ex.msgs}")
            try:
                msg = self.kc.get_iopub_msg(timeout=min(remaining, 1))
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "execute_input":
                continue
            if msg["msg_type"] == "status":
                if msg["content"]["execution_state"] == "idle":
                    break
                continue
            ex.msgs.append(msg)
            if on_msg is not None:
                on_msg(msg, ex)
        # The reply to this request: under load, wait_for_ready may have sent several
        # kernel_info requests, whose extra replies would otherwise pass for this one.
        while True:
            reply = self.kc.get_shell_msg(timeout=10)
            if reply["parent_header"].get("msg_id") == msg_id:
                ex.reply = reply
                return ex

    def value(self, expr: str) -> Any:
        """Evaluate ``expr`` in the kernel and return it, passed through JSON."""
        ex = self.run(f"import json as _json; print(_json.dumps({expr}))")
        assert ex.status == "ok", ex.error
        return json.loads(ex.stdout)

    def interrupt(self) -> None:
        self.km.interrupt_kernel()

    def shutdown(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def start_kernel(sim_url: str, setup: str = "", *, cwd: str | None = None,
                 **env: str) -> Kernel:
    """A kernel whose OLLAMA_HOST is the simulator, with ``setup`` run (and checked) first."""
    k = Kernel({"OLLAMA_HOST": sim_url, **env}, cwd=cwd)
    if setup:
        ex = k.run(setup)
        assert ex.status == "ok", ex.error
    return k


def magics_kernel(shared_sim: Any) -> Iterator[Kernel]:
    """A module's kernel with the magics loaded, live display, OLLAMA_HOST at ``shared_sim``
    (use as the body of a module-scoped ``kernel`` fixture: ``yield from magics_kernel(…)``)."""
    k = start_kernel(shared_sim.url, "%load_ext gleitzeit_nb", GLEITZEIT_DISPLAY="live")
    yield k
    k.shutdown()
