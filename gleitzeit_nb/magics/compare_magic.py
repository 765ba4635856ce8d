"""``%%llm -m a,b[,c]``: the prompt to several models at once, side by side (see
:mod:`gleitzeit_nb.notebook.compare`)."""

from __future__ import annotations

import argparse
from typing import Any

from IPython.core.error import UsageError

from ..app import bridge
from ..app.settings import SETTINGS
from ..notebook.columns import ColumnsDisplay
from ..notebook.compare import compare_async, labels, parse_targets, requests_for, result_table

#: %%llm options a comparison has no use for (it keeps no conversation; its columns are
#: escaped text).
_UNSUPPORTED = (("session", "-s"), ("new", "--new"), ("json", "--json"), ("format", "--format"),
                ("code", "--code"), ("schema", "--schema"), ("tools", "--tools"),
                ("approve", "--approve"), ("max_tool_rounds", "--max-tool-rounds"))


def compare_magic(magics: Any, args: argparse.Namespace, prompt: str) -> None:
    """Run the comparison the parsed ``%%llm`` options ask for; ``-o VAR`` gets the table
    (also after an interrupt: the answers so far)."""
    given = [flag for name, flag in _UNSUPPORTED if getattr(args, name, None)]
    if given:
        raise UsageError(f"Comparing models (-m a,b) keeps no conversation and takes no "
                         f"{', '.join(given)}; ask one model for that.")
    targets = parse_targets(args.model, host=args.host)
    table = ColumnsDisplay(labels(targets), mode=SETTINGS.display,
                           show_stats=SETTINGS.show_stats)
    reqs = requests_for(prompt, targets, system=args.system, temperature=args.temperature,
                        max_tokens=args.max_tokens, seed=args.seed, file_path=args.file,
                        think=args.think, num_ctx=args.num_ctx)
    try:
        bridge.run(compare_async(reqs, table))
    finally:
        magics._store(args.out, result_table(table))
