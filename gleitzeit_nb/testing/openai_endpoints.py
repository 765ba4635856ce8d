"""The OpenAI-compatible routes (``/v1/models``, ``/v1/chat/completions``,
``/v1/embeddings``), llama.cpp's ``/health`` and ``/props``, and the API-key check."""

from __future__ import annotations

import base64
import hmac
import struct
from typing import TYPE_CHECKING, Any

from .embeddings import embed_text, truncate_dimensions
from .endpoints import Reply, use_model
from .faults import Fault
from .generation import RequestError, generate
from .models import RUNTIME_CONTEXT
from .openai_api import MODELS_CREATED, ChunkFraming, error_body, find_model, parse_chat
from .scheduling import DEFAULT_KEEP_ALIVE

if TYPE_CHECKING:  # pragma: no cover
    from .handler import SimHandler

#: Paths that need no API key (llama.cpp serves its health check without one).
KEYLESS_PATHS = ("/health",)


def is_openai_path(path: str) -> bool:
    """Whether ``path`` belongs to the OpenAI-compatible family (OpenAI-shaped errors)."""
    return path == "/v1" or path.startswith("/v1/") or path in ("/health", "/props")


def key_refused(api_key: str | None, path: str, authorization: str | None) -> bool:
    """True when ``api_key`` is set and ``authorization`` is not ``Bearer <api_key>``."""
    if not api_key or path in KEYLESS_PATHS:
        return False
    scheme, _, token = (authorization or "").strip().partition(" ")
    return scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                                 api_key.encode())


def _failed(exc: RequestError) -> Reply:
    return exc.status, error_body(exc.message, exc.status, exc.code)


def models(h: SimHandler, body: Any) -> Reply:
    data = [{"id": spec.name, "object": "model", "created": MODELS_CREATED, "owned_by": "simulator"}
            for spec in h.sim.catalog]
    return 200, {"object": "list", "data": data}


def health(h: SimHandler, body: Any) -> Reply:
    return 200, {"status": "ok"}


def props(h: SimHandler, body: Any) -> Reply:
    """llama.cpp's server properties; ``total_slots`` only when ``parallel`` is set."""
    out: dict[str, Any] = {"build_info": "gleitzeit-simulator",
                           "default_generation_settings": {"n_ctx": RUNTIME_CONTEXT}}
    if h.sim.parallel and h.sim.parallel > 0:
        out["total_slots"] = h.sim.parallel
    return 200, out


def _texts(raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(t, str) for t in raw):
        return list(raw)
    raise RequestError(400, "'input' must be a string or a non-empty array of strings")


def _encode(vector: list[float], encoding: str) -> Any:
    if encoding == "base64":  # little-endian float32, as OpenAI sends it
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector


def embeddings(h: SimHandler, body: dict[str, Any]) -> Reply:
    """``/v1/embeddings``: the simulator's deterministic vectors, ``dimensions`` and
    ``encoding_format`` ("float" or "base64"); chat-only models are refused."""
    try:
        spec = find_model(h.sim, body, "embedding", "embeddings")
        texts = _texts(body.get("input"))
        dims = body.get("dimensions")
        if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int)
                                 or not 0 < dims <= spec.embedding_length):
            raise RequestError(400, f"dimensions must be between 1 and {spec.embedding_length}")
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            raise RequestError(400, "encoding_format must be 'float' or 'base64'")
    except RequestError as exc:
        return _failed(exc)
    use_model(h, spec.name, DEFAULT_KEEP_ALIVE)
    data = []
    for i, text in enumerate(texts):
        vector = embed_text(text, spec.embedding_length)
        if dims:
            vector = truncate_dimensions(vector, dims)
        data.append({"object": "embedding", "index": i, "embedding": _encode(vector, encoding)})
    tokens = sum(max(1, len(t.split())) for t in texts)
    return 200, {"object": "list", "data": data, "model": body["model"],
                 "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def chat_completions(h: SimHandler, path: str, body: dict[str, Any],
                     faults: dict[str, Fault]) -> None:
    """Serve one ``/v1/chat/completions`` request (SSE when ``stream: true``)."""
    try:
        req, include_usage = parse_chat(h.sim, body)
    except RequestError as exc:
        h.send_json(*_failed(exc))
        return
    generate(h, req, ChunkFraming(req, include_usage), faults)


ROUTES = {
    ("GET", "/v1/models"): models,
    ("POST", "/v1/embeddings"): embeddings,
    ("GET", "/health"): health,
    ("GET", "/props"): props,
}
