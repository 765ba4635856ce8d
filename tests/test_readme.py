"""The README's Python example runs as written (against the simulator it starts itself)."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_example_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks, "README has no python example"
    script = tmp_path / "example.py"
    script.write_text(blocks[0], encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "ollama pull llama9:70b" in proc.stdout
    assert "2 vectors" in proc.stdout and "tokens, stop" in proc.stdout


def test_quick_start_has_exactly_two_commands():
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)```", section, re.S)[0].strip().splitlines()
    assert [c.split("#")[0].strip() for c in commands] == ["./run report", "./run test"]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "./run test" in ci


def test_readme_tools_example_runs(tmp_path):
    """The Tools section's example, against a simulator scripted to call top_rows."""
    import os

    from gleitzeit_nb.testing import OllamaSimulator

    block = re.findall(r"```python tools\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(block) == 1
    script = tmp_path / "tools_example.py"
    script.write_text(block[0], encoding="utf-8")
    with OllamaSimulator() as sim:
        sim.script_tools([{"name": "top_rows", "arguments": {"n": 2}}])
        env = {**os.environ, "OLLAMA_HOST": sim.url, "GLEITZEIT_DISPLAY": "terminal"}
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                              timeout=60, env=env)
        bodies = [r.body for r in sim.requests if r.path == "/api/chat"]
    assert proc.returncode == 0, proc.stderr
    assert "Based on top_rows:" in proc.stdout
    assert "top_rows(n=2) -> ok" in proc.stdout
    names = [t["function"]["name"] for t in bodies[0]["tools"]]
    assert names == ["describe_column", "top_rows"]
    enum = bodies[0]["tools"][0]["function"]["parameters"]["properties"]["column"]["enum"]
    assert enum == ["region", "amount"]
    result = [m for m in bodies[1]["messages"] if m["role"] == "tool"][0]["content"]
    assert "north" in result and "200" in result  # the DataFrame, as text
