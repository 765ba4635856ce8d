"""Requests, images and a pydantic schema shared by the simulator tests."""

from __future__ import annotations

import base64
import io
from typing import Literal, Optional

from PIL import Image
from pydantic import BaseModel

HELLO = [{"role": "user", "content": "Hello there, simulator!"}]


def image_b64(size=(4, 3), mode="RGB", fmt="PNG") -> str:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode()


class Address(BaseModel):
    street: str
    zip_code: int


class Person(BaseModel):
    name: str
    age: int
    score: float
    active: bool
    color: Literal["red", "blue"]
    tags: list[str]
    address: Address
    previous: Optional[Address] = None


def chat_bodies(sim) -> list[dict]:
    """The bodies of the chat requests the simulator got, on either API, in order."""
    return [r.body for r in sim.requests if r.path in ("/api/chat", "/v1/chat/completions")]
