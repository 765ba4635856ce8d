"""Every error class, on the streaming and the non-streaming path, with the fix in the message."""

import asyncio
import time

import pytest

from gleitzeit_nb.errors import (
    LLMError,
    ModelNotFoundError,
    ProviderResponseError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    StreamError,
)
from gleitzeit_nb.providers import OllamaProvider

from .conftest import chat_params, generation_requests


async def run_both(provider, params):
    """Yield the error from the non-streaming path, then from the streaming path."""
    errors = []
    with pytest.raises(LLMError) as info:
        await provider.handle_request("chat", params)
    errors.append(info.value)
    chunks = []
    with pytest.raises(LLMError) as info:
        stream = await provider.stream_request("chat", params)
        async for chunk in stream:
            chunks.append(chunk)
    errors.append(info.value)
    assert type(errors[0]) is type(errors[1])
    return errors, chunks


async def test_server_down_fast_with_url_and_fix(dead_url):
    async with OllamaProvider(base_url=dead_url) as provider:  # default retries included
        for path in ("handle", "stream"):
            started = time.perf_counter()
            with pytest.raises(ProviderUnavailableError) as info:
                if path == "handle":
                    await provider.handle_request("chat", chat_params())
                else:
                    await provider.stream_request("chat", chat_params())  # raises at the call site
            assert time.perf_counter() - started < 2.0
            msg = str(info.value)
            assert dead_url in msg and "ollama serve" in msg and "OLLAMA_HOST" in msg
            assert "connection refused" in msg and "httpx" not in msg
            assert isinstance(info.value, RuntimeError)  # the guide's `except RuntimeError` works


async def test_an_unreachable_proxy_is_named_with_its_variable(monkeypatch, dead_url):
    proxy = dead_url.replace("http://", "http://user:secret@")
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("NO_PROXY", "")
    async with OllamaProvider(base_url="http://ollama.invalid:11434", max_retries=0) as provider:
        with pytest.raises(ProviderUnavailableError) as info:
            await provider.handle_request("chat", chat_params())
    msg = str(info.value)
    assert f"Could not reach the proxy {dead_url} (from HTTP_PROXY) for Ollama at " \
           "http://ollama.invalid:11434 (connection refused)" in msg
    assert "add ollama.invalid to NO_PROXY" in msg and "secret" not in msg
    monkeypatch.setenv("NO_PROXY", "localhost,.invalid")  # not through the proxy: no word of it
    async with OllamaProvider(base_url="http://ollama.invalid:11434", max_retries=0) as provider:
        with pytest.raises(ProviderUnavailableError) as info:
            await provider.handle_request("chat", chat_params())
    assert "proxy" not in str(info.value).lower() and "ollama serve" in str(info.value)


async def test_model_missing_names_pull_and_installed_models(provider, sim):
    errors, _ = await run_both(provider, chat_params(model="llama3.1:8b"))
    for err in errors:
        assert isinstance(err, ModelNotFoundError)
        assert "ollama pull llama3.1:8b" in str(err) and sim.url in str(err)
        assert err.installed[0] == "llama3.2:latest"  # closest first
    assert len([r for r in generation_requests(sim)]) == 2  # a 404 is never retried


async def test_http_500_keeps_server_text(provider, sim):
    sim.inject("http_error", status=500, message="CUDA error: out of memory", count=2)
    errors, _ = await run_both(provider, chat_params())
    for err in errors:
        assert isinstance(err, ProviderResponseError) and err.status_code == 500
        assert "CUDA error: out of memory" in str(err) and "smaller model" in str(err)
    assert len(generation_requests(sim)) == 2  # not retried


async def test_503_retried_then_success(provider, sim):
    sim.inject("http_error", status=503, message="server busy", count=2)
    result = await provider.handle_request("chat", chat_params())
    assert result["response"] and len(generation_requests(sim)) == 3
    sim.inject("http_error", status=503, message="server busy", count=1)
    stream = await provider.stream_request("chat", chat_params())
    assert (await stream.collect()).done and len(generation_requests(sim)) == 5


