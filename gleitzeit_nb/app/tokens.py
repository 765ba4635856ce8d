"""A cheap estimate of how many tokens a text or a whole chat request takes.

No tokenizer is loaded: tokenizers differ by model and none is installed with the kit. The
estimate counts what tokenizers agree on: about 4 ASCII letters make a token, every digit is a
token (most tokenizers split numbers into digits; Llama 3's groups of three make it overshoot
there), punctuation costs 3/4, a run of whitespace other than one space (indentation, a
table's padding, a newline) 0.8, an accented Latin letter 2 (it splits its word), other
alphabets' letters cost 0.45 and CJK characters 0.8.

Measured against real tokenizers (``bench/token_estimate.py``: SmolLM2 through llama.cpp's
``/tokenize``, Llama 3 and Qwen3) the true count is 0.73–1.2× the estimate for English prose,
code, tables, CSV, JSON, German, French, Spanish, Russian and Chinese, except SmolLM2 (an
English model) on non-English text (up to 2×). :data:`OVERSHOOT` and :data:`UNDERSHOOT` are
those bounds; the pre-send check refuses only beyond them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["estimate_tokens", "estimate_messages", "OVERSHOOT", "UNDERSHOOT", "IMAGE_TOKENS"]

#: The estimate may be this much above the true count (it was 1/0.73 at most, measured).
OVERSHOOT = 1.4
#: ... and the true count this much above the estimate (1.2 at most, SmolLM2 on non-English
#: text aside).
UNDERSHOOT = 1.25
#: An image, whatever its size: LLaVA takes 576 tokens, Gemma 3 256, Qwen2.5-VL ~1,300 at
#: 1024 px; the servers publish no figure.
IMAGE_TOKENS = 768
#: A message's chat-template markers (role, separators).
MESSAGE_TOKENS = 6
#: What a chat template adds once (a default system prompt, date lines, the reply's header).
TEMPLATE_TOKENS = 32

_CJK = re.compile(r"[\u2e80-\u2fff\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_ASCII_LETTER = re.compile(r"[A-Za-z]")
_LATIN_ACCENTED = re.compile(r"[\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff]")
_LETTER = re.compile(r"[^\W\d_]")
_DIGIT = re.compile(r"\d")
_PUNCT = re.compile(r"[^\w\s]|_")
_SPACING = re.compile(r"\s{2,}|[^\S ]")


def estimate_tokens(text: str) -> int:
    """About how many tokens ``text`` is (see the module docstring for how good it is)."""
    if not text:
        return 0
    cjk = len(_CJK.findall(text))
    ascii_letters = len(_ASCII_LETTER.findall(text))
    accented = len(_LATIN_ACCENTED.findall(text))
    other = len(_LETTER.findall(text)) - ascii_letters - accented - cjk
    estimate = (0.25 * ascii_letters + 2.0 * accented + 0.45 * max(other, 0) + 0.8 * cjk
                + len(_DIGIT.findall(text)) + 0.75 * len(_PUNCT.findall(text))
                + 0.8 * len(_SPACING.findall(text)))
    return max(1, round(estimate))


def estimate_messages(messages: Iterable[dict[str, Any]],
                      tools: list[dict[str, Any]] | None = None) -> int:
    """About how many tokens a chat request's prompt is: every message's text (and its tool
    calls), :data:`IMAGE_TOKENS` per image, the template's markers and the tool schemas."""
    total = TEMPLATE_TOKENS
    for message in messages:
        total += MESSAGE_TOKENS + estimate_tokens(str(message.get("content") or ""))
        total += IMAGE_TOKENS * len(message.get("images") or ())
        if message.get("tool_calls"):
            total += estimate_tokens(json.dumps(message["tool_calls"], default=str))
    if tools:
        total += estimate_tokens(json.dumps(tools))
    return total
