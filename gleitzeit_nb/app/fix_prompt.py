"""The prompt of ``%llm_fix``: a failed cell's code, its error, and the variables it uses.

The same error and variables give the same text on every machine (no paths of this one, no
memory addresses of ours), so a fix records and replays like any other request.
"""

from __future__ import annotations

from collections.abc import Sequence

from .code_blocks import fence_for
from .tracebacks import CellError

__all__ = ["INSTRUCTION", "fix_prompt"]

INSTRUCTION = ("This Jupyter notebook cell failed. Explain the cause in a few sentences, then "
               "give the whole corrected cell as one fenced ```python code block, last in your "
               "answer.")


def fix_prompt(error: CellError, summaries: Sequence[str] = ()) -> str:
    """The prompt for ``error``; ``summaries`` are ``name: summary`` lines of the variables
    the cell names (see :func:`.var_summary.variable_summaries`)."""
    fence = fence_for(error.code)
    parts = [INSTRUCTION, "",
             f"The cell (In[{error.count}]):", f"{fence}python", error.code.strip("\n"), fence,
             "", "The error:", error.traceback]
    if summaries:
        parts += ["", "The variables it uses, as they are now:",
                  *(f"- {line}" for line in summaries)]
    return "\n".join(parts)
