"""The HTTP request handler: body parsing, recording, the API-key check,
fault pre-emption (``http_error``, ``stall_before``), routing to the Ollama
and OpenAI-compatible endpoints, and response helpers."""

from __future__ import annotations

import contextlib
import json
import logging
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlsplit

from . import endpoints, openai_endpoints
from .ollama_api import NDJSON, handle_generation
from .openai_api import INVALID_KEY, error_body
from .openai_endpoints import chat_completions, is_openai_path, key_refused
from .pull import handle_pull
from .wire import ClientGone, ServerStopping, Wire

if TYPE_CHECKING:  # pragma: no cover
    from .server import OllamaSimulator

logger = logging.getLogger(__name__)

_JSON = "application/json; charset=utf-8"

_ROUTES: dict[tuple[str, str], Callable[..., Any]] = {
    ("GET", "/api/version"): endpoints.version,
    ("GET", "/api/tags"): endpoints.tags,
    ("POST", "/api/show"): endpoints.show,
    ("GET", "/api/ps"): endpoints.ps,
    ("POST", "/api/embed"): endpoints.embed,
    ("POST", "/api/embeddings"): endpoints.embeddings,
    **openai_endpoints.ROUTES,
}
_GENERATION: dict[str, Callable[..., None]] = {
    "/api/chat": handle_generation,
    "/api/generate": handle_generation,
    "/v1/chat/completions": chat_completions,
    "/api/pull": handle_pull,  # streamed like a generation
}
_GO_TYPES = {"chat": "api.ChatRequest", "generate": "api.GenerateRequest",
             "embed": "api.EmbedRequest", "show": "api.ShowRequest"}


class BadBody(Exception):
    """The request body is not a JSON object; message mimics Go's decoder."""


def _json_error(raw: bytes, path: str) -> str:
    text = raw.decode("utf-8", "replace")
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            return "unexpected EOF"
        return f"invalid character {text[exc.pos]!r} looking for beginning of value"
    kind = path.rsplit("/", 1)[-1]
    return f"json: cannot unmarshal value into Go value of type {_GO_TYPES.get(kind, 'object')}"


class SimHandler(BaseHTTPRequestHandler):
    """Serves one connection (keep-alive) for an ``OllamaSimulator``."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "OllamaSimulator"

    wire: Wire
    lines_sent: int = 0
    headers_sent: bool = False
    openai: bool = False  # the current request is on an OpenAI-compatible path

    def version_string(self) -> str:
        return self.server_version

    @property
    def sim(self) -> OllamaSimulator:
        return self.server.sim  # type: ignore[attr-defined]

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)  # type: ignore[attr-defined]
        self.wire = Wire(self.connection, self.sim.stopping)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.untrack(self.connection)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        logger.debug("%s " + format, self.address_string(), *args)

    # -- response helpers -------------------------------------------------
    def send_bytes(self, status: int, data: bytes, content_type: str = _JSON) -> None:
        """A complete response with Content-Length."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wire.send(data)

    def send_json(self, status: int, obj: Any) -> None:
        """A JSON response (Ollama's compact encoding)."""
        data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
        self.send_bytes(status, data)

    def send_failure(self, status: int, message: str) -> None:
        """An error in the path's family shape: Ollama's or OpenAI's."""
        self.send_json(status, error_body(message, status) if self.openai else {"error": message})

    def start_stream(self, content_type: str = NDJSON) -> None:
        """Headers of a chunked streamed response."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def end_headers(self) -> None:
        # Route header bytes through the Wire so a gone client raises ClientGone.
        self._headers_buffer.append(b"\r\n")  # type: ignore[attr-defined]
        data = b"".join(self._headers_buffer)  # type: ignore[attr-defined]
        self._headers_buffer = []  # type: ignore[attr-defined]
        self.headers_sent = True
        self.wire.send(data)

    # -- request handling -------------------------------------------------
    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        path = urlsplit(self.path).path
        if len(path) > 1:
            path = path.rstrip("/")
        self.lines_sent = 0
        self.headers_sent = False
        self.openai = is_openai_path(path)
        try:
            raw = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        body: Any = None
        body_error = ""
        if raw.strip():
            try:
                body = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                body_error = _json_error(raw, path)
            else:
                if not isinstance(body, dict):
                    body_error, body = _json_error(raw, path), None
        elif self.command == "POST":
            body_error = "missing request body"
        authorization = self.headers.get("Authorization")
        self.sim._record_request(self.command, path, body, authorization)
        try:
            if self.openai and key_refused(self.sim.api_key, path, authorization):
                self.send_json(401, INVALID_KEY)  # before faults: a refused request uses none
                return
            faults = self.sim.faults.take(path)
            if "http_error" in faults:
                fault = faults["http_error"]
                self.send_failure(int(fault.status), str(fault.message))
                return
            if "stall_before" in faults:
                self.wire.wait(float(faults["stall_before"].seconds))
            self._route(path, body, body_error, faults)
        except ClientGone:
            self.sim._record_disconnect(path, self.lines_sent)
            self.close_connection = True
        except ServerStopping:
            self.close_connection = True
        except Exception as exc:  # a simulator bug: answer 500 rather than hang up
            logger.exception("simulator failed on %s %s", self.command, path)
            self.close_connection = True
            if self.headers_sent:
                self.wire.abort()
            else:
                with contextlib.suppress(ClientGone, ServerStopping, OSError):
                    self.send_failure(500, f"simulator error: {exc!r}")

    def _route(self, path: str, body: Any, body_error: str, faults: dict[str, Any]) -> None:
        method = "GET" if self.command == "HEAD" else self.command
        if path == "/" and method == "GET":
            self.send_bytes(200, b"Ollama is running", "text/plain; charset=utf-8")
            return
        is_generation = method == "POST" and path in _GENERATION
        handler = _ROUTES.get((method, path))
        if handler is None and not is_generation:
            self.send_failure(404, f"Invalid URL ({self.command} {path})" if self.openai
                              else f"404 page not found: {self.command} {path}")
            return
        if method == "POST" and body_error:
            self.send_failure(400, body_error)
            return
        if is_generation:
            _GENERATION[path](self, path, body, faults)
            return
        status, payload = handler(self, body if isinstance(body, dict) else {})
        self.send_json(status, payload)

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch
