"""Re-recording the demo notebooks live (no Ollama: the built-in engine answers the text cells,
the simulator the image cells) reproduces the committed recordings, answer by answer: greedy
decoding is deterministic on the machine that made them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import require_llama

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def recordings(store: Path) -> dict[str, tuple[str, str]]:
    out = {}
    for f in store.glob("*.json"):
        rec = json.loads(f.read_text(encoding="utf-8"))
        out[rec["key"]] = (rec["request"]["api"], rec["reply"]["text"])
    return out


def test_report_live_reproduces_the_committed_recordings(tmp_path, dead_url):
    require_llama()
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for nb in NOTEBOOKS.glob("*.ipynb"):
        shutil.copy(nb, folder)
    env = {**os.environ, "OLLAMA_HOST": dead_url, "GLEITZEIT_STORE": "", "GLEITZEIT_REPLAY": ""}
    proc = subprocess.run([sys.executable, "-m", "gleitzeit_nb.report", str(folder), "--live",
                           "--out", str(tmp_path / "html")], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    committed, fresh = recordings(NOTEBOOKS / "llm-replay"), recordings(folder / "llm-replay")
    assert {api for api, _ in committed.values()} == {"openai", "ollama"}  # engine, simulator
    assert fresh.keys() == committed.keys()
    for key, (api, text) in committed.items():
        assert fresh[key] == (api, text), key
