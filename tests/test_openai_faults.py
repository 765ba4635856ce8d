"""``OpenAICompatibleProvider``: request bodies, streamed events and faults, on a scripted fake
server (the real llama.cpp server is in ``test_openai_provider.py``)."""

from __future__ import annotations

import base64

import pytest

from gleitzeit_nb.core.backend import ChatRequest, EmbedRequest
from gleitzeit_nb.errors import (ModelNotFoundError, ProviderResponseError, ProviderTimeoutError,
                                 StreamError)
from gleitzeit_nb.providers import OpenAICompatibleProvider
from gleitzeit_nb.providers.http import Secret
from gleitzeit_nb.providers.openai import normalize_base_url
from gleitzeit_nb.providers.openai.payload import sniff_mime
from gleitzeit_nb.providers.openai.transport import error_message

from .openai_fake import MODELS, USAGE, FakeServer, delta, respond, sse

HI = {"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture
async def fake():
    async with FakeServer() as server:
        yield server


@pytest.fixture
async def provider(fake):
    async with OpenAICompatibleProvider(base_url=fake.url, timeout=5, chunk_timeout=0.5,
                                        retry_backoff=0.01, api_key="sk-fake-777") as p:
        assert fake.paths() == ["/v1/models"]  # the health check
        fake.requests.clear()
        yield p


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- what is sent ------------------------------------------------------------------------------

async def test_chat_body_maps_every_setting(fake, provider):
    png, jpeg = b64(b"\x89PNG\r\n\x1a\n" + b"\0" * 8), b64(b"\xff\xd8\xff\xe0" + b"\0" * 8)
    request = ChatRequest(
        model="smollm2", temperature=0.2, max_tokens=9, top_k=5, top_p=0.9, repeat_penalty=1.1,
        seed=3, stop=["\n"], format="json", think=True,
        extra={"options": {"min_p": 0.05, "temperature": 1.5}, "num_ctx": 4096, "keep_alive": 0},
        messages=[{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "What is this?", "images": [png, jpeg]}])
    await (await provider.stream_chat(request)).collect()
    sent = fake.requests[-1]
    body = sent["json"]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["authorization"] == "Bearer sk-fake-777"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert {k: body[k] for k in ("temperature", "max_tokens", "top_k", "top_p", "repeat_penalty",
                                 "seed", "stop", "min_p")} == {
        "temperature": 0.2, "max_tokens": 9, "top_k": 5, "top_p": 0.9, "repeat_penalty": 1.1,
        "seed": 3, "stop": ["\n"], "min_p": 0.05}  # named settings win over raw options
    assert body["response_format"] == {"type": "json_object"}
    assert body["reasoning_effort"] == "medium"
    assert "num_ctx" not in body and "keep_alive" not in body and "options" not in body
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{jpeg}"}}]


@pytest.mark.parametrize("fmt, think, expected_format, effort", [
    ({"type": "object"}, "high", {"type": "json_schema", "json_schema": {
        "name": "reply", "schema": {"type": "object"}, "strict": True}}, "high"),
    (None, False, None, None),
])
async def test_schema_and_think_levels(fake, provider, fmt, think, expected_format, effort):
    await provider.handle_request("chat", {**HI, "format": fmt, "think": think})
    body = fake.requests[-1]["json"]
    assert body.get("response_format") == expected_format
    assert body.get("reasoning_effort") == effort


def test_mime_sniffing_and_base_urls():
    assert sniff_mime(b64(b"GIF89a" + b"\0" * 10)) == "image/gif"
    assert sniff_mime(b64(b"RIFF\0\0\0\0WEBPVP8 ")) == "image/webp"
    assert sniff_mime(b64(b"\xff\xd8\xff\xdb")) == "image/jpeg"
    assert sniff_mime(b64(b"\x89PNG\r\n\x1a\n")) == "image/png"
    assert normalize_base_url("localhost:8080") == "http://localhost:8080/v1"
    assert normalize_base_url("http://h:8000/v1/") == "http://h:8000/v1"
    assert normalize_base_url("h:4000/litellm") == "http://h:4000/litellm"  # kept as given
    assert normalize_base_url("http://0.0.0.0:8080") == "http://127.0.0.1:8080/v1"
    with pytest.raises(ValueError, match="invalid port"):
        normalize_base_url("h:80a/v1")


def test_error_body_shapes():
    assert error_message({"error": {"message": "bad", "code": 400}}) == "bad"
    assert error_message({"error": "plain"}) == "plain"
    assert error_message({"detail": "Not Found"}) == "Not Found"
    assert error_message({"detail": [{"msg": "field required"}, {"msg": "x"}]}) == \
        "field required; x"
    assert error_message({"object": "error", "message": "vLLM says"}) == "vLLM says"
    assert error_message(["no"]) == ""


# -- what is read ------------------------------------------------------------------------------

async def test_thinking_tool_calls_usage_and_comments(fake, provider):
    call = {"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": ""}}
    fake.script.append(sse(
        ": keep-alive comment\n\n", delta(reasoning="Let me "), delta(reasoning_content=None,
                                                                       reasoning="think."),
        delta(tool_calls=[call]),
        delta(tool_calls=[{"index": 0, "function": {"arguments": '{"city": "Pa'}}]),
        delta(tool_calls=[{"index": 0, "function": {"arguments": 'ris"}'}}]),
        delta("Done"), delta(finish="tool_calls"),
        {**USAGE, "timings": {"prompt_ms": 250.0, "predicted_ms": 1500.0}},
        "event: ping\nid: 7\n\n"))
    stream = await provider.stream_chat(ChatRequest(model="smollm2", messages=HI["messages"]))
    chunks = [c async for c in stream]
    assert stream.thinking == "Let me think." and stream.text == "Done"
    assert [(t.name, t.arguments, t.id) for t in stream.tool_calls] == [
        ("get_weather", {"city": "Paris"}, "call_1")]
    assert chunks[-1].done and chunks[-1].tool_calls == stream.tool_calls
    u = stream.usage
    assert (u.input_tokens, u.output_tokens, u.finish_reason) == (7, 3, "tool_calls")
    assert (u.prompt_seconds, u.generation_seconds) == (0.25, 1.5)


