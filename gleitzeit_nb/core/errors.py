"""One error hierarchy for every layer: what failed, where, and how to fix it.

The same classes are raised on the streaming and non-streaming paths. ``LLMError`` derives from
``RuntimeError`` so code written against the design guide (``except RuntimeError``) keeps working;
parameter and image errors are also ``ValueError``s.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

__all__ = ["LLMError", "InvalidParamsError", "ImageError", "ProviderUnavailableError",
           "ModelNotFoundError", "ProviderTimeoutError", "ProviderResponseError",
           "CapabilityError", "StreamError", "StructuredOutputError", "ContextLengthError",
           "PullError", "RETRYABLE_STATUS", "CAPABILITY_VERBS"]


class LLMError(RuntimeError):
    """Base class of every gleitzeit_nb error.

    ``retryable`` says whether repeating the same request may succeed (connection refused, 503…).
    """

    retryable: bool = False

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.url = url


class InvalidParamsError(LLMError, ValueError):
    """A request's parameters do not match the protocol; raised before any network call."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class ImageError(LLMError, ValueError):
    """An image input cannot be read or is not an image; raised before any network call."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(message)
        self.source = source


class ProviderUnavailableError(LLMError):
    """The server could not be reached (refused, reset, DNS, proxy)."""

    retryable = True


class ModelNotFoundError(LLMError):
    """The server answered that it has no such model; ``installed`` lists what it has;
    ``pullable``: the server can download it (``pull``)."""

    def __init__(
        self, model: str, *, url: str | None = None, installed: Sequence[str] = (),
        install_hint: str = "", job: str = "", pullable: bool = False,
    ) -> None:
        self.model = model
        self.pullable = pullable
        self.installed = closest_first(model, installed)
        shown = ", ".join(self.installed[:8]) + (" …" if len(self.installed) > 8 else "")
        where = f" on {url}" if url else ""
        if job:  # no model was named, and none on the server can do the job
            fix = f" Get one with {install_hint}." if install_hint else ""
            others = f" (it has: {shown})" if shown else " (it lists no models)"
            super().__init__(f"No {job} model is available{where}{others}.{fix}", url=url)
            return
        if install_hint and shown:
            hint = f"{install_hint}, or pick an installed model: {shown}"
        elif install_hint:
            hint = f"{install_hint} (no models are installed on this server yet)"
        elif shown:
            hint = f"Use a model this server has: {shown}"
        else:
            hint = "This server lists no models"
        super().__init__(f"Model '{model}' is not available{where}. {hint}.", url=url)


class ProviderTimeoutError(LLMError):
    """A timeout ran out: ``phase`` is 'connect', 'first_byte', 'chunk', 'write' or 'pool'."""

    def __init__(self, message: str, *, phase: str, url: str | None = None,
                 partial: str = "") -> None:
        super().__init__(message, url=url)
        self.phase = phase
        self.partial = partial


class ProviderResponseError(LLMError):
    """The server answered with an HTTP error status; carries the server's own error text."""

    def __init__(self, message: str, *, status_code: int, server_error: str = "",
                 url: str | None = None) -> None:
        super().__init__(message, url=url)
        self.status_code = status_code
        self.server_error = server_error
        self.retryable = status_code in RETRYABLE_STATUS


#: What a capability lets a model do, as messages say it ("'x' cannot make embeddings").
CAPABILITY_VERBS = {"completion": "chat", "embedding": "make embeddings", "vision": "read images",
                    "thinking": "think", "tools": "call tools"}


class CapabilityError(ProviderResponseError):
    """The model (or the server) cannot do what was asked: embeddings from a chat model, an
    image for a text-only model… ``capability`` names what is missing ("embedding", "vision",
    "completion", "thinking", "tools"); ``candidates`` are the models on the server that can
    (best effort: empty when the server does not say)."""

    def __init__(self, where: str, *, model: str | None, capability: str,
                 candidates: Sequence[str] = (), hint: str = "", status_code: int,
                 server_error: str = "", url: str | None = None) -> None:
        self.model = model
        self.capability = capability
        self.candidates = [c for c in candidates if c != model]
        who = f"'{model}'" if model else "This server"
        shown = ", ".join(self.candidates[:8]) + (" …" if len(self.candidates) > 8 else "")
        fix = f"; models on this server that can: {shown}" if shown else f": {hint}" if hint else ""
        what = f"{who} cannot {CAPABILITY_VERBS.get(capability, 'do ' + capability)}"
        super().__init__(f"{where} {what}{fix}.",
                         status_code=status_code, server_error=server_error, url=url)


class ContextLengthError(LLMError, ValueError):
    """A prompt does not fit the model's context size: refused before sending (``estimated``:
    ``tokens`` is our estimate) or by the server (``tokens`` counted by it).

    ``limit`` is the context size and ``reserved`` the part of it kept for the reply (tokens).
    """

    def __init__(self, message: str, *, tokens: int, limit: int, reserved: int = 0,
                 estimated: bool = True, url: str | None = None) -> None:
        super().__init__(message, url=url)
        self.tokens = tokens
        self.limit = limit
        self.reserved = reserved
        self.estimated = estimated


class StreamError(LLMError):
    """A response stream broke after it started; ``partial`` holds the text received so far."""

    def __init__(self, message: str, *, partial: str = "", partial_thinking: str = "",
                 url: str | None = None) -> None:
        super().__init__(message, url=url)
        self.partial = partial
        self.partial_thinking = partial_thinking


class StructuredOutputError(LLMError):
    """A reply asked for as JSON / a schema does not parse or validate; ``text`` is the reply."""

    def __init__(self, message: str, *, text: str = "", truncated: bool = False) -> None:
        super().__init__(message)
        self.text = text
        self.truncated = truncated


class PullError(LLMError):
    """Downloading a model failed, or this server cannot download models. ``reason``:
    "unknown_model", "disk_full", "no_network", "unsupported", "invalid_name", "broken" or
    "failed"; ``server_error`` is the server's own words."""

    def __init__(self, message: str, *, model: str, reason: str = "failed",
                 server_error: str = "", url: str | None = None) -> None:
        super().__init__(message, url=url)
        self.model = model
        self.reason = reason
        self.server_error = server_error
        self.retryable = reason in ("no_network", "broken")


RETRYABLE_STATUS = frozenset({429, 502, 503, 504})


def closest_first(name: str, candidates: Iterable[str]) -> list[str]:
    """Order ``candidates`` by similarity to ``name`` (best match first)."""
    base = name.split(":")[0].lower()
    return sorted(
        candidates,
        key=lambda c: -difflib.SequenceMatcher(None, base, c.split(":")[0].lower()).ratio(),
    )