async def test_503_gives_up_after_retries(provider, sim):
    sim.inject("http_error", status=503, message="server busy", count=10)
    with pytest.raises(ProviderResponseError, match="HTTP 503.*server busy.*Tried 3 times"):
        await provider.handle_request("chat", chat_params())
    assert len(generation_requests(sim)) == 3


async def test_mid_stream_error_keeps_partial_and_is_not_retried(provider, sim):
    sim.inject("mid_stream_error", after=5, message="llama runner crashed", count=2)
    errors, chunks = await run_both(provider, chat_params("[[tokens=50]]"))
    for err in errors:
        assert isinstance(err, StreamError) and "llama runner crashed" in str(err)
        assert len(err.partial.split()) == 5 and "5 chunks" in str(err)
    assert "".join(c.content for c in chunks) == errors[1].partial
    assert len(generation_requests(sim)) == 2  # no retry once output started


async def test_malformed_line(provider, sim):
    sim.inject("malformed_line", after=3, count=2)
    errors, _ = await run_both(provider, chat_params("[[tokens=50]]"))
    for err in errors:
        assert isinstance(err, StreamError) and "malformed line" in str(err)
        assert len(err.partial.split()) == 3


async def test_dropped_connection(provider, sim):
    sim.inject("drop", after=4, count=2)
    errors, _ = await run_both(provider, chat_params("[[tokens=50]]"))
    for err in errors:
        assert isinstance(err, StreamError)
        assert "dropped the connection" in str(err) or "closed the stream" in str(err)
        assert len(err.partial.split()) == 4


async def test_stall_before_first_byte_bounded(sim):
    sim.inject("stall_before", seconds=5, count=2)
    async with OllamaProvider(base_url=sim.url, timeout=0.5, max_retries=0) as provider:
        started = time.perf_counter()
        errors, _ = await run_both(provider, chat_params())
        assert time.perf_counter() - started < 2.5
    for err in errors:
        assert isinstance(err, ProviderTimeoutError) and err.phase == "first_byte"
        assert "0.5 s" in str(err) and "timeout=" in str(err)


async def test_stall_between_chunks_bounded_and_partial_kept(sim):
    sim.inject("stall_after", after=3, seconds=5, count=2)
    async with OllamaProvider(base_url=sim.url, chunk_timeout=0.4, max_retries=0) as provider:
        started = time.perf_counter()
        errors, chunks = await run_both(provider, chat_params("[[tokens=20]]"))
        assert time.perf_counter() - started < 2.5
    for err in errors:
        assert isinstance(err, ProviderTimeoutError) and err.phase == "chunk"
        assert "chunk_timeout=" in str(err) and len(err.partial.split()) == 3
    assert len(chunks) == 3


async def test_slow_model_load_within_first_byte_timeout(sim):
    # A slow start is fine as long as it is within `timeout`, even when chunk_timeout is short.
    sim.inject("stall_before", seconds=0.6)
    async with OllamaProvider(base_url=sim.url, timeout=5, chunk_timeout=0.3) as provider:
        assert (await provider.handle_request("chat", chat_params()))["response"]


async def test_no_raw_httpx_names_in_messages(dead_url, sim):
    sim.inject("drop", after=1)
    async with OllamaProvider(base_url=sim.url) as provider:
        with pytest.raises(StreamError) as info:
            await provider.handle_request("chat", chat_params())
    assert "httpx" not in str(info.value).lower()
    assert info.value.__cause__ is None or "httpx" not in type(info.value.__cause__).__module__
    await asyncio.sleep(0)


@pytest.mark.parametrize("status", [429, 502, 504])
async def test_other_transient_statuses_are_retried(provider, sim, status):
    sim.inject("http_error", status=status, message="try later", count=1)
    assert (await provider.handle_request("chat", chat_params()))["response"]
    sim.inject("http_error", status=status, message="try later", count=1)
    assert (await (await provider.stream_request("chat", chat_params())).collect()).done
    assert len(generation_requests(sim)) == 4


