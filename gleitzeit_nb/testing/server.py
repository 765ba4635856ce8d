"""``OllamaSimulator``: an Ollama- and OpenAI-compatible HTTP server in a background thread."""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
import time
from collections import deque
from http.server import ThreadingHTTPServer
from typing import Any, Iterable

from .faults import Fault, FaultBook
from .handler import SimHandler
from .models import ModelCatalog, ModelSpec
from .pull import PullRegistry
from .records import Disconnect, RecordedRequest
from .replies import ScriptedReply
from .scheduling import GenerationGate, ModelResidency
from .tools import ToolScript, ollama_call

logger = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: OllamaSimulator) -> None:
        self.sim = sim
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, SimHandler)

    def server_bind(self) -> None:
        # Skip HTTPServer.server_bind's getfqdn(), which can block on DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def track(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.discard(conn)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("error while serving %s", client_address, exc_info=True)


class OllamaSimulator:
    """A local, deterministic stand-in for an Ollama server that also speaks the
    OpenAI API (``/v1/models``, ``/v1/chat/completions``, ``/v1/embeddings``) and
    llama.cpp's ``/health`` and ``/props``, on the same port.

    ``api_key`` makes those routes (not ``/health``, not Ollama's ``/api``) require
    ``Authorization: Bearer <api_key>``. ``token_delay``, ``parallel``, ``load_delay``
    and ``api_key`` may be changed while running."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 models: Iterable[str | ModelSpec] | None = None,
                 token_delay: float = 0.0, parallel: int | None = None,
                 load_delay: float = 0.0, api_key: str | None = None) -> None:
        self.host = host
        self.port = port
        self.api_key = api_key
        self.catalog = ModelCatalog(models)
        #: What ``/api/pull`` downloads, how fast, and what it has (see :mod:`.pull`).
        self.registry = PullRegistry(self.catalog)
        self.faults = FaultBook()
        self.token_delay = token_delay
        self.load_delay = load_delay
        self.residency = ModelResidency()
        self.gate = GenerationGate(parallel)
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._requests: list[RecordedRequest] = []
        self._disconnects: list[Disconnect] = []
        self._scripts: deque[ScriptedReply] = deque()
        self._tool_rules: dict[str | None, ToolScript] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------
    def start(self) -> OllamaSimulator:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            raise RuntimeError("simulator already started")
        self.stopping.clear()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"ollama-sim-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        self.stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def __enter__(self) -> OllamaSimulator:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._server is not None

    # -- runtime knobs ----------------------------------------------------
    @property
    def parallel(self) -> int | None:
        """Max simultaneous generations (None: unlimited); extra requests queue FIFO."""
        return self.gate.limit

    @parallel.setter
    def parallel(self, value: int | None) -> None:
        self.gate.limit = value

    @property
    def active(self) -> int:
        """Generations in progress right now."""
        return self.gate.active

    @property
    def max_active(self) -> int:
        """Highest ``active`` seen since start / ``reset()``."""
        return self.gate.max_active

    # -- recordings -------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Requests received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def disconnects(self) -> list[Disconnect]:
        """Responses the client abandoned before completion (a copy)."""
        with self._lock:
            return list(self._disconnects)

    def wait_for_disconnects(self, n: int = 1, timeout: float = 2.0) -> bool:
        """Block until at least ``n`` disconnects were recorded; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._disconnects) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    def _record_request(self, method: str, path: str, body: dict[str, Any] | None,
                        authorization: str | None = None) -> None:
        with self._changed:
            self._requests.append(RecordedRequest(method, path, body, time.monotonic(),
                                                  authorization))
            self._changed.notify_all()

    def _record_disconnect(self, path: str, chunks_sent: int) -> None:
        with self._changed:
            self._disconnects.append(Disconnect(path, time.monotonic(), chunks_sent))
            self._changed.notify_all()

    # -- scripting --------------------------------------------------------
    def inject(self, kind: str, *, count: int = 1, path: str | None = None, **kw: Any) -> Fault:
        """Apply fault ``kind`` to the next ``count`` matching requests.

        ``path=None`` matches /api/chat, /api/generate and /v1/chat/completions;
        see ``FAULT_KINDS``. On /v1 an ``http_error`` has OpenAI's error shape, a
        ``mid_stream_error`` is an SSE ``data: {"error": ...}`` event, a
        ``malformed_line`` a cut-off ``data:`` line; ``after`` counts deltas."""
        return self.faults.inject(kind, count=count, path=path, **kw)

    def clear_faults(self) -> None:
        """Drop all pending faults."""
        self.faults.clear()

    def reply_with(self, text: str, *, count: int = 1, thinking: str | None = None,
                   tool_calls: Iterable[dict[str, Any]] | None = None) -> None:
        """Use ``text`` (and ``thinking``/``tool_calls``) for the next ``count`` generations.

        A tool call is ``{"name": ..., "arguments": {...}}`` or Ollama's
        ``{"function": {...}}`` form; tool calls are sent on /api/chat and /v1 chat
        (whether or not the request has ``tools``). ``script_tools`` is the rule-based way."""
        calls = tuple(ollama_call(c) for c in (tool_calls or ()))
        script = ScriptedReply(text, thinking, calls)
        with self._lock:
            self._scripts.extend([script] * count)

    def script_tools(self, calls: Iterable[dict[str, Any]], *, then: str | None = None,
                     model: str | None = None, text: str = "", rounds: int = 1) -> ToolScript:
        """Make ``model`` (None: every model with the "tools" capability) call tools.

        While set, a chat request that carries ``tools`` and whose last message is not
        a ``tool`` result is answered with ``calls`` (``{"name", "arguments": {...}}``;
        several are parallel calls), after ``text``; once ``rounds`` rounds of results
        are back, with ``then`` (``{results}`` in it is replaced) or, by default,
        ``Based on NAME: <first 60 chars of the result>`` per result. A rule for a
        model wins over the ``model=None`` rule; replaces an earlier rule for ``model``.
        Without a rule, ``[[call:NAME {json args}]]`` in the last user message calls NAME."""
        rule = ToolScript.build(calls, then=then, model=model, text=text, rounds=rounds)
        with self._lock:
            self._tool_rules[rule.model] = rule
        return rule

    def clear_tool_scripts(self) -> None:
        """Drop every ``script_tools`` rule."""
        with self._lock:
            self._tool_rules.clear()

    def tool_rule(self, model: str) -> ToolScript | None:
        """The ``script_tools`` rule that applies to ``model`` (internal)."""
        with self._lock:
            return self._tool_rules.get(model) or self._tool_rules.get(None)

    def take_script(self) -> ScriptedReply | None:
        """Pop the next scripted reply (internal)."""
        with self._lock:
            return self._scripts.popleft() if self._scripts else None

    def reset(self) -> None:
        """Forget recordings, faults, scripted replies and tool rules, loaded models,
        max_active and pulls (downloads, and the models they installed)."""
        with self._lock:
            self._requests.clear()
            self._disconnects.clear()
            self._scripts.clear()
            self._tool_rules.clear()
        self.faults.clear()
        self.residency.clear()
        self.gate.reset_max()
        self.registry.reset()

    def __repr__(self) -> str:
        state = self.url if self.running else "stopped"
        return f"<OllamaSimulator {state} models={len(self.catalog)}>"
