"""llm/v1 validation: every bad input is refused before any request, naming the parameter."""

from pathlib import Path

import pytest

from gleitzeit_nb.core import LLM_PROTOCOL_V1, InvalidParamsError, validate_params
from gleitzeit_nb.providers import OllamaProvider

MSG = [{"role": "user", "content": "hi"}]


def test_methods_and_prefix():
    assert set(LLM_PROTOCOL_V1["methods"]) == {"chat", "vision", "embed"}
    assert validate_params(LLM_PROTOCOL_V1, "llm/chat", {"model": "m", "messages": MSG}) == "chat"
    with pytest.raises(InvalidParamsError, match="Unsupported method 'llm/summarize'.*chat, embed, vision"):
        validate_params(LLM_PROTOCOL_V1, "llm/summarize", {})


def test_required_params_from_provider():
    p = OllamaProvider(base_url="http://127.0.0.1:1")
    assert p.get_required_params("chat") == ["model", "messages"]
    assert p.get_required_params("embed") == ["model", "input"]


@pytest.mark.parametrize("params, param, text", [
    ({"messages": MSG}, "model", "Missing required parameter 'model'"),
    ({"model": "m"}, "messages", "Missing required parameter 'messages'"),
    ({"model": 3, "messages": MSG}, "model", "must be string"),
    ({"model": "m", "messages": MSG, "temperature": 2.5}, "temperature", "must be 0–2"),
    ({"model": "m", "messages": MSG, "temperature": "hot"}, "temperature", "must be number"),
    ({"model": "m", "messages": MSG, "max_tokens": 0}, "max_tokens", ">= 1"),
    ({"model": "m", "messages": MSG, "max_tokens": True}, "max_tokens", "must be integer"),
    ({"model": "m", "messages": MSG, "max_tokens": 1.5}, "max_tokens", "must be integer"),
    ({"model": "m", "messages": MSG, "top_p": 1.5}, "top_p", "0–1"),
    ({"model": "m", "messages": MSG, "format": "xml"}, "format", "one of: json"),
    ({"model": "m", "messages": MSG, "think": "max"}, "think", "low, medium, high"),
    ({"model": "m", "messages": MSG, "stop": ["a", 1]}, "stop", "only strings"),
    ({"model": "m", "messages": MSG, "temprature": 1}, "temprature", "accepted: model, messages"),
    ({"model": "m", "messages": []}, "messages", "empty"),
    ({"model": "m", "messages": ["hi"]}, "messages", r"messages\[0\] must be a dict"),
    ({"model": "m", "messages": [{"role": "bot", "content": "x"}]}, "messages", "role 'bot'"),
    ({"model": "m", "messages": [{"role": "user"}]}, "messages", "needs 'content'"),
    ({"model": "m", "messages": MSG, "temperature": float("nan")}, "temperature", "finite"),
    ({"model": "", "messages": MSG}, "model", "Missing required parameter 'model'"),
    ({"model": "m", "messages": [{"role": "user", "content": "x", "images": 5}]}, "messages",
     r"messages\[0\]\['images'\] must be a list"),
    ({"model": "m", "messages": MSG, "file_path": ""}, "file_path", "empty path"),
])
def test_chat_rejects(params, param, text):
    with pytest.raises(InvalidParamsError, match=text) as info:
        validate_params(LLM_PROTOCOL_V1, "chat", params)
    assert info.value.param == param
    assert isinstance(info.value, ValueError)  # code catching ValueError (the guide's) still works


def test_valid_full_chat():
    params = {"model": "m", "messages": MSG, "temperature": 0, "max_tokens": 5, "stream": True,
              "top_k": 4, "top_p": 0.5, "repeat_penalty": 1.1, "seed": 1, "num_ctx": 2048,
              "stop": "END", "format": {"type": "object"}, "think": "low", "keep_alive": "5m",
              "system": "be brief", "options": {"mirostat": 1}, "file_path": "x.txt"}
    assert validate_params(LLM_PROTOCOL_V1, "chat", params) == "chat"


def test_vision_needs_an_image():
    with pytest.raises(InvalidParamsError, match="needs one of: image_path, images"):
        validate_params(LLM_PROTOCOL_V1, "vision", {"model": "m", "messages": MSG})
    with pytest.raises(InvalidParamsError, match="needs one of: image_path, images"):
        validate_params(LLM_PROTOCOL_V1, "vision", {"model": "m", "messages": MSG, "images": []})
    assert validate_params(LLM_PROTOCOL_V1, "vision",  # a pathlib.Path, as for images=
                           {"model": "m", "messages": MSG, "image_path": Path("a.png")}) == "vision"
    assert validate_params(LLM_PROTOCOL_V1, "vision",
                           {"model": "m", "messages": MSG, "image_path": "a.png"}) == "vision"


def test_embed_input_types():
    assert validate_params(LLM_PROTOCOL_V1, "embed", {"model": "m", "input": ["a", "b"]}) == "embed"
    with pytest.raises(InvalidParamsError, match="'input' must hold only strings"):
        validate_params(LLM_PROTOCOL_V1, "embed", {"model": "m", "input": ["a", 2]})
