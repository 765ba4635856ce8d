"""Structured outputs: deterministic JSON values for ``format: "json"`` and
for JSON-schema ``format`` dicts (as produced by pydantic's
``model_json_schema``: ``$defs``/``$ref``, ``anyOf`` with null, enums, ...)."""

from __future__ import annotations

import random
from typing import Any

_WORDS = ("alpha", "bravo", "delta", "local", "model", "note", "river", "stone",
          "quick", "amber", "cedar", "orbit", "pixel", "maple", "tempo", "ultra")
_MAX_DEPTH = 6


def json_mode_value(rng: random.Random, prompt: str) -> dict[str, Any]:
    """A small JSON object for ``format: "json"`` requests."""
    topic = " ".join(prompt.split()[:6]) or "nothing"
    return {
        "answer": " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 7))),
        "topic": topic,
        "confidence": round(rng.uniform(0.5, 0.99), 2),
        "tags": [rng.choice(_WORDS) for _ in range(rng.randint(1, 3))],
    }


class _SchemaFiller:
    def __init__(self, root: dict[str, Any], rng: random.Random) -> None:
        self.root = root
        self.rng = rng

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 32:
            ref = schema["$ref"]
            target: Any = self.root
            if isinstance(ref, str) and ref.startswith("#"):
                for part in ref.lstrip("#").strip("/").split("/"):
                    if not part:
                        continue
                    part = part.replace("~1", "/").replace("~0", "~")
                    target = target.get(part, {}) if isinstance(target, dict) else {}
            else:
                target = {}
            merged = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **merged} if isinstance(target, dict) else merged
            seen += 1
        return schema if isinstance(schema, dict) else {}

    def value(self, schema: Any, depth: int = 0, name: str = "") -> Any:
        if schema is True or not isinstance(schema, dict):
            return self.string({}, name)
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self.rng.choice(schema["enum"])
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                non_null = [o for o in options if self.resolve(o).get("type") != "null"]
                if not non_null or depth >= _MAX_DEPTH:
                    return None
                return self.value(non_null[0], depth + 1, name)
        if isinstance(schema.get("allOf"), list):
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                part = self.resolve(part)
                props = {**merged.get("properties", {}), **part.get("properties", {})}
                merged = {**merged, **part, "properties": props}
            rest = {k: v for k, v in schema.items() if k != "allOf"}
            return self.value({**merged, **rest}, depth, name)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            if "properties" in schema:
                kind = "object"
            elif "items" in schema or "prefixItems" in schema:
                kind = "array"
            else:
                kind = "string"
        if kind == "object":
            return self.object(schema, depth)
        if kind == "array":
            return self.array(schema, depth, name)
        if kind == "integer":
            return self.integer(schema)
        if kind == "number":
            return self.number(schema)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        return self.string(schema, name)

    def object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        props = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        out: dict[str, Any] = {}
        for key, sub in props.items():
            if depth >= _MAX_DEPTH and key not in required:
                continue
            out[key] = self.value(sub, depth + 1, key)
        if not props and depth == 0:
            out["result"] = self.string({}, "result")
        return out

    def array(self, schema: dict[str, Any], depth: int, name: str) -> list[Any]:
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list):
            return [self.value(s, depth + 1, name) for s in prefix]
        low = int(schema.get("minItems", 0) or 0)
        high = schema.get("maxItems")
        count = max(low, 2 if depth < _MAX_DEPTH else 0)
        if isinstance(high, int):
            count = min(count, high)
        items = schema.get("items", {})
        return [self.value(items, depth + 1, name) for _ in range(count)]

    def integer(self, schema: dict[str, Any]) -> int:
        low, high = self._bounds(schema, 0, 100)
        low_i, high_i = int(-(-low // 1)), int(high // 1)
        if "exclusiveMinimum" in schema and low_i <= schema["exclusiveMinimum"]:
            low_i = int(schema["exclusiveMinimum"]) + 1
        if "exclusiveMaximum" in schema and high_i >= schema["exclusiveMaximum"]:
            high_i = int(-(-schema["exclusiveMaximum"] // 1)) - 1
        value = self.rng.randint(low_i, max(low_i, high_i))
        step = schema.get("multipleOf")
        if isinstance(step, int) and step > 0:
            value = max(low_i, value - value % step)
        return value

    def number(self, schema: dict[str, Any]) -> float:
        low, high = self._bounds(schema, 0.0, 100.0)
        value = round(self.rng.uniform(low, high), 2)
        return min(max(value, low), high)

    @staticmethod
    def _bounds(schema: dict[str, Any], low: float, high: float) -> tuple[float, float]:
        low = schema.get("minimum", schema.get("exclusiveMinimum", low))
        high = schema.get("maximum", schema.get("exclusiveMaximum", max(high, low + 100)))
        return float(low), float(max(low, high))

    def string(self, schema: dict[str, Any], name: str) -> str:
        fmt = schema.get("format")
        if fmt == "date-time":
            text = f"2025-0{self.rng.randint(1, 9)}-1{self.rng.randint(0, 9)}T12:00:00Z"
        elif fmt == "date":
            text = f"2025-0{self.rng.randint(1, 9)}-1{self.rng.randint(0, 9)}"
        elif fmt == "time":
            text = f"1{self.rng.randint(0, 9)}:30:00"
        elif fmt == "email":
            text = f"{self.rng.choice(_WORDS)}@example.com"
        elif fmt in ("uri", "url"):
            text = f"https://example.com/{self.rng.choice(_WORDS)}"
        elif fmt == "uuid":
            text = "%08x-%04x-4%03x-8%03x-%012x" % tuple(
                self.rng.getrandbits(b) for b in (32, 16, 12, 12, 48))
        else:
            text = " ".join(self.rng.choice(_WORDS) for _ in range(self.rng.randint(1, 3)))
            if name and self.rng.random() < 0.5:
                text = f"{name} {text}"
        low = int(schema.get("minLength", 0) or 0)
        high = schema.get("maxLength")
        while len(text) < low:
            text += " " + self.rng.choice(_WORDS)
        if isinstance(high, int):
            text = text[:high]
        return text


def value_for_schema(schema: dict[str, Any], rng: random.Random) -> Any:
    """A deterministic value that validates against ``schema``."""
    return _SchemaFiller(schema, rng).value(schema)
