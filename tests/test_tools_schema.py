"""Tools: schemas from functions, argument validation, the tool fields on both APIs' bodies and
streams, and replay keys."""

# No `from __future__ import annotations`: hints are evaluated, as in a notebook cell.
import enum
from typing import Annotated, Literal, Optional

import pytest

from gleitzeit_nb.core.errors import InvalidParamsError
from gleitzeit_nb.core.tools import Tool, tool_from_function, tool_schemas


# -- schemas -------------------------------------------------------------------------------------
def google(city: str, days: int = 3, units: Literal["metric", "imperial"] = "metric") -> str:
    """Weather forecast for a city.

    Looks it up somewhere.

    Args:
        city: The city's name,
            in English.
        days (int): How many days.

    Returns:
        The forecast.
    """
    return city


def numpy_style(values: list[int], scale: float | None = None) -> float:
    """Sum of values.

    Parameters
    ----------
    values : list of int
        The numbers
        to add.
    scale : float, optional
        A factor.

    Returns
    -------
    float
    """
    return float(sum(values))


def sphinx(flag: bool, label: Optional[str] = None) -> None:
    """Set a flag.

    :param flag: Whether it is on.
    :param str label: A label
        for it.
    """


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


def with_enum(color: Color, note: Annotated[str, "Free text"] = "", tags: dict[str, int] = {}):
    return color


def test_google_docstring_literal_and_defaults():
    assert tool_from_function(google).to_schema() == {
        "type": "function",
        "function": {
            "name": "google",
            "description": "Weather forecast for a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "The city's name, in English."},
                    "days": {"type": "integer", "description": "How many days.", "default": 3},
                    "units": {"type": "string", "enum": ["metric", "imperial"],
                              "default": "metric"},
                },
                "required": ["city"],
            },
        },
    }


def test_numpy_docstring_list_and_optional():
    tool = tool_from_function(numpy_style)
    assert tool.description == "Sum of values."
    assert tool.parameters == {
        "type": "object",
        "properties": {
            "values": {"type": "array", "items": {"type": "integer"},
                       "description": "The numbers to add."},
            "scale": {"type": ["number", "null"], "description": "A factor.", "default": None},
        },
        "required": ["values"],
    }


def test_sphinx_docstring_and_typing_optional():
    props = tool_from_function(sphinx).parameters["properties"]
    assert props == {"flag": {"type": "boolean", "description": "Whether it is on."},
                     "label": {"type": ["string", "null"], "description": "A label for it.",
                               "default": None}}


def test_enum_annotated_dict_and_no_docstring():
    tool = tool_from_function(with_enum)
    assert tool.description == ""
    assert tool.parameters["properties"] == {
        "color": {"type": "string", "enum": ["red", "blue"]},
        "note": {"type": "string", "description": "Free text", "default": ""},
        "tags": {"type": "object", "additionalProperties": {"type": "integer"}, "default": {}},
    }
    assert tool.validate({"color": "blue"}) == {"color": Color.BLUE}


def test_pydantic_model_parameter():
    pydantic = pytest.importorskip("pydantic")

    class Point(pydantic.BaseModel):
        x: int
        y: int = 0

    class Box(pydantic.BaseModel):
        corner: Point

    def draw(box: Box, scale: float = 1.0) -> str:
        """Draw a box."""
        return repr(box)

    tool = tool_from_function(draw)
    params = tool.parameters
    assert params["properties"]["box"] == {
        "properties": {"corner": {"$ref": "#/$defs/Point"}}, "required": ["corner"],
        "title": "Box", "type": "object"}
    assert params["$defs"] == {"Point": Point.model_json_schema()}  # hoisted to the root
    args = tool.validate({"box": {"corner": {"x": 1}}, "scale": 2})
    assert args["box"] == Box(corner=Point(x=1)) and args["scale"] == 2.0
    assert isinstance(args["scale"], float)
    with pytest.raises(InvalidParamsError, match=r"'box' is not a valid Box: corner\.x"):
        tool.validate({"box": {"corner": {"x": "one"}}})


async def test_async_functions_and_callables():
    async def fetch(url: str) -> str:
        return url

    class Counter:
        async def __call__(self, step: int = 1) -> int:
            return step

    assert tool_from_function(fetch).is_async
    assert not tool_from_function(google).is_async
    assert tool_from_function(Counter(), name="counter").is_async


