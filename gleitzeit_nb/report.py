"""The main job: execute the demo notebooks headless and write them as HTML reports.

    python -m gleitzeit_nb.report [NOTEBOOK_DIR] [--out DIR] [--live]

By default every LLM call is replayed from the recordings committed beside the notebooks
(``GLEITZEIT_REPLAY=replay``), so it runs offline on any machine. ``--live`` runs them against
the servers they name instead (the demo notebooks: the built-in engine, ``%llm_local start``,
and the simulator for images; others: ``OLLAMA_HOST`` or their ``LLMMagics.host``) and records
the replies (``GLEITZEIT_REPLAY=record``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any


def run_notebook(path: Path, out_dir: Path, *, mode: str, save: bool = False,
                 timeout: int = 600) -> Path:
    """Execute ``path`` in a fresh kernel (cwd = its folder) and write ``out_dir/<name>.html``.

    ``save`` writes the executed notebook back (its outputs become the committed reference).
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    os.environ["GLEITZEIT_REPLAY"] = mode
    os.environ.setdefault("GLEITZEIT_DISPLAY", "final")
    store = os.environ.get("GLEITZEIT_STORE", "").strip()
    if store:  # relative to where the command runs, not to each kernel's folder
        os.environ["GLEITZEIT_STORE"] = str(Path(store).expanduser().resolve())
    # No timing metadata: a saved notebook changes only when its outputs do.
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    if save:
        nbformat.write(nb, path)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{path.stem}.html"
    target.write_text(export_html(nb), encoding="utf-8")
    return target


def export_html(nb: Any) -> str:
    """The notebook as an HTML page, with every Markdown *output* rendered and sanitized here.

    Outputs hold model text (untrusted). Its HTML is escaped for the way JupyterLab parses
    Markdown, but nbconvert parses with another library that reads some edge cases (a table
    or ``$$`` block running into a code fence) differently; so the page gets our own HTML for
    those outputs, cleaned to a list of harmless tags. Markdown cells (the author's) are kept.
    """
    import copy

    from nbconvert import HTMLExporter

    from .app.safe_html import safe_html

    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/markdown" in data and "text/html" not in data:
                data["text/html"] = safe_html(data["text/markdown"])
    html, _ = HTMLExporter().from_notebook_node(nb)
    return html


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gleitzeit_nb.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="?", default="notebooks", help="folder of .ipynb files")
    parser.add_argument("--out", default="build/report", help="where the HTML goes")
    parser.add_argument("--live", action="store_true",
                        help="call the servers the notebooks use and record, instead of replaying")
    parser.add_argument("--save", action="store_true",
                        help="write the executed notebooks back (after a replay run, to commit them)")
    args = parser.parse_args(argv)
    if args.live and args.save:
        parser.error("--save writes replayed outputs: run --live first, then --save on its own")
    folder = Path(args.notebooks)
    paths = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    if not paths:
        print(f"No notebooks in {folder}/", file=sys.stderr)
        return 1
    mode = "record" if args.live else "replay"
    print(f"Running {len(paths)} notebooks from {folder}/ ({'live, recording' if args.live else 'replaying recordings, offline'})")
    from nbclient.exceptions import CellExecutionError

    written = []
    for path in paths:
        started = time.perf_counter()
        try:
            written.append(run_notebook(path, Path(args.out), mode=mode, save=args.save))
        except CellExecutionError as exc:
            summary = str(exc).strip().splitlines()
            print(f"  {path.name}: a cell failed:\n    " + "\n    ".join(summary[-6:]), file=sys.stderr)
            return 1
        print(f"  {path.name} → {written[-1]} ({time.perf_counter() - started:.1f} s)")
    print(f"Report written: {written[-1].resolve() if len(written) == 1 else Path(args.out).resolve()}")
    for w in written:
        print(f"  {w.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
