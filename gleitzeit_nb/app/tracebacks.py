"""A failed cell as prompt text: the exception and a trimmed traceback of the user's frames.

``trim_traceback`` keeps what helps a reader fix the cell and stays the same on every machine
(so a prompt holding it replays): frames above the cell (the kernel's ``exec``) are dropped,
and all frames of an error raised before the cell ran (a SyntaxError while compiling it);
cell frames read ``Cell In[3], line 2``; a run of library frames (site-packages, the standard
library) keeps its first frame (where the user's code called in) and, at the end of the
traceback, its last (where the error was raised), with the rest counted on one line; library
paths are relative to their install folder (``pandas/core/frame.py``), without line numbers
(those change with every release); an ExceptionGroup lists its sub-exceptions, and a cause
(``raise … from e``) or the exception being handled follows on one line; other files are relative to the working folder, else to the
home folder (``~/lib/util.py``), else just their name; memory addresses read ``0x…``.
Everything is bounded:
at most :data:`MAX_FRAMES` frames, source lines and messages cut to a few hundred characters.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from .stable_text import cut, hide_addresses

__all__ = ["CellError", "MAX_FRAMES", "cell_error", "trim_traceback"]

MAX_FRAMES = 10
"""Frames shown at most; a longer traceback (deep recursion) keeps its first 3 and last 6."""
_LINE_CHARS = 200
_MESSAGE_CHARS = 1500
_SUBS = 5  # sub-exceptions of an ExceptionGroup listed
_HEADER = "Traceback (most recent call last; trimmed):"


@dataclass(frozen=True)
class CellError:
    """The error of one cell: its execution count, its code, the exception's name and message,
    and the trimmed traceback text (what ``{Err}`` puts into a prompt)."""

    count: int
    code: str
    ename: str
    evalue: str
    traceback: str

    def __str__(self) -> str:
        return self.traceback

    def __format__(self, spec: str) -> str:
        return format(self.traceback, spec)


def cell_error(count: int, code: str, exc: BaseException,
               cell_label: Callable[[str], str | None]) -> CellError:
    """The :class:`CellError` of cell ``count`` (its ``code``) that raised ``exc``."""
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ (the traceback text says so too)
        message = ""
    return CellError(count, code, type(exc).__name__,
                     hide_addresses(cut(message, _MESSAGE_CHARS)),
                     trim_traceback(exc, cell_label))


@dataclass
class _Frame:
    where: str  # 'Cell In[3], line 2', 'File "lib/util.py", line 7' or 'File "pandas/frame.py"'
    name: str
    line: str
    library: bool  # site-packages or the standard library


def trim_traceback(exc: BaseException, cell_label: Callable[[str], str | None],
                   cwd: str | None = None) -> str:
    """``exc`` as trimmed traceback text; ``cell_label(filename)`` names a notebook cell's
    code (``"Cell In[3]"``) and returns None for a file. ``cwd``: user files below it are
    shown relative to it."""
    cwd = cwd or os.getcwd()
    frames = _frames(exc.__traceback__, cell_label, cwd)
    lines = [_HEADER] if frames else []
    for frame in frames:
        if isinstance(frame, int):
            lines.append(f"  … {frame} more frame{'s' if frame > 1 else ''} …")
            continue
        lines.append(f"  {frame.where}, in {frame.name}")
        if frame.line:
            lines.append(f"    {cut(frame.line, _LINE_CHARS)}")
    lines.extend(_exception_lines(exc, cell_label, cwd))
    if isinstance(exc, BaseExceptionGroup):
        subs = exc.exceptions
        lines += [f"  {i}. {cut(_one_line(sub), 300)}" for i, sub in enumerate(subs[:_SUBS], 1)]
        if len(subs) > _SUBS:
            lines.append(f"  … {len(subs) - _SUBS} more")
    if exc.__cause__ is not None:  # raise … from e
        lines.append(f"(caused by {cut(_one_line(exc.__cause__), 300)})")
    elif exc.__context__ is not None and not exc.__suppress_context__:
        said = cut(_one_line(exc.__context__), 300)
        if said != _one_line(exc):
            lines.append(f"(raised while handling {said})")
    return hide_addresses("\n".join(lines))


def _frames(tb: TracebackType | None, cell_label: Callable[[str], str | None],
            cwd: str) -> list[_Frame | int]:
    """The frames worth showing; a number stands for that many frames left out."""
    raw: list[tuple[traceback.FrameSummary, str | None]] = []
    for frame, lineno in traceback.walk_tb(tb):
        if frame.f_locals.get("__tracebackhide__"):  # (IPython's and pytest's convention)
            continue
        code = frame.f_code
        summary = traceback.FrameSummary(code.co_filename, lineno, code.co_name)
        raw.append((summary, cell_label(code.co_filename)))
    first_cell = next((i for i, (_, cell) in enumerate(raw) if cell), None)
    if first_cell is None:  # raised before the cell ran (its SyntaxError): no frame is the user's
        return []
    raw = raw[first_cell:]  # frames above the first cell frame are the kernel's
    shown: list[_Frame] = [_frame(s, cell, cwd) for s, cell in raw]
    out: list[_Frame | int] = []
    i = 0
    while i < len(shown):
        frame = shown[i]
        if not frame.library:
            out.append(frame)
            i += 1
            continue
        j = i
        while j < len(shown) and shown[j].library:
            j += 1
        run = shown[i:j]
        keep_last = j == len(shown) and len(run) > 1
        out.append(run[0])
        hidden = run[1:-1] if keep_last else run[1:]
        if hidden:
            out.append(len(hidden))
        if keep_last:
            out.append(run[-1])
        i = j
    if len(out) > MAX_FRAMES:
        left_out = sum(f if isinstance(f, int) else 1 for f in out[3:-6])
        out = [*out[:3], left_out, *out[-6:]]
    return out


def _frame(summary: traceback.FrameSummary, cell: str | None, cwd: str) -> _Frame:
    line = (summary.line or "").strip()
    if cell:
        return _Frame(f"{cell}, line {summary.lineno}", summary.name, line, False)
    path, library = _short_path(summary.filename, cwd)
    if library:  # (its line number would tie a replayed prompt to the library's version)
        return _Frame(f'File "{path}"', summary.name, line, library)
    return _Frame(f'File "{path}", line {summary.lineno}', summary.name, line, library)


def _library_roots() -> list[str]:
    """Install folders of packages and of the standard library, longest first."""
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("purelib", "platlib", "stdlib", "platstdlib") if k in paths}
    roots |= {p for p in sys.path if p.endswith(("site-packages", "dist-packages"))}
    return sorted((os.path.normpath(r) for r in roots), key=len, reverse=True)


_ROOTS = _library_roots()


def _short_path(filename: str, cwd: str) -> tuple[str, bool]:
    """The path to show, and whether it is a library's."""
    path = os.path.normpath(filename)
    for root in _ROOTS:
        if path.startswith(root + os.sep):
            return path[len(root) + 1:].replace(os.sep, "/"), True
    if path.startswith(os.path.normpath(cwd) + os.sep):
        return os.path.relpath(path, cwd).replace(os.sep, "/"), False
    home = os.path.normpath(os.path.expanduser("~"))
    if path.startswith(home + os.sep):
        return "~/" + os.path.relpath(path, home).replace(os.sep, "/"), False
    return os.path.basename(path), False


def _exception_lines(exc: BaseException, cell_label: Callable[[str], str | None],
                     cwd: str) -> list[str]:
    """``Type: message`` (with a SyntaxError's place and caret; notes kept), bounded."""
    text = "".join(traceback.format_exception_only(type(exc), exc)).rstrip("\n")
    if isinstance(exc, SyntaxError) and exc.filename:
        label = cell_label(exc.filename)
        where = label or _short_path(exc.filename, cwd)[0]
        text = text.replace(f'File "{exc.filename}"', label or f'File "{where}"', 1)
    return [cut(text, _MESSAGE_CHARS)]


def _one_line(exc: BaseException) -> str:
    lines = traceback.format_exception_only(type(exc), exc)
    return lines[-1].strip() if lines else type(exc).__name__


