"""Ollama's ``/api/pull`` in the simulator: a registry of models to download, progress per layer
at a set speed, partial layers kept across pulls (a pull after an interrupt resumes, as
Ollama's does), realistic failures, and the pulled model installed (``/api/tags`` lists it).

    sim.registry.speed = 2e8                 # bytes per second: slow enough to interrupt
    sim.registry.fail_next("disk_full")      # or "no_network"
    sim.registry.offer("mymodel:7b", 4_000_000_000)
    sim.registry.downloaded("qwen3:0.6b")    # bytes held for its layers (partial included)
    sim.registry.history                     # one PullRecord per pull, with how it ended
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .models import DEFAULT_MODELS, ModelCatalog, infer_spec, normalize_name
from .wire import ClientGone, Wire

if TYPE_CHECKING:  # pragma: no cover
    from .handler import SimHandler

#: Models the registry offers besides the simulator's defaults: name -> bytes.
LIBRARY: dict[str, int] = {
    "qwen3:0.6b": 522_653_767, "smollm2:135m": 270_898_672, "tinyllama:latest": 637_700_138,
    "llama3.2:1b": 1_321_098_329, "gemma3:1b": 815_319_791, "phi3:mini": 2_176_178_913,
    "mistral:latest": 4_113_301_824, "all-minilm:latest": 45_960_996,
}
#: Ollama's words for a model the registry does not have.
UNKNOWN_MODEL = "pull model manifest: file does not exist"
#: What Ollama says when the registry cannot be reached, and when the disk fills up.
NO_NETWORK = ('pull model manifest: Get "https://registry.ollama.ai/v2/library/{repo}/manifests/'
              '{tag}": dial tcp: lookup registry.ollama.ai on 127.0.0.53:53: no such host')
DISK_FULL = ("write /usr/share/ollama/.ollama/models/blobs/sha256-{digest}-partial: no space left "
             "on device")
FAILURES = ("no_network", "disk_full")
#: The small layers every model has besides its weights: (kind, bytes).
_SMALL_LAYERS = (("template", 1_429), ("license", 7_711), ("params", 96))
_DEFAULT_SPEED = 4e9
_DEFAULT_TICK = 0.02


@dataclass(frozen=True)
class Layer:
    """One blob of a model: its sha256 hex ``digest`` and ``size`` in bytes."""

    digest: str
    size: int
    kind: str


@dataclass
class PullRecord:
    """One pull: the model, bytes the server already had when it started (``resumed``), and
    ``outcome``: "running", "success", "disconnected" or the error sent."""

    model: str
    resumed: int = 0
    outcome: str = "running"


def layers_of(name: str, size: int) -> list[Layer]:
    """The layers of ``name``: the weights, then template, license and parameters."""
    small = sum(n for _, n in _SMALL_LAYERS)
    parts = [("weights", max(size - small, 1)), *_SMALL_LAYERS]
    return [Layer(hashlib.sha256(f"{name}#{kind}".encode()).hexdigest(), n, kind)
            for kind, n in parts]


class PullRegistry:
    """What the simulator can pull and what it has downloaded so far (thread-safe).

    ``speed`` is bytes per second of wall time, ``tick`` the seconds between progress lines.
    Downloaded bytes are kept per layer across pulls until :meth:`reset`.
    """

    def __init__(self, catalog: ModelCatalog) -> None:
        self.catalog = catalog
        self.speed = _DEFAULT_SPEED
        self.tick = _DEFAULT_TICK
        self.history: list[PullRecord] = []
        self._lock = threading.Lock()
        self._offered = {**{s.name: s.size for s in DEFAULT_MODELS}, **LIBRARY}
        self._have: dict[str, int] = {}
        self._installed: list[str] = []
        self._failures: deque[tuple[str, float]] = deque()

    def offer(self, name: str, size: int) -> None:
        """Make ``name`` pullable, ``size`` bytes in all."""
        with self._lock:
            self._offered[normalize_name(name)] = int(size)

    def fail_next(self, kind: str, *, at: float = 0.5) -> None:
        """Make the next pull fail: "no_network" (at the manifest) or "disk_full" (when the
        weights are ``at`` downloaded; what came before is kept)."""
        if kind not in FAILURES:
            raise ValueError(f"unknown pull failure {kind!r}; expected one of {FAILURES}")
        with self._lock:
            self._failures.append((kind, at))

    def downloaded(self, name: str) -> int:
        """Bytes held for ``name``'s layers, partial ones included."""
        key = normalize_name(name)
        size = self._offered.get(key)
        if size is None:
            return 0
        with self._lock:
            return sum(self._have.get(layer.digest, 0) for layer in layers_of(key, size))

    def reset(self) -> None:
        """Forget downloads, failures and history; uninstall the models pulls installed."""
        with self._lock:
            for name in self._installed:
                self.catalog.remove(name)
            self._installed.clear()
            self._have.clear()
            self._failures.clear()
            self.history.clear()
        self.speed, self.tick = _DEFAULT_SPEED, _DEFAULT_TICK

    # -- serving -------------------------------------------------------------------------------
    def run(self, name: str, emit: Callable[[dict[str, Any]], None], wire: Wire,
            record: PullRecord) -> None:
        """Pull ``name``: ``emit`` each progress object (an ``{"error"}`` one ends it)."""
        emit({"status": "pulling manifest"})
        wire.wait(self.tick)
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        repo, _, tag = name.partition(":")
        if failure and failure[0] == "no_network":
            return self._fail(emit, record, NO_NETWORK.format(repo=repo, tag=tag))
        installed = self.catalog.get(name)
        size = self._offered.get(name) or (installed.size if installed else None)
        if size is None:
            return self._fail(emit, record, UNKNOWN_MODEL)
        layers = layers_of(name, size)
        with self._lock:
            if installed is not None:  # every blob is on disk
                self._have.update({layer.digest: layer.size for layer in layers})
            record.resumed = sum(self._have.get(layer.digest, 0) for layer in layers)
        for layer in layers:
            have = self._have.get(layer.digest, 0)
            emit(_progress(layer, have))
            while have < layer.size:
                wire.wait(self.tick)
                if failure and layer.kind == "weights" and have >= failure[1] * layer.size:
                    return self._fail(emit, record, DISK_FULL.format(digest=layer.digest))
                have = min(layer.size, have + max(1, int(self.speed * self.tick)))
                with self._lock:
                    self._have[layer.digest] = have
                emit(_progress(layer, have))
        for status in ("verifying sha256 digest", "writing manifest"):
            emit({"status": status})
            wire.wait(self.tick)
        if installed is None:
            spec = next((s for s in DEFAULT_MODELS if s.name == name), None) or infer_spec(name)
            with self._lock:
                self.catalog.add(replace(spec, size=size))
                self._installed.append(name)
        record.outcome = "success"
        emit({"status": "success"})

    def _fail(self, emit: Callable[[dict[str, Any]], None], record: PullRecord,
              message: str) -> None:
        record.outcome = message
        emit({"error": message})


