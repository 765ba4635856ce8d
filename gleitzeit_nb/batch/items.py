"""Turning a batch's ``items`` and ``prompt`` into one prompt (and image) per row."""

from __future__ import annotations

import glob
import math
import os
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import InvalidParamsError
from ..app.interpolate import interpolate

DEFAULT_IMAGE_PROMPT = "Describe this image."
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class Rows:
    """The rows of a batch: how the output is shaped, and each row's prompt or problem.

    ``kind`` is "list", "series" or "frame"; ``index`` is the pandas index (pandas input only);
    ``labels[i]`` names row ``i`` in messages (its position, or its pandas index label).
    """

    kind: str
    labels: list[Any]
    prompts: list[str | None]
    errors: dict[int, BaseException] = field(default_factory=dict)
    images: list[Any] | None = None
    index: Any = None

    def __len__(self) -> int:
        return len(self.prompts)


def is_pandas(obj: Any, name: str) -> bool:
    """Whether ``obj`` is a pandas ``name`` (DataFrame/Series), without importing pandas."""
    return any(cls.__name__ == name and getattr(cls, "__module__", "").split(".")[0] == "pandas"
               for cls in type(obj).__mro__)


def build_rows(items: Any, prompt: str | None, *, images: bool = False,
               variables: Mapping[str, Any] | None = None) -> Rows:
    """Normalise ``items`` (see ``run_batch``) into ``Rows``.

    A row whose template cannot be filled gets its error recorded; if every row fails that
    way the template itself is wrong, and the first error is raised.
    """
    if prompt is not None and not isinstance(prompt, str):
        raise InvalidParamsError(f"prompt must be a str template, not {type(prompt).__name__}.",
                                 param="prompt")
    extra: Mapping[str, Any] = variables if variables is not None else {}
    if images:
        rows = _image_rows(items, prompt, extra)
    elif is_pandas(items, "DataFrame"):
        rows = _frame_rows(items, prompt, extra)
    elif is_pandas(items, "Series"):
        rows = _value_rows("series", list(items), list(items.index), prompt, extra,
                           name=items.name, index=items.index)
    elif isinstance(items, (str, bytes, os.PathLike)):
        raise InvalidParamsError(
            "items is a single string; pass a list of prompts, or images=True to use it as a "
            "glob of image files (e.g. 'photos/*.jpg').", param="items")
    else:
        try:
            values = list(items)
        except TypeError:
            raise InvalidParamsError(
                f"items must be a list, a pandas Series or DataFrame, not "
                f"{type(items).__name__}.", param="items") from None
        rows = _value_rows("list", values, list(range(len(values))), prompt, extra)
    if rows.prompts and len(rows.errors) == len(rows.prompts):
        raise rows.errors[0]
    return rows


def _fill(rows: Rows, i: int, template: str, fields: Mapping[str, Any],
          extra: Mapping[str, Any]) -> None:
    """Row ``i``'s prompt from its ``fields`` (columns, dict keys…) and notebook ``extra``."""
    try:
        rows.prompts[i] = interpolate(template, ChainMap(_Fields(fields), _Rest(extra, fields)))
    except InvalidParamsError as exc:
        rows.errors[i] = exc


class _Fields(dict):
    """A row's fields: a missing value (NaN, None, NA) is the row's error, not the text 'nan'."""

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        if (value is None or (isinstance(value, float) and math.isnan(value))
                or type(value).__name__ in ("NAType", "NaTType")):
            raise InvalidParamsError(
                f"{{{key}}} has no value in this row ({value!r}); fill or drop the missing "
                f"values first, e.g. df.dropna(subset=[{key!r}]) or df.fillna({{{key!r}: ''}}).",
                param="prompt")
        return value


class _Rest(Mapping[str, Any]):
    """The notebook's names, after the row's own; a name in neither is the row's error."""

    def __init__(self, extra: Mapping[str, Any], fields: Mapping[str, Any]) -> None:
        self._extra, self._fields = extra, fields

    def __getitem__(self, key: str) -> Any:
        try:
            return self._extra[key]
        except KeyError:
            shown = ", ".join(str(k) for k in list(self._fields)[:12])
            raise InvalidParamsError(
                f"{{{key}}} is neither a field of this row ({shown}) nor a notebook variable; "
                f"fix the template, or write {{{{{key}}}}} for literal braces.",
                param="prompt") from None

    def __iter__(self) -> Any:
        return iter(self._extra)

    def __len__(self) -> int:
        return len(self._extra)


def _value_rows(kind: str, values: list[Any], labels: list[Any], prompt: str | None,
                extra: Mapping[str, Any], *, name: Any = None, index: Any = None) -> Rows:
    rows = Rows(kind, labels, [None] * len(values), index=index)
    for i, value in enumerate(values):
        if prompt is None:
            if isinstance(value, Mapping):
                raise InvalidParamsError(
                    "Dict items need a prompt template with {field} placeholders, "
                    "e.g. prompt='Summarise {title}: {body}'.", param="prompt")
            rows.prompts[i] = value if isinstance(value, str) else str(value)
            continue
        own: dict[str, Any] = {"item": value, "x": value, "index": labels[i]}
        if isinstance(name, str) and name.isidentifier():
            own[name] = value
        fields = {**own, **value} if isinstance(value, Mapping) else own
        _fill(rows, i, prompt, fields, extra)
    return rows


def _frame_rows(df: Any, prompt: str | None, extra: Mapping[str, Any]) -> Rows:
    if prompt is None:
        raise InvalidParamsError(
            "A DataFrame needs a prompt template with {column} placeholders, e.g. "
            "prompt='Classify this ticket: {text}'.", param="prompt")
    labels = list(df.index)
    rows = Rows("frame", labels, [None] * len(df), index=df.index)
    for i, record in enumerate(df.to_dict("records")):
        _fill(rows, i, prompt, {"index": labels[i], **{str(k): v for k, v in record.items()}},
              extra)
    return rows


def _image_rows(items: Any, prompt: str | None, extra: Mapping[str, Any]) -> Rows:
    index = None
    kind = "list"
    if isinstance(items, (str, os.PathLike)):
        sources: list[Any] = image_files(os.fspath(items))
    elif is_pandas(items, "DataFrame"):
        raise InvalidParamsError("With images=True, pass a list, a Series or a glob of images, "
                                 "e.g. df['path'].", param="items")
    elif is_pandas(items, "Series"):
        sources, index, kind = list(items), items.index, "series"
    elif isinstance(items, (list, tuple)):
        sources = list(items)
    else:
        sources = [items]  # one image object (PIL image, array, bytes)
    labels = list(index) if index is not None else list(range(len(sources)))
    rows = Rows(kind, labels, [None] * len(sources), images=sources, index=index)
    template = prompt or DEFAULT_IMAGE_PROMPT
    for i, src in enumerate(sources):
        path = os.fspath(src) if isinstance(src, (str, os.PathLike)) else None
        _fill(rows, i, template, {"item": src, "path": path, "index": labels[i]}, extra)
    return rows


def image_files(pattern: str) -> list[str]:
    """The files a glob matches (sorted), or the images in a directory."""
    pattern = os.path.expanduser(pattern)
    if os.path.isdir(pattern):
        found = [os.path.join(pattern, n) for n in os.listdir(pattern)
                 if n.lower().endswith(IMAGE_SUFFIXES)]
    else:
        found = [p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p)]
    if not found:
        raise InvalidParamsError(f"No image files match {pattern!r}.", param="items")
    return sorted(found)
