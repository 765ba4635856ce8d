"""Text put into prompts that stays the same from run to run: bounded, without memory
addresses (a replay key hashes the prompt)."""

from __future__ import annotations

import re

__all__ = ["cut", "hide_addresses"]

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


def cut(text: str, limit: int) -> str:
    """``text``, cut to ``limit`` characters with a final ``…`` when longer."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def hide_addresses(text: str) -> str:
    """``text`` with memory addresses (``0x7f3615ae04d0``, as in a default repr) as ``0x…``."""
    return _ADDRESS.sub("0x…", text)