@pytest.mark.parametrize("fn, message", [
    (lambda *values: 0, "parameter '\\*values'"),
    (lambda **opts: 0, "parameter '\\*\\*opts'"),
])
def test_star_parameters_are_refused(fn, message):
    with pytest.raises(InvalidParamsError, match=message):
        tool_from_function(fn, name="star")


def test_unsupported_annotation_names_the_parameter():
    class Frame:
        pass

    def summarize(df: Frame, n: int = 3) -> str:
        return ""

    with pytest.raises(InvalidParamsError, match="parameter 'df' has the type .*Frame") as info:
        tool_from_function(summarize)
    assert info.value.param == "df"
    with pytest.raises(InvalidParamsError, match="fixed-length tuple"):
        tool_from_function(_fixed_tuple)


def _fixed_tuple(pair: tuple[int, int]) -> int:
    return 0


def test_lambda_needs_a_name():
    with pytest.raises(InvalidParamsError, match="'<lambda>' is not allowed"):
        tool_from_function(lambda: 0)


# -- validation ----------------------------------------------------------------------------------
@pytest.mark.parametrize("arguments, message", [
    ({}, "missing required argument 'city'"),
    ({"city": "Paris", "when": "now"}, "unknown argument 'when'"),
    ({"city": 3}, "'city' must be a string, got integer 3"),
    ({"city": "Paris", "days": True}, "'days' must be an integer, got boolean True"),
    ({"city": "Paris", "days": 2.5}, "'days' must be an integer, got number 2.5"),
    ({"city": "Paris", "units": "kelvin"}, r"'units' must be one of \['metric', 'imperial'\]"),
    ('{"city": "Par', "the arguments are not a JSON object"),
    ([1, 2], "the arguments must be a JSON object, got array"),
])
def test_validation_errors_read_well(arguments, message):
    tool = tool_from_function(google)
    with pytest.raises(InvalidParamsError, match=message) as info:
        tool.validate(arguments)
    text = str(info.value)
    assert text.startswith("Invalid arguments for tool 'google': ")
    assert text.endswith("Its parameters: city: string, days: integer = 3, "
                         'units: string = "metric".')


def test_validation_converts_and_checks_nested_items():
    tool = tool_from_function(numpy_style)
    assert tool.validate({"values": [1, 2.0], "scale": None}) == {"values": [1, 2],
                                                                   "scale": None}
    with pytest.raises(InvalidParamsError, match=r"'values\[1\]' must be an integer") as info:
        tool.validate({"values": [1, "2"]})
    assert info.value.param == "values"
    with pytest.raises(InvalidParamsError, match="'scale' must be a number, got string") as info:
        tool.validate({"values": [], "scale": "x"})
    assert "null" not in str(info.value).split(".")[0]  # "or must be null" is noise
    assert tool_from_function(with_enum).validate({"color": "red", "tags": {"a": 1.0}}) == {
        "color": Color.RED, "tags": {"a": 1}}
    with pytest.raises(InvalidParamsError, match="missing required argument 'values'"):
        tool.validate(None)


def test_tool_schemas_accepts_functions_tools_and_dicts():
    schema = {"type": "function", "function": {"name": "x", "parameters": {"type": "object"}}}
    tool = tool_from_function(sphinx)
    assert tool_schemas([google, tool, schema]) == [
        tool_from_function(google).to_schema(), tool.to_schema(), schema]
    assert tool_schemas([]) is None and tool_schemas(None) is None
    assert isinstance(tool, Tool)


def test_unresolvable_hint_names_the_parameter():
    def lookup(key: "Nowhere", n: "int" = 1) -> str:  # noqa: F821
        return ""

    with pytest.raises(InvalidParamsError, match="parameter 'key' \\('Nowhere'\\) cannot be"):
        tool_from_function(lookup)

    def fine(n: "int" = 1) -> str:
        return ""

    assert tool_from_function(fine).parameters["properties"]["n"]["type"] == "integer"


# -- the seam: request bodies --------------------------------------------------------------------
import asyncio  # noqa: E402
import json  # noqa: E402

from gleitzeit_nb.core.backend import ChatRequest, ToolCall  # noqa: E402
from gleitzeit_nb.core.protocol import LLM_PROTOCOL_V1, validate_params  # noqa: E402
from gleitzeit_nb.core.requests import chat_request  # noqa: E402
from gleitzeit_nb.providers.ollama import payload as ollama_payload  # noqa: E402
from gleitzeit_nb.providers.openai import payload as openai_payload  # noqa: E402
from gleitzeit_nb.replay.keys import chat_request_key, key_of  # noqa: E402