async def test_end_without_done_marker(fake, provider):
    fake.script.append(sse(delta("ok"), delta(finish="stop"), done=False))  # finished: fine
    assert (await provider.handle_request("chat", HI))["response"] == "ok"
    fake.script.append(sse(delta("Once upon"), delta(" a time"), done=False))
    with pytest.raises(StreamError) as info:
        await provider.handle_request("chat", HI)
    assert info.value.partial == "Once upon a time"
    assert "closed the stream before the reply was complete" in str(info.value)


async def test_a_server_ignoring_stream_true(fake, provider):
    fake.script.append(respond(200, {"choices": [{"index": 0, "finish_reason": "stop",
                                                  "message": {"content": "Whole."}}],
                                     "usage": {"prompt_tokens": 4, "completion_tokens": 2}}))
    result = await provider.handle_request("chat", HI)
    assert (result["response"], result["tokens_used"], result["finish_reason"]) == \
        ("Whole.", 2, "stop")


# -- faults ------------------------------------------------------------------------------------

async def test_mid_stream_error_event_keeps_the_partial(fake, provider):
    fake.script.append(sse(delta("Half"), delta(" a"), {"error": {"message": "KV cache full"}},
                           done=False))
    with pytest.raises(StreamError) as info:
        await provider.handle_request("chat", HI)
    assert info.value.partial == "Half a"
    assert "reported an error mid-stream: KV cache full" in str(info.value)


@pytest.mark.parametrize("then", ["abort", "close"])
async def test_dropped_connection_keeps_the_partial(fake, provider, then):
    fake.script.append(sse(delta("Some"), delta(" text"), done=False, then=then))
    stream = await provider.stream_chat(ChatRequest(model="smollm2", messages=HI["messages"]))
    with pytest.raises(StreamError) as info:
        await stream.collect()
    assert info.value.partial == stream.text == "Some text" and "httpx" not in str(info.value)


