"""``%llm_models``: the installed models as a table (pandas when installed, HTML otherwise)."""

from __future__ import annotations

import html
from typing import Any

from ..core.backend import ModelInfo

COLUMNS = ("name", "size", "family", "parameters", "quantization", "capabilities", "loaded")


def _rows(infos: list[ModelInfo]) -> list[tuple[Any, ...]]:
    return [(i.name, f"{i.size / 1e9:.1f} GB" if i.size else "", i.family, i.parameter_size,
             i.quantization, "unknown" if i.capabilities is None else ", ".join(i.capabilities),
             "yes" if i.loaded else "") for i in infos]


class ModelTable:
    """A plain table with an HTML and a text form (used when pandas is missing)."""

    def __init__(self, infos: list[ModelInfo]) -> None:
        self.rows = _rows(infos)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{c}</th>" for c in COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                       for row in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        table = [COLUMNS, *self.rows]
        widths = [max(len(str(r[i])) for r in table) for i in range(len(COLUMNS))]
        return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in table)


def models_table(infos: list[ModelInfo]) -> Any:
    """A pandas DataFrame if pandas is installed, else a ``ModelTable``."""
    try:
        import pandas as pd
    except ImportError:
        return ModelTable(infos)
    return pd.DataFrame(_rows(infos), columns=list(COLUMNS))
