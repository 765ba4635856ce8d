"""``Reply``: a model's answer as a string that also carries its thinking, stats and status."""

from __future__ import annotations

from typing import Any

from ..core.backend import Usage


class Reply(str):
    """The reply text (it *is* a ``str``), with ``thinking``, ``stats``, ``model``, ``status``.

    ``stats`` is the reply's usage as a dict (``output_tokens``, ``input_tokens``,
    ``finish_reason``, timings in seconds); ``usage`` is the same as a ``Usage``.

    ``status`` is "done", "replayed", "interrupted", "stopped" or "error"; ``value`` holds the parsed object
    for JSON / schema replies; ``tool_calls`` the calls made on the way to this answer
    (:class:`~gleitzeit_nb.app.tool_runs.ToolRun`: name, arguments, result, value, error,
    seconds). In a notebook it renders as escaped Markdown.
    """

    thinking: str
    stats: dict[str, Any]
    model: str
    status: str
    value: Any
    tool_calls: list[Any]

    def __new__(cls, text: str, *, thinking: str = "", stats: dict[str, Any] | None = None,
                model: str = "", status: str = "done", value: Any = None,
                tool_calls: list[Any] | None = None) -> "Reply":
        self = super().__new__(cls, text)
        self.thinking = thinking
        self.stats = dict(stats or {})
        self.model = model
        self.status = status
        self.value = value
        self.tool_calls = list(tool_calls or [])
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
                            status=self.status, tools=[(0, r) for r in self.tool_calls]
                            )["text/markdown"]

    def __repr__(self) -> str:
        return f"Reply({self.text!r}, model={self.model!r}, status={self.status!r})"
