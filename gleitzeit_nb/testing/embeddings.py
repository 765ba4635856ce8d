"""Deterministic embeddings: unit-norm vectors built from hashes of a text's
words (so texts sharing words are more similar) plus a whole-text term."""

from __future__ import annotations

import hashlib
import math
import random
import re
from functools import lru_cache

_TEXT_WEIGHT = 0.35


@lru_cache(maxsize=8192)
def _hashed_vector(key: str, dim: int) -> tuple[float, ...]:
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    gauss = random.Random(seed).gauss
    return tuple(gauss(0.0, 1.0) for _ in range(dim))


def normalize(vector: list[float]) -> list[float]:
    """Scale to unit L2 norm (zero vectors are returned unchanged)."""
    norm = math.sqrt(sum(x * x for x in vector))
    if norm == 0:
        return vector
    return [x / norm for x in vector]


def embed_text(text: str, dim: int) -> list[float]:
    """A deterministic unit-norm ``dim``-vector for ``text``."""
    words = re.findall(r"\w+", text.lower())
    vector = [x * _TEXT_WEIGHT for x in _hashed_vector("text:" + text, dim)]
    for word in words:
        for i, x in enumerate(_hashed_vector("word:" + word, dim)):
            vector[i] += x
    return [round(x, 7) for x in normalize(vector)]


def truncate_dimensions(vector: list[float], dimensions: int) -> list[float]:
    """Keep the first ``dimensions`` components and re-normalise (like Ollama)."""
    return [round(x, 7) for x in normalize(vector[:dimensions])]