async def test_malformed_lines(fake, provider):
    fake.script.append(sse(delta("A"), "data: {not json\n\n"))
    with pytest.raises(StreamError, match="malformed line") as info:
        await provider.handle_request("chat", HI)
    assert info.value.partial == "A"
    fake.script.append(sse(delta("A"), "garbage without a field\n\n"))
    with pytest.raises(StreamError, match="malformed line"):
        await provider.handle_request("chat", HI)


async def test_stall_is_a_chunk_timeout_with_the_partial(fake, provider):
    fake.script.append(sse(delta("Slow"), delta(" start"), done=False, then="stall"))
    with pytest.raises(ProviderTimeoutError) as info:
        await provider.handle_request("chat", HI)
    assert info.value.phase == "chunk" and info.value.partial == "Slow start"
    assert "stalled: no data for 0.5 s after 2 chunks" in str(info.value)


async def test_transient_statuses_are_retried_before_output(fake, provider):
    fake.script += [respond(429, {"error": {"message": "slow down"}}),
                    respond(503, {"error": "loading model"})]
    assert (await provider.handle_request("chat", HI))["response"] == "Hi there."
    assert fake.paths() == ["/v1/chat/completions"] * 3
    fake.script += [respond(503, {"detail": "busy"})] * 3
    with pytest.raises(ProviderResponseError) as info:
        await provider.handle_request("chat", HI)
    assert info.value.status_code == 503 and info.value.server_error == "busy"
    assert "(Tried 3 times.)" in str(info.value) and len(fake.requests) == 6


async def test_no_retry_after_output_started(fake, provider):
    fake.script.append(sse(delta("x"), done=False, then="abort"))
    with pytest.raises(StreamError):
        await provider.handle_request("chat", HI)
    assert len(fake.requests) == 1


@pytest.mark.parametrize("status, body", [
    (404, {"object": "error", "message": "The model `llama9` does not exist.", "code": 404}),
    (404, {"error": {"message": "model 'llama9' not found", "type": "not_found_error"}}),
    (400, {"error": {"message": "nope", "code": "model_not_found"}}),
    (400, {"error": "Invalid model name passed in model=llama9"}),  # LiteLLM
])
async def test_unknown_model_lists_the_served_ones(fake, provider, status, body):
    fake.script += [respond(status, body), respond(200, MODELS)]
    with pytest.raises(ModelNotFoundError) as info:
        await provider.handle_request("chat", {**HI, "model": "llama9"})
    message = str(info.value)
    assert message.startswith(f"Model 'llama9' is not available on {fake.url}. Use a model "
                              "this server has: ") and "ollama" not in message
    assert sorted(info.value.installed) == ["qwen2.5-7b", "smollm2"]
    assert fake.paths() == ["/v1/chat/completions", "/v1/models"]


async def test_replies_that_are_not_openai(fake, provider):
    fake.script.append(respond(200, raw=b"<html>router login</html>", ctype="text/html"))
    with pytest.raises(ProviderResponseError, match="does not look like an OpenAI-compatible"):
        await provider.handle_request("chat", HI)
    fake.script.append(respond(200, ["not", "openai"]))
    with pytest.raises(ProviderResponseError, match="does not look like an OpenAI-compatible"):
        await provider.list_models()
    fake.script.append(respond(200, raw=b'{"message": {"content": "ndjson"}}\n',
                               ctype="application/x-ndjson"))
    with pytest.raises(ProviderResponseError, match="does not look like an OpenAI-compatible"):
        await provider.handle_request("chat", HI)
    fake.script.append(respond(200, {"object": "list"}))
    with pytest.raises(ProviderResponseError, match="does not look like an OpenAI-compatible"):
        await provider.embed(EmbedRequest(model="e", input=["x"]))


