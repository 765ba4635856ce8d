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
