"""Requests and recordings shared by the record/replay tests."""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib

from gleitzeit_nb.core.requests import chat_request
from gleitzeit_nb.replay import Recording, chat_request_key


def _png(pixels: bytes, width: int = 64, height: int = 64) -> bytes:
    """An RGB PNG, stored uncompressed (~12 kB, so its base64 takes the keys' long-text path)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    rows = b"".join(b"\x00" + pixels[y * width * 3:(y + 1) * width * 3] for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 0)) + chunk(b"IEND", b""))


_PIXELS = bytes((x * 4, y * 4, (x + y) * 2) [c] for y in range(64) for x in range(64) for c in range(3))
IMAGE = _png(_PIXELS)
OTHER_IMAGE = _png(_PIXELS[:-1] + b"\x00")  # one colour value of one pixel differs


def params(**changes) -> dict:
    """``llm/v1`` chat params: a 3-turn chat with an image in the first turn, plus options.

    ``changes`` override (a value of None removes the parameter).
    """
    p = {
        "model": "llama3.2:latest",
        "messages": [
            {"role": "user", "content": "What is in this picture?",
             "images": [base64.b64encode(IMAGE).decode()]},
            {"role": "assistant", "content": "A gradient."},
            {"role": "user", "content": "Which colours?"},
        ],
        "temperature": 0.7, "seed": 42, "max_tokens": 200, "num_ctx": 4096,
        "format": "json", "think": True, "system": "Be brief.",
    }
    p.update(changes)
    return {k: v for k, v in p.items() if v is not None}


def request(base: dict | None = None, *, api: str = "ollama", method: str = "chat",
            **changes) -> dict:
    """The canonical request (what ``Replayer.key`` / ``find`` take) of the params ``base``
    (default: ``params(**changes)``)."""
    return chat_request_key(api, chat_request(method, params(**changes) if base is None else base))


def rec(text="Blue and green.") -> Recording:
    return Recording(text=text, thinking="hmm", stats={"output_tokens": 5, "finish_reason": "stop"},
                     done_reason="stop", model="llama3.2:latest")


def key(name: object) -> str:
    """A well-formed store key ("sha256:" + 64 hex digits) named by ``name``."""
    return "sha256:" + hashlib.sha256(str(name).encode()).hexdigest()
