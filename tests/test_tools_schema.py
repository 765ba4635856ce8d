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
