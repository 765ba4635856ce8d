"""``Secret``: an API key that never shows itself in a repr, a traceback's locals or a log."""

from __future__ import annotations


class Secret:
    """A string that never shows itself: ``repr``/``str`` give ``'***'``; :meth:`reveal` does."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def as_secret(value: "str | Secret | None") -> Secret | None:
    """``value`` wrapped (an empty key is no key)."""
    if isinstance(value, Secret):
        return value
    return Secret(value) if value else None
