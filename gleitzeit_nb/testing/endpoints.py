"""The non-generating endpoints: version, tags, show, ps and embeddings.

Each takes the simulator and the parsed body and returns (status, JSON)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .embeddings import embed_text, truncate_dimensions
from .scheduling import parse_keep_alive

if TYPE_CHECKING:  # pragma: no cover
    from .handler import SimHandler

#: Version reported by ``GET /api/version``.
OLLAMA_VERSION = "0.12.0"
#: Fixed load_duration (ns) reported in every response with stats.
LOAD_DURATION_NS = 15_000_000

Reply = tuple[int, Any]


#: Ollama's answer (HTTP 500) when a model without the "embedding" capability is asked to embed.
NO_EMBEDDINGS = "this model does not support embeddings"


def not_found_message(name: Any) -> str:
    """Ollama's wording for an unknown model on generate/chat/embed."""
    return f'model "{name}" not found, try pulling it first'


def find_model(h: SimHandler, body: dict[str, Any]) -> tuple[Any, Reply | None]:
    """The requested model's spec, or the (status, error) reply for a missing/unknown one."""
    name = body.get("model")
    if not name:
        return None, (400, {"error": "model is required"})
    spec = h.sim.catalog.get(name)
    if spec is None:
        return None, (404, {"error": not_found_message(name)})
    return spec, None


def version(h: SimHandler, body: Any) -> Reply:
    return 200, {"version": OLLAMA_VERSION}


def tags(h: SimHandler, body: Any) -> Reply:
    return 200, {"models": [spec.tag_entry() for spec in h.sim.catalog]}


def show(h: SimHandler, body: dict[str, Any]) -> Reply:
    name = body.get("model") or body.get("name")
    if not name:
        return 400, {"error": "model is required"}
    spec = h.sim.catalog.get(name)
    if spec is None:
        return 404, {"error": f"model '{name}' not found"}
    return 200, spec.show_payload()


def ps(h: SimHandler, body: Any) -> Reply:
    models = []
    for name, expires in h.sim.residency.loaded():
        spec = h.sim.catalog.get(name)
        if spec is not None:
            models.append(spec.ps_entry(expires))
    return 200, {"models": models}


def use_model(h: SimHandler, name: str, keep_alive: float | None) -> None:
    """Load the model (honouring load_delay) and apply keep_alive."""
    residency = h.sim.residency
    if keep_alive != 0 and not residency.is_loaded(name):
        h.wire.wait(h.sim.load_delay)
    residency.acquire(name)
    residency.release(name, keep_alive)


def _stats(prompt_tokens: int) -> dict[str, int]:
    return {
        "total_duration": LOAD_DURATION_NS + prompt_tokens * 100_000 + 1_000_000,
        "load_duration": LOAD_DURATION_NS,
        "prompt_eval_count": prompt_tokens,
    }


def embed(h: SimHandler, body: dict[str, Any]) -> Reply:
    spec, error = find_model(h, body)
    if error:
        return error
    if not spec.has("embedding"):  # as Ollama's runner answers for a chat-only model
        return 500, {"error": NO_EMBEDDINGS}
    name = body["model"]
    raw = body.get("input")
    if raw is None:
        texts: list[str] = []
    elif isinstance(raw, str):
        texts = [raw]
    elif isinstance(raw, list) and all(isinstance(t, str) for t in raw):
        texts = list(raw)
    else:
        return 400, {"error": "invalid input type"}
    dims = body.get("dimensions")
    if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int)
                             or not 0 < dims <= spec.embedding_length):
        return 400, {"error": f"invalid dimensions: must be between 1 and {spec.embedding_length}"}
    try:
        keep_alive = parse_keep_alive(body.get("keep_alive"))
    except ValueError as exc:
        return 400, {"error": str(exc)}
    counts = [max(1, len(t.split())) for t in texts]
    if body.get("truncate") is False and any(c > spec.context_length for c in counts):
        return 400, {"error": "input exceeds maximum context length"}
    use_model(h, spec.name, keep_alive)
    vectors = [embed_text(t, spec.embedding_length) for t in texts]
    if dims:
        vectors = [truncate_dimensions(v, dims) for v in vectors]
    return 200, {"model": name, "embeddings": vectors, **_stats(sum(counts))}


def embeddings(h: SimHandler, body: dict[str, Any]) -> Reply:
    """Legacy ``/api/embeddings`` (``prompt`` in, ``embedding`` out)."""
    spec, error = find_model(h, body)
    if error:
        return error
    if not spec.has("embedding"):
        return 500, {"error": NO_EMBEDDINGS}
    prompt = body.get("prompt") or ""
    if not isinstance(prompt, str):
        return 400, {"error": "invalid prompt type"}
    try:
        keep_alive = parse_keep_alive(body.get("keep_alive"))
    except ValueError as exc:
        return 400, {"error": str(exc)}
    use_model(h, spec.name, keep_alive)
    return 200, {"embedding": embed_text(prompt, spec.embedding_length) if prompt else []}
