"""A conversation out to ``.md``, ``.html`` or ``.json``, and back in from ``.json``.

Every turn shows its model and usage footer; thinking is collapsed, images are thumbnails,
tool calls are the same collapsed blocks as in the notebook, interrupted turns are marked.
Model text goes through the same escaping as the notebook's (``reply_bundle``); the HTML page
is self-contained (inline style, images as data: URLs) and its Markdown is rendered and
sanitised as the report's is (:mod:`.safe_html`). The JSON keeps the messages whole (images
included), so a loaded session continues where it stopped.
"""

from __future__ import annotations

import base64
import html
import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..core.errors import InvalidParamsError
from .markdown import escape_html
from .render import reply_bundle
from .tool_render import tool_block
from .transcript import results_after, run_of_call

__all__ = ["export_session", "load_session", "FORMAT", "THUMBNAIL_EDGE"]

FORMAT = "gleitzeit_nb.session"
VERSION = 1
THUMBNAIL_EDGE = 160
_STYLE = ("body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;"
          "line-height:1.5}.turn{border-top:1px solid #ddd;padding:.5rem 0}.who{font-weight:600;"
          "color:#555}img.thumb{max-width:160px;margin:.25rem;border:1px solid #ccc}"
          "pre{background:#f6f6f6;padding:.5rem;overflow:auto}")


def export_session(session: Any, path: Path) -> Path:
    """Write ``session`` to ``path``; the suffix picks the format."""
    kind = path.suffix.lower()
    if kind == ".json":
        text = json.dumps({"format": FORMAT, "version": VERSION, "name": session.name,
                           "exported": _now(), "messages": session.messages},
                          ensure_ascii=False, indent=1)
    elif kind in (".md", ".markdown"):
        text = _markdown(session)
    elif kind in (".html", ".htm"):
        text = _html(session)
    else:
        raise InvalidParamsError(f"Cannot export to '{path.name}': use a path ending in .md, "
                                 ".html or .json.", param="path")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def load_session(path: Path, *, name: str | None = None) -> Any:
    """The session in a ``.json`` export (``name`` renames it), each message checked."""
    from .sessions import ChatSession

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidParamsError(f"No session file at {path}.", param="path") from None
    except ValueError as exc:
        raise InvalidParamsError(f"{path} is not a session export (not JSON: {exc}).",
                                 param="path") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InvalidParamsError(f"{path} is not a gleitzeit_nb session export (export one "
                                 "with %llm_export SESSION file.json).", param="path")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= VERSION:
        raise InvalidParamsError(f"{path} is a version {version!r} session export; this "
                                 f"gleitzeit_nb reads version {VERSION} (update gleitzeit_nb, "
                                 "or export the session again).", param="path")
    messages = doc.get("messages")
    if not isinstance(messages, list):
        raise InvalidParamsError(f"{path}: 'messages' is not a list; export the session again.",
                                 param="path")
    for i, msg in enumerate(messages):
        if problem := _damage(msg):
            raise InvalidParamsError(f"{path}: message {i} is damaged ({problem}); fix it in the "
                                     "file, or export the session again.", param="path")
    return ChatSession(name or str(doc.get("name") or path.stem), list(messages))


_ROLES = ("system", "user", "assistant", "tool")
#: The type each optional message key must have when present.
_KEY_TYPES: dict[str, tuple[type, ...]] = {
    "images": (list,), "tool_calls": (list,), "stats": (dict,), "thinking": (str,),
    "model": (str,), "system": (str,), "status": (str,), "interrupted": (bool,),
    "tool_name": (str,), "tool_call_id": (str,)}