from .openai_fake import USAGE, FakeServer, delta, sse  # noqa: E402

WEATHER = tool_from_function(google).to_schema()
#: A two-round conversation in the seam's neutral shapes: the call as a ToolCall, then its result.
CONVERSATION = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "",
     "tool_calls": [ToolCall(name="google", arguments={"city": "Paris"}, id="call_1")]},
    {"role": "tool", "content": "Sunny", "tool_name": "google", "tool_call_id": "call_1"},
]


def tools_params(**more):
    params = {"model": "m", "messages": CONVERSATION, "tools": [google], **more}
    validate_params(LLM_PROTOCOL_V1, "chat", params)
    return chat_request("chat", params)


def test_ollama_body_carries_tools_calls_and_results():
    body = ollama_payload.build_chat_body(tools_params(temperature=0))
    assert body == {
        "model": "m",
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": "",
             "tool_calls": [{"function": {"name": "google", "arguments": {"city": "Paris"}}}]},
            {"role": "tool", "content": "Sunny", "tool_name": "google"},
        ],
        "stream": True,
        "options": {"temperature": 0},
        "tools": [WEATHER],
    }
    json.dumps(body)  # sendable as is


def test_openai_body_carries_tools_calls_and_results():
    body = openai_payload.build_chat_body(tools_params())
    assert body == {
        "model": "m",
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": "",
             "tool_calls": [{"id": "call_1", "type": "function",
                             "function": {"name": "google", "arguments": '{"city": "Paris"}'}}]},
            {"role": "tool", "content": "Sunny", "tool_call_id": "call_1"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [WEATHER],
    }


def test_calls_in_either_api_shape_and_raw_arguments():
    ollama_shape = {"function": {"name": "f", "arguments": {"a": 1}}}
    openai_shape = {"id": "c9", "type": "function",
                    "function": {"name": "f", "arguments": '{"a": 1}'}}
    assert ToolCall.of(ollama_shape) == ToolCall("f", {"a": 1})
    assert ToolCall.of(openai_shape) == ToolCall("f", {"a": 1}, "c9")
    bad = ToolCall.of({"name": "f", "arguments": '{"a": '})
    assert bad.arguments == '{"a": ' and bad.arguments_error.startswith("not valid JSON")
    msg = {"role": "assistant", "content": "", "tool_calls": [bad]}
    assert openai_payload.to_message(msg)["tool_calls"][0]["function"]["arguments"] == '{"a": '
    assert ollama_payload.to_message(msg)["tool_calls"] == [{"function": {"name": "f",
                                                                          "arguments": {}}}]
    plain = {"role": "user", "content": "hi"}
    assert ollama_payload.to_message(plain) is plain  # untouched, not copied
    assert openai_payload.to_message({"role": "assistant", "content": "x", "tool_calls": []}) \
        == {"role": "assistant", "content": "x"}


@pytest.mark.parametrize("tools, message", [
    ("google", "Parameter 'tools' of chat must be array"),
    ([{"type": "function"}], r"tools\[0\] must be a function, a Tool or a schema"),
    ([{"type": "function", "function": {"name": "f", "parameters": []}}], "'parameters' must be"),
])
def test_protocol_checks_tools(tools, message):
    with pytest.raises(InvalidParamsError, match=message):
        validate_params(LLM_PROTOCOL_V1, "chat", {"model": "m", "messages": CONVERSATION,
                                                  "tools": tools})


def test_protocol_checks_tool_message_fields():
    for msg, message in [({"role": "assistant", "content": "", "tool_calls": "f()"},
                          r"\['tool_calls'\] must be a list"),
                         ({"role": "tool", "content": "1", "tool_call_id": 7},
                          r"\['tool_call_id'\] must be a string")]:
        with pytest.raises(InvalidParamsError, match=message):
            validate_params(LLM_PROTOCOL_V1, "chat", {"model": "m", "messages": [msg]})