async def test_embeddings_ordered_by_index(fake, provider):
    fake.script.append(respond(200, {"model": "e5", "usage": {"prompt_tokens": 5}, "data": [
        {"index": 1, "embedding": [0.0, 1.0]}, {"index": 0, "embedding": [1.0, 0.0]}]}))
    result = await provider.handle_request("embed", {"model": "e5", "input": ["a", "b"],
                                                     "dimensions": 2})
    assert result == {"embeddings": [[1.0, 0.0], [0.0, 1.0]], "model": "e5", "input_tokens": 5}
    assert fake.requests[-1]["json"] == {"model": "e5", "input": ["a", "b"], "dimensions": 2}


async def test_capacity_hint_is_none_when_unknown(fake, provider):
    fake.script.append(respond(404, {"detail": "Not Found"}))
    assert await provider.capacity_hint() is None
    fake.script.append(respond(200, raw=b"nope", ctype="text/plain"))
    assert await provider.capacity_hint() is None
    fake.script.append(respond(200, {"total_slots": 6}))
    assert await provider.capacity_hint() == 6
    assert fake.paths() == ["/props"] * 3


async def test_an_echoed_key_is_masked(fake, provider):
    fake.script.append(respond(401, {"error": {"message": "Incorrect API key: sk-fake-777"}}))
    with pytest.raises(ProviderResponseError) as info:
        await provider.handle_request("chat", HI)
    assert "sk-fake-777" not in str(info.value) and "Incorrect API key: ***" in str(info.value)
    assert "sk-fake-777" not in repr(vars(provider._transport))
    assert repr(Secret("x")) == str(Secret("x")) == "'***'" and Secret("x").reveal() == "x"


@pytest.mark.parametrize("status, message, method, expected", [
    (400, "This model does not support embeddings", "embed", "cannot make embeddings"),
    (501, "This server does not support embeddings. Start it with `--embeddings`", "embed",
     "--embeddings"),
    (400, "model 'e5' does not support chat completions", "chat", "cannot chat: use a chat model"),
    (400, "response_format is not supported", "chat", "leave out the option it names"),
    (400, "model: unknown field top_k is not supported", "chat", "leave out the option"),
])
async def test_capability_errors_say_what_cannot_be_done(fake, provider, status, message,
                                                         method, expected):
    fake.script.append(respond(status, {"error": {"message": message}}))
    params = {"model": "e5", "input": "x"} if method == "embed" else HI
    with pytest.raises(ProviderResponseError) as info:
        await provider.handle_request(method, params)
    assert expected in str(info.value) and message in str(info.value)
    # not retried; a model's capability error asks Ollama's /api/tags for the models that can
    assert info.value.status_code == status and fake.paths()[1:] in ([], ["/api/tags"])


async def test_the_key_does_not_follow_a_redirect_to_another_host(fake):
    async with FakeServer() as other:
        location = f"{other.url}/chat/completions"

        async def redirect(writer):
            writer.write(f"HTTP/1.1 307 X\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
                         .encode())
            await writer.drain()
            return True

        fake.script += [respond(200, MODELS), redirect] * 2  # per provider: health check, chat
        async with OpenAICompatibleProvider(base_url=fake.url, api_key="sk-fake-777") as p:
            with pytest.raises(ProviderResponseError, match=f"redirected /chat/completions to "
                                                            f"{location}. Set base_url"):
                await p.handle_request("chat", HI)  # not followed by default
        async with OpenAICompatibleProvider(base_url=fake.url, api_key="sk-fake-777",
                                            follow_redirects=True) as p:
            assert (await p.handle_request("chat", HI))["response"] == "Hi there."
    assert [(r["method"], r["path"]) for r in fake.requests] == [
        ("GET", "/v1/models"), ("POST", "/v1/chat/completions")] * 2
    assert fake.requests[3]["headers"]["authorization"] == "Bearer sk-fake-777"
    assert [(r["method"], r["path"]) for r in other.requests] == [
        ("POST", "/v1/chat/completions")]
    assert "authorization" not in other.requests[0]["headers"]