def _progress(layer: Layer, completed: int) -> dict[str, Any]:
    """A layer's progress line; ``completed`` is left out while 0 (Go's omitempty)."""
    line: dict[str, Any] = {"status": f"pulling {layer.digest[:12]}",
                            "digest": f"sha256:{layer.digest}", "total": layer.size}
    if completed:
        line["completed"] = completed
    return line


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


def handle_pull(h: SimHandler, path: str, body: Any, faults: dict[str, Any]) -> None:
    """Serve one ``/api/pull``: streamed NDJSON, or one object with ``"stream": false``."""
    body = body if isinstance(body, dict) else {}
    raw = body.get("model") or body.get("name")
    if not isinstance(raw, str) or not raw.strip() or any(c in raw for c in " \t\n\"'\\"):
        h.send_json(400, {"error": "invalid model name"})
        return
    registry: PullRegistry = h.sim.registry
    record = PullRecord(normalize_name(raw))
    with registry._lock:
        registry.history.append(record)
    last: list[dict[str, Any]] = []
    streaming = body.get("stream") is not False

    def emit(obj: dict[str, Any]) -> None:
        if streaming:
            h.wire.send_chunk(_line(obj))
            h.lines_sent += 1
        else:
            last[:] = [obj]

    try:
        if streaming:
            h.start_stream()
        registry.run(record.model, emit, h.wire, record)
    except ClientGone:
        record.outcome = "disconnected"
        raise
    if streaming:
        h.wire.end_chunks()
    elif last and "error" in last[0]:
        h.send_json(500, last[0])
    else:
        h.send_json(200, {"status": "success"})
