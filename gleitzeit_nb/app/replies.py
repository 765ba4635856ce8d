"""``Reply``: a model's answer as a string that also carries its thinking, stats and status."""

from __future__ import annotations

from typing import Any

from ..core.backend import Usage


class Reply(str):
    """The reply text (it *is* a ``str``), with ``thinking``, ``stats``, ``model``, ``status``.

    ``stats`` is the reply's usage as a dict (``output_tokens``, ``input_tokens``,
    ``finish_reason``, timings in seconds); ``usage`` is the same as a ``Usage``.

    ``status`` is "done", "replayed", "interrupted", "stopped" or "error"; ``value`` holds the parsed object
    for JSON / schema replies. In a notebook it renders as escaped Markdown.
    """

    thinking: str
    stats: dict[str, Any]
    model: str
    status: str
    value: Any

    def __new__(cls, text: str, *, thinking: str = "", stats: dict[str, Any] | None = None,
                model: str = "", status: str = "done", value: Any = None) -> "Reply":
        self = super().__new__(cls, text)
        self.thinking = thinking
        self.stats = dict(stats or {})
        self.model = model
        self.status = status
        self.value = value
        return self

    @property
    def usage(self) -> Usage:
        """Tokens, finish reason and timings, as the backend reported them."""
        return Usage.from_dict(self.stats)

    @property
    def text(self) -> str:
        return str.__str__(self)

    def _repr_markdown_(self) -> str:
        from .render import reply_bundle

        return reply_bundle(self.text, self.thinking, model=self.model, stats=self.stats,
                            status=self.status)["text/markdown"]

    def __repr__(self) -> str:
        return f"Reply({self.text!r}, model={self.model!r}, status={self.status!r})"