def test_replay_key_covers_tools_and_tool_messages():
    base = tools_params()
    key = key_of(chat_request_key("ollama", base))
    assert chat_request_key("ollama", base)["tools"] == [WEATHER]

    def changed(**kw):
        return key_of(chat_request_key("ollama", ChatRequest(**{**base.__dict__, **kw})))

    def other(city: str, days: int = 4) -> str:  # same name, another default
        """Weather forecast for a city."""
        return city

    assert changed(tools=[tool_from_function(other, name="google").to_schema()]) != key
    assert changed(tools=None) != key
    renamed = [*CONVERSATION[:2], {**CONVERSATION[2], "tool_call_id": "call_2"}]
    assert changed(messages=renamed) != key
    as_dicts = [CONVERSATION[0], {**CONVERSATION[1], "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "google", "arguments": '{"city": "Paris"}'}}]}, CONVERSATION[2]]
    assert changed(messages=as_dicts) == key  # the same call in the API's shape keys alike
    no_tools = ChatRequest(model="m", messages=[CONVERSATION[0]])
    assert "tools" not in chat_request_key("ollama", no_tools)  # old keys unchanged


# -- the seam: streams ---------------------------------------------------------------------------
@pytest.fixture
async def ollama_tool_server():
    """An Ollama stand-in: one NDJSON reply with a tool call line, then done with "stop"."""
    lines = [
        {"model": "m", "message": {"role": "assistant", "content": "Let me look."}, "done": False},
        {"model": "m", "message": {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"index": 0, "name": "google", "arguments": {"city": "Paris"}}},
            {"id": "call_b", "function": {"index": 1, "name": "google",
                                          "arguments": {"city": "Rome", "days": 2}}}]},
         "done": False},
        {"model": "m", "message": {"role": "assistant", "content": ""}, "done": True,
         "done_reason": "stop", "eval_count": 12, "prompt_eval_count": 30},
    ]
    bodies = []

    async def handle(reader, writer):
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        length = int(next(h.split(":")[1] for h in head.split("\r\n")
                          if h.lower().startswith("content-length")))
        bodies.append(json.loads(await reader.readexactly(length)))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
                     b"Connection: close\r\n\r\n")
        for line in lines:
            writer.write(json.dumps(line).encode() + b"\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", bodies
    server.close()


async def test_ollama_stream_reads_tool_calls(ollama_tool_server):
    from gleitzeit_nb.providers import OllamaProvider

    url, bodies = ollama_tool_server
    async with OllamaProvider(base_url=url) as provider:
        stream = await provider.stream_chat(tools_params())
        chunks = [c async for c in stream]
    calls = [ToolCall("google", {"city": "Paris"}), ToolCall("google", {"city": "Rome", "days": 2},
                                                             "call_b")]
    assert stream.tool_calls == calls and stream.text == "Let me look."
    assert [c.tool_calls for c in chunks] == [None, calls, None]  # on the chunk they came in
    assert chunks[-1].done and stream.usage.finish_reason == "stop"
    assert bodies[0]["tools"] == [WEATHER]


async def test_openai_stream_assembles_split_arguments():
    from gleitzeit_nb.providers import OpenAICompatibleProvider

    async with FakeServer() as fake, OpenAICompatibleProvider(base_url=fake.url,
                                                              timeout=5) as provider:
        fake.script.append(sse(  # after the provider's health check
            delta("", role="assistant"),
            delta(tool_calls=[{"index": 0, "id": "call_a", "type": "function",
                               "function": {"name": "google", "arguments": ""}}]),
            delta(tool_calls=[{"index": 1, "id": "call_b", "type": "function",
                               "function": {"name": "google", "arguments": '{"ci'}}]),
            delta(tool_calls=[{"index": 0, "function": {"arguments": '{"city": "Pa'}}]),
            delta(tool_calls=[{"index": 1, "function": {"arguments": 'ty": "Rome", '}}]),
            delta(tool_calls=[{"index": 0, "function": {"arguments": 'ris"}'}}]),
            delta(tool_calls=[{"index": 1, "function": {"arguments": '"days": 2'}}]),  # no }
            delta(finish="tool_calls"), USAGE))
        stream = await provider.stream_chat(tools_params())
        chunks = [c async for c in stream]
    first, second = stream.tool_calls
    assert first == ToolCall("google", {"city": "Paris"}, "call_a")
    assert (second.name, second.id, second.arguments) == (
        "google", "call_b", '{"city": "Rome", "days": 2')
    assert second.arguments_error and "not valid JSON" in second.arguments_error
    assert chunks[-1].done and chunks[-1].tool_calls == stream.tool_calls
    assert stream.usage.finish_reason == "tool_calls" and stream.text == ""
    sent = fake.requests[-1]["json"]
    assert sent["tools"] == [WEATHER] and sent["messages"][2]["tool_call_id"] == "call_1"
    with pytest.raises(InvalidParamsError, match="the arguments are not a JSON object"):
        tool_from_function(google).validate(second.arguments)
