"""Errors of the record/replay store, in the ``LLMError`` hierarchy."""

from __future__ import annotations

import os
from pathlib import Path

from ..core.errors import LLMError

__all__ = ["ReplayMissError", "ReplayStoreError", "prompt_start"]

RECORD_HINT = ("run once with a live model and %config LLMMagics.replay = 'record' "
               "(or GLEITZEIT_REPLAY=record)")


class ReplayMissError(LLMError):
    """Replay mode found no recording for a call; names the prompt, model, store and the fix."""

    def __init__(self, *, prompt: str, model: str, store: str | os.PathLike[str],
                 key: str | None = None) -> None:
        self.prompt = prompt
        self.model = model
        self.store = Path(store)
        self.key = key
        where = f"store {self.store}"
        if not self.store.exists():
            old = self.store.with_name(self.store.name + ".sqlite")
            where += (f", which does not exist; {old.name} beside it is an SQLite store of an "
                      f"older gleitzeit_nb: convert it with python -m gleitzeit_nb.replay "
                      f"migrate {old}" if old.is_file() else ", which does not exist")
        super().__init__(
            f"No recording of this call in replay mode: model '{model}', prompt "
            f"'{prompt_start(prompt)}' ({where}). The prompt, an earlier turn, an image or a "
            f"keyed option (temperature, seed, max_tokens, format, …) differs from what was "
            f"recorded, or it was never recorded. To record it, {record_hint()}.")


def record_hint() -> str:
    """How to record: GLEITZEIT_REPLAY wins over %config, so name what works where it is set."""
    if os.environ.get("GLEITZEIT_REPLAY", "").strip():
        return ("run with a live model and GLEITZEIT_REPLAY=record (it is set to "
                f"{os.environ['GLEITZEIT_REPLAY'].strip()!r} here, which wins over %config; "
                "for the notebooks of a report: ./run report --live)")
    return RECORD_HINT


class ReplayStoreError(LLMError):
    """The store cannot be used (a file where its folder should be, a recording that is not
    valid JSON, a folder that cannot be written when recording)."""

    def __init__(self, message: str, *, path: str | os.PathLike[str]) -> None:
        super().__init__(message)
        self.path = Path(path)


def prompt_start(text: str, limit: int = 60) -> str:
    """The first ``limit`` characters of ``text`` on one line, with … when cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