def _damage(msg: Any) -> str:
    """What is wrong with one loaded message ("" when nothing)."""
    if not isinstance(msg, dict):
        return f"a {type(msg).__name__}, not an object"
    if msg.get("role") not in _ROLES:
        return f"role {msg.get('role')!r}: use one of {', '.join(_ROLES)}"
    if not isinstance(msg.get("content"), str):
        return f"content must be text, not {type(msg.get('content')).__name__}"
    for key, types in _KEY_TYPES.items():
        if key in msg and not isinstance(msg[key], types):
            return f"{key} must be a {types[0].__name__}, not {type(msg[key]).__name__}"
    if not all(isinstance(img, str) for img in msg.get("images") or ()):
        return "images must be base64 text"
    return ""


def _turns(session: Any) -> list[tuple[str, str, list[str]]]:
    """``(who, markdown, thumbnails)`` per message, tool results folded into their call."""
    out, system = [], None
    for i, msg in enumerate(session.messages):
        role, content = msg.get("role"), str(msg.get("content") or "")
        if role == "user" and msg.get("system") and msg["system"] != system:
            system = msg["system"]  # (shown where it starts or changes)
            out.append(("System", escape_html(str(system)), []))
        if role == "user":
            out.append(("You", escape_html(content), [_thumbnail(i) for i in msg.get("images") or []]))
        elif role == "assistant" and msg.get("tool_calls"):
            blocks = [escape_html(content) + "\n\n"] if content.strip() else []
            results = results_after(session.messages, i)
            for call in msg["tool_calls"]:
                run = run_of_call(call, results)
                blocks.append(tool_block(run)[0])
            out.append((f"{_turn_model(session.messages, i)} (tool calls)", "".join(blocks), []))
        elif role == "assistant":
            status = "interrupted" if msg.get("interrupted") else msg.get("status") or "done"
            status = status if status in ("done", "replayed", "interrupted", "stopped") else "done"
            md = reply_bundle(content, msg.get("thinking") or "", model=msg.get("model") or "model",
                              stats=msg.get("stats"), status=status)["text/markdown"]
            out.append((msg.get("model") or "model", md, []))
        elif role == "system":
            out.append(("System", escape_html(content), []))
    return out


def _turn_model(messages: list[dict[str, Any]], i: int) -> str:
    """The model of the turn ``messages[i]`` belongs to: its final assistant message has it."""
    for msg in messages[i:]:
        if msg.get("role") == "user":
            break
        if msg.get("model"):
            return str(msg["model"])
    return "model"


def _markdown(session: Any) -> str:
    """The .md export; ``![…](…)`` in the text stays text, so a viewer loads no remote image
    (the thumbnails are ours: data: URLs)."""
    parts = [f"# Conversation '{escape_html(session.name)}'\n\n<sub>exported {_now()}</sub>"]
    for who, md, thumbs in _turns(session):
        images = "".join(f'<img src="{t}" width="{THUMBNAIL_EDGE}">' for t in thumbs)
        md = md.replace("![", "!\\[")
        parts.append(f"**{escape_html(who)}**\n\n{md}" + (f"\n\n{images}" if images else ""))
    return "\n\n---\n\n".join(parts)


def _html(session: Any) -> str:
    from .safe_html import escaped_text, has_renderer, safe_html

    rendered = has_renderer()
    body = []
    for who, md, thumbs in _turns(session):
        inner = safe_html(md) if rendered else escaped_text(md)
        images = "".join(f'<img class="thumb" src="{t}" alt="image">' for t in thumbs)
        body.append(f'<div class="turn"><div class="who">{html.escape(who)}</div>{inner}'
                    f"{images}</div>")
    title = html.escape(f"Conversation '{session.name}'")
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{_STYLE}</style></head><body><h1>{title}</h1>"
            f"<p><sub>exported {_now()}</sub></p>{''.join(body)}</body></html>")


def _thumbnail(b64: str) -> str:
    """A small JPEG data: URL of a base64 image (re-encoded here, so nothing else rides in)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(base64.b64decode(b64))) as img:
            img.thumbnail((THUMBNAIL_EDGE, THUMBNAIL_EDGE))
            buf = io.BytesIO()
            img.convert("RGB").save(buf, "JPEG", quality=80)
    except Exception:  # a damaged image: say so instead of failing the export
        return "data:,"
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
