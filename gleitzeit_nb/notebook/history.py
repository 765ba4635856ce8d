"""``%llm_history``: a session's conversation, rendered as escaped Markdown."""

from __future__ import annotations

from typing import Any

from ..app.markdown import escape_html
from ..app.sessions import ChatSession


class HistoryView:
    """Displays as Markdown in a notebook and as plain text elsewhere."""

    def __init__(self, session: ChatSession) -> None:
        self.session = session

    def _turns(self) -> list[tuple[str, str, bool]]:
        return [(m["role"], m["content"], bool(m.get("interrupted"))) for m in self.session.messages]

    def _repr_markdown_(self) -> str:
        if not self.session.messages:
            return f"*Session '{escape_html(self.session.name)}' is empty.*"
        out = [f"**Session '{escape_html(self.session.name)}'** — {len(self.session)} messages"]
        for role, content, interrupted in self._turns():
            mark = " *(interrupted)*" if interrupted else ""
            out.append(f"---\n**{role}**{mark}\n\n{escape_html(content)}")
        return "\n\n".join(out)

    def __repr__(self) -> str:
        lines = [f"Session '{self.session.name}': {len(self.session)} messages"]
        for role, content, interrupted in self._turns():
            lines.append(f"[{role}{' (interrupted)' if interrupted else ''}] {content}")
        return "\n".join(lines)


def history_view(session: ChatSession) -> Any:
    return HistoryView(session)
