"""The main job: notebooks replayed offline into HTML; two runs give identical cell outputs."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def outputs(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return json.dumps([c.get("outputs", []) for c in nb.cells], sort_keys=True)


def test_report_runs_offline_and_writes_html(tmp_path, dead_url):
    env = {**os.environ, "OLLAMA_HOST": dead_url}  # no server: everything must come from recordings
    proc = subprocess.run([sys.executable, "-m", "gleitzeit_nb.report", str(NOTEBOOKS),
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    for name in ("quickstart", "vision", "report"):
        html = (tmp_path / f"{name}.html").read_text(encoding="utf-8")
        assert "replayed" in html and "Traceback" not in html
    assert str(tmp_path) in proc.stdout


def test_two_replays_are_byte_identical(monkeypatch, dead_url):
    monkeypatch.setenv("GLEITZEIT_REPLAY", "replay")
    monkeypatch.setenv("GLEITZEIT_DISPLAY", "final")
    monkeypatch.setenv("OLLAMA_HOST", dead_url)
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        assert outputs(path) == outputs(path), path.name


def test_changed_prompt_is_a_clear_miss(tmp_path, monkeypatch, dead_url):
    nb = nbformat.read(NOTEBOOKS / "quickstart.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.source.startswith("%%llm\nExplain"))
    cell.source = cell.source.replace("three", "four")
    shutil.copytree(NOTEBOOKS / "llm-replay", tmp_path / "llm-replay")
    monkeypatch.setenv("GLEITZEIT_REPLAY", "replay")
    monkeypatch.setenv("OLLAMA_HOST", dead_url)
    client = NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors and errors[0].ename == "ReplayMissError"
    assert "Explain in four bullet points" in errors[0].evalue and "record" in errors[0].evalue


TRAPS = [  # model text that nbconvert's Markdown parser reads differently from JupyterLab's
    "a|b\n-|-\n```|\n<img src=x onerror=alert(document.domain)>\n```",
    "$$\n```\n$$ <img src=x onerror=alert(2)>\n```",
    "<script>alert(3)</script> <iframe src=x></iframe> [link](javascript:alert(4))",
]


def test_report_html_never_makes_model_text_live():
    from gleitzeit_nb.app.render import reply_bundle
    from gleitzeit_nb.report import export_html

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("%%llm\n…")
    cell.outputs = [nbformat.v4.new_output("display_data", data=reply_bundle(
        "## Findings\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n" + trap, model="m",
        stats={"eval_count": 3}, status="replayed")) for trap in TRAPS]
    nb.cells = [nbformat.v4.new_markdown_cell("# Report <b>by the author</b>"), cell]
    html = export_html(nb)
    body = html[html.index("<body"):]
    for live in ("<img", "<script>alert", "<iframe", "javascript:alert(4)\""):
        assert live not in body, live
    assert "onerror=alert(document.domain)" in body  # shown as text
    assert body.count("<h2") >= 3 and "<td>1</td>" in body  # Markdown still renders
    assert body.count("replayed") == 3
    assert "<b>by the author</b>" in body  # the author's own Markdown cells are kept as written


def test_recording_your_own_notebooks_as_the_readme_says(tmp_path, dead_url):
    """README "Recording your own notebooks": --live, then --save (a replay run), then nbval."""
    from gleitzeit_nb.testing import OllamaSimulator

    folder = tmp_path / "analysis"
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%load_ext gleitzeit_nb\n"
                                          '%config LLMMagics.model = "llama3.2"'),
                nbformat.v4.new_code_cell("%%llm\nName three rivers."),
                nbformat.v4.new_code_cell("%%llm -o lake\nAnd one lake?")]
    nbformat.write(nb, folder / "rivers.ipynb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLEITZEIT_")}
    report = [sys.executable, "-m", "gleitzeit_nb.report", str(folder),
              "--out", str(tmp_path / "html")]
    with OllamaSimulator() as sim:
        live = subprocess.run([*report, "--live"], capture_output=True, text=True, timeout=300,
                              env={**env, "OLLAMA_HOST": sim.url})
    assert live.returncode == 0, live.stderr
    recordings = sorted(p.name for p in (folder / "llm-replay").iterdir())
    assert len(recordings) == 3 and recordings[0] == ".gitignore"  # two answers, one file each
    offline = {**env, "OLLAMA_HOST": dead_url}
    saved = subprocess.run([*report, "--save"], capture_output=True, text=True, timeout=300,
                           env=offline)
    assert saved.returncode == 0, saved.stderr
    assert "replayed" in (folder / "rivers.ipynb").read_text(encoding="utf-8")
    nbval = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--nbval",
                            "-q", str(folder)], capture_output=True, text=True, timeout=300,
                           cwd=tmp_path, env={**offline, "GLEITZEIT_REPLAY": "replay"})
    assert nbval.returncode == 0, nbval.stdout + nbval.stderr
    assert "3 passed" in nbval.stdout
    assert sorted(p.name for p in (folder / "llm-replay").iterdir()) == recordings  # unchanged