@pytest.mark.parametrize("status", [400, 500])
async def test_other_statuses_are_not_retried(provider, sim, status):
    sim.inject("http_error", status=status, message="bad", count=3)
    with pytest.raises(ProviderResponseError) as info:
        await provider.handle_request("chat", chat_params())
    assert info.value.status_code == status and len(generation_requests(sim)) == 1


async def test_refused_connection_is_retried_with_growing_backoff(dead_url, caplog):
    caplog.set_level("WARNING", logger="gleitzeit_nb")
    async with OllamaProvider(base_url=dead_url, max_retries=3, retry_backoff=0.01) as provider:
        with pytest.raises(ProviderUnavailableError, match="connection refused"):
            await provider.handle_request("chat", chat_params())
    retries = [r for r in caplog.records if "retry" in r.getMessage().lower()]
    assert len(retries) == 3
    policy = provider.retry
    delays = [policy.delay(n) for n in range(3)]
    assert all(0 < d for d in delays) and delays[0] < delays[2]  # doubling, jitter on top


# The non-streamed requests (embed, model listing) share the transport's errors and retries.

async def test_embed_errors_server_down_and_missing_model(dead_url, provider):
    async with OllamaProvider(base_url=dead_url, max_retries=0) as down:
        with pytest.raises(ProviderUnavailableError, match="ollama serve"):
            await down.handle_request("embed", {"model": "nomic-embed-text", "input": "x"})
    with pytest.raises(ModelNotFoundError, match="ollama pull nomic-embed-texx"):
        await provider.handle_request("embed", {"model": "nomic-embed-texx", "input": "x"})


async def test_embed_500_not_retried_503_retried(provider, sim):
    sim.inject("http_error", path="/api/embed", status=500, message="embed broke")
    with pytest.raises(ProviderResponseError, match="HTTP 500.*embed broke"):
        await provider.handle_request("embed", {"model": "nomic-embed-text", "input": "x"})
    sim.inject("http_error", path="/api/embed", status=503, message="busy")
    result = await provider.handle_request("embed", {"model": "nomic-embed-text", "input": "x"})
    assert len(result["embeddings"]) == 1
    assert len([r for r in sim.requests if r.path == "/api/embed"]) == 3


async def test_model_listing_stall_is_bounded(sim):
    sim.inject("stall_before", path="/api/tags", seconds=5)
    async with OllamaProvider(base_url=sim.url, timeout=0.4, max_retries=0) as provider:
        started = time.perf_counter()
        with pytest.raises(ProviderTimeoutError) as info:
            await provider.list_models()
        assert time.perf_counter() - started < 2.5
    assert info.value.phase == "first_byte"


async def test_a_server_that_is_not_ollama(tmp_path):
    """JSON that is not an object (another service on the port) is a clear error, not a crash."""
    import http.server
    import threading

    class NotOllama(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'["not", "ollama"]'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotOllama)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        async with OllamaProvider(base_url=f"http://127.0.0.1:{server.server_port}") as p:
            assert (await p.health_check())["healthy"] is False
            with pytest.raises(ProviderResponseError, match="not a JSON object.*OLLAMA_HOST"):
                await p.list_models()
    finally:
        server.shutdown()


async def test_tried_count_is_what_happened(sim):
    sim.inject("http_error", path="/api/version", status=503, message="busy")
    async with OllamaProvider(base_url=sim.url) as p:  # health_check does not retry
        sim.inject("http_error", path="/api/version", status=503, message="busy")
        status = await p.health_check()
    assert not status["healthy"] and "Tried" not in status["error"]


async def test_httpx_settings_from_the_caller_win(sim):
    import httpx

    async with OllamaProvider(base_url=sim.url, trust_env=False,
                              limits=httpx.Limits(max_connections=2)) as p:
        assert (await p.handle_request("chat", chat_params()))["response"]
    assert OllamaProvider(base_url=sim.url, timeout=600).timeouts.write == 600
