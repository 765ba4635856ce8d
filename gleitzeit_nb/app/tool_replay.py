"""Replaying a tool conversation: what a round records beside the model's calls, and checking
that the tools, run again, still give what was recorded.

A round's recording holds each call's result, status and duration. On replay the calls come
from the recording and the tools **run again**; the approval given when recording stands (a
refused call stays refused, an approved one runs without asking, so a headless replay of a
conversation recorded with ``approve="always"`` works), and the duration shown is the recorded
one, so a replayed report is stable. A result that differs from the recorded one is reported:
the next round's request would not be the recorded one. In ``replay`` mode that is an error
naming the tool; in ``auto`` mode a warning, and the rest of the conversation goes live.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from ..core.errors import LLMError
from ..replay.errors import ReplayMissError, record_hint
from .tool_runs import ToolRun
from .warn import warn_user

__all__ = ["ToolResultChangedError", "recorded_result", "recorded_decision", "check_unchanged"]


class ToolResultChangedError(ReplayMissError):
    """Replay mode: a tool returned something else than when the conversation was recorded."""

    def __init__(self, run: ToolRun, *, model: str, prompt: str, store: Any) -> None:
        was = run.recorded_status
        why = (f"was {was} when recorded and is {run.status} now" if was and was != run.status
               else "returned a different result than when this conversation was recorded")
        LLMError.__init__(
            self,
            f"Replay: tool '{run.name}' ({run.arguments_text()}) {why} (recorded: "
            f"{_short(run.recorded)}; now: {_short(run.result)}), so the model's next answer "
            f"is not in the store {store}. The notebook's data or the function changed; to "
            f"record it again, {record_hint()}.")
        self.prompt, self.model, self.key, self.store = prompt, model, None, Path(store)


def recorded_result(run: ToolRun) -> dict[str, Any]:
    """What a round's recording keeps of one call."""
    out = {"id": run.id, "name": run.name, "result": run.result, "status": run.status}
    if run.seconds is not None:
        out["seconds"] = round(run.seconds, 3)
    return out


def recorded_decision(recorded: Mapping[str, Any]
                      ) -> Callable[[ToolRun], Awaitable[bool]] | None:
    """The approval of a replayed call: refused if it was refused when recorded, else None
    (it runs without asking: it was approved, or nobody was asked)."""
    if recorded.get("status") != "refused":
        return None

    async def as_recorded(run: ToolRun) -> bool:
        run.error = "refused when this conversation was recorded"
        return False

    return as_recorded


def check_unchanged(runs: list[ToolRun], replayer: Any, model: str, prompt: str) -> None:
    """Raise (replay mode) or warn (auto mode) when a re-run tool's result changed."""
    changed = [r for r in runs if r.recorded is not None and r.recorded != r.result]
    if not changed:
        return
    error = ToolResultChangedError(changed[0], model=model, prompt=prompt, store=replayer.path)
    if replayer.mode == "replay":
        raise error
    warn_user(error.message + " The rest of this conversation runs live.")


def _short(text: str | None, limit: int = 80) -> str:
    flat = " ".join(str(text or "").split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")
