"""Deterministic reply text: tokenisation, the default word-salad generator,
thinking text, the ``[[tokens=N]]`` directive, ``num_predict`` and ``stop``."""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from .structured import json_mode_value, value_for_schema

#: Tokens in a default (unscripted, no directive) reply, including the echo.
DEFAULT_REPLY_TOKENS = 40
#: Tokens of default thinking text.
DEFAULT_THINKING_TOKENS = 24
#: ``[[tokens=N]]`` in the last user message asks for exactly N reply tokens.
TOKENS_DIRECTIVE = re.compile(r"\[\[tokens=(\d+)\]\]")
_ECHO_WORDS = 6

WORDS: tuple[str, ...] = tuple(
    """the a of to and in is it that for on with as this by from at be are
    was can will more data model local notebook token stream answer result
    value simple quick small large first next last every each other such
    context prompt reply output input server client request response cell
    kernel python function method class module package test check run runs
    build value list table chart graph image text word line number string
    fast slow clear open close start stop wait send read write load save
    good better best useful careful steady quiet bright early later often
    always never again here there where when while because although since
    therefore however indeed perhaps maybe likely surely certainly rather
    quite very really just only also still even yet already soon now then
    system process thread memory cache disk network socket buffer queue
    question idea plan step detail example summary note point part piece
    gleitzeit flexible schedule simulation offline research experiment""".split()
)

_THINK_OPENERS: tuple[str, ...] = (
    "Okay, let me think about this.",
    "Hmm, the user is asking something.",
    "Alright, I should work through this carefully.",
)


@dataclass
class ReplyPlan:
    """Everything a generation will emit, decided before the first byte is sent."""

    content: list[str]
    thinking: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    done_reason: str = "stop"

    @property
    def eval_count(self) -> int:
        """Generated tokens (thinking + content)."""
        return len(self.thinking) + len(self.content)

    @property
    def text(self) -> str:
        """The whole reply content."""
        return "".join(self.content)

    @property
    def thinking_text(self) -> str:
        """The whole thinking text."""
        return "".join(self.thinking)


@dataclass(frozen=True)
class ScriptedReply:
    """A reply queued with ``OllamaSimulator.reply_with``."""

    text: str
    thinking: str | None = None
    tool_calls: tuple[dict[str, Any], ...] = ()


def tokenize(text: str) -> list[str]:
    """Split text into word tokens that keep their trailing whitespace.

    ``"".join(tokenize(t)) == t`` always holds (leading whitespace stays with
    the first token)."""
    if not text:
        return []
    tokens = re.findall(r"\s*\S+\s*", text)
    if not tokens:
        return [text]
    return tokens


def stable_seed(*parts: Any) -> int:
    """A 64-bit seed from a JSON rendering of ``parts`` (stable across runs)."""
    blob = json.dumps(parts, sort_keys=True, default=repr, ensure_ascii=False)
    return int.from_bytes(hashlib.sha256(blob.encode()).digest()[:8], "big")


def words_to_tokens(words: Sequence[str]) -> list[str]:
    """Words joined by single spaces, one token per word (the last has no space)."""
    if not words:
        return []
    tokens = [w + " " for w in words]
    tokens[-1] = words[-1]
    return tokens


def filler_words(rng: random.Random, count: int) -> list[str]:
    """``count`` words forming sentences of 5–12 words, the last ending in '.'."""
    out: list[str] = []
    choice = rng.choice
    while len(out) < count:
        length = min(rng.randint(5, 12), count - len(out))
        sentence = [choice(WORDS) for _ in range(length)]
        sentence[0] = sentence[0].capitalize()
        sentence[-1] += "."
        out.extend(sentence)
    return out


def echo_words(text: str) -> list[str]:
    """A short echo of the user's message: ``You said: "first words…".``"""
    words = TOKENS_DIRECTIVE.sub(" ", text).split()
    if not words:
        return []
    picked = words[:_ECHO_WORDS]
    if len(words) > _ECHO_WORDS:
        picked[-1] += "…"
    picked[0] = '"' + picked[0]
    picked[-1] += '".'
    return ["You", "said:", *picked]


def requested_tokens(text: str) -> int | None:
    """N from a ``[[tokens=N]]`` directive in ``text``, if present."""
    match = TOKENS_DIRECTIVE.search(text or "")
    return int(match.group(1)) if match else None


def thinking_tokens(rng: random.Random, last_user: str) -> list[str]:
    """Deterministic thinking text (about ``DEFAULT_THINKING_TOKENS`` tokens)."""
    words = rng.choice(_THINK_OPENERS).split()
    topic = TOKENS_DIRECTIVE.sub(" ", last_user).split()[:4]
    if topic:
        words += ["They", "mention", *topic[:-1], topic[-1].rstrip(".?!") + "."]
    words += filler_words(rng, max(4, DEFAULT_THINKING_TOKENS - len(words)))
    return words_to_tokens(words)


def prompt_token_count(messages: Sequence[dict[str, Any]]) -> int:
    """Deterministic prompt size: whitespace words of every message + 4 per message."""
    total = 0
    for msg in messages:
        content = msg.get("content")
        total += 4 + (len(content.split()) if isinstance(content, str) else 0)
    return total


def apply_stop(tokens: list[str], stops: Sequence[str]) -> tuple[list[str], bool]:
    """Cut ``tokens`` before the first occurrence of any stop string."""
    stops = [s for s in stops if isinstance(s, str) and s]
    if not stops or not tokens:
        return tokens, False
    text = "".join(tokens)
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    if not hits:
        return tokens, False
    cut = min(hits)
    kept: list[str] = []
    used = 0
    for tok in tokens:
        if used + len(tok) >= cut:
            if cut - used > 0:
                kept.append(tok[: cut - used])
            break
        kept.append(tok)
        used += len(tok)
    return kept, True


def plan_reply(
    *,
    model: str,
    messages: Sequence[dict[str, Any]],
    options: dict[str, Any],
    think: bool,
    fmt: Any,
    image_descriptions: Sequence[str] = (),
    scripted: ScriptedReply | None = None,
) -> ReplyPlan:
    """Decide the full reply for one generation.

    Default replies depend only on (model, message chain, seed, temperature,
    think, format), so identical requests produce identical replies."""
    last_user = next((str(m.get("content") or "") for m in reversed(messages)
                      if m.get("role") == "user"), "")
    if scripted is not None:
        plan = ReplyPlan(content=tokenize(scripted.text),
                         thinking=tokenize(scripted.thinking or ""),
                         tool_calls=[dict(c) for c in scripted.tool_calls])
    else:
        chain = [[m.get("role"), m.get("content"), m.get("_image_digest")] for m in messages]
        rng = random.Random(stable_seed(model, chain, options.get("seed"),
                                        options.get("temperature"), think, fmt))
        plan = ReplyPlan(content=[])
        if think:
            plan.thinking = thinking_tokens(rng, last_user)
        if fmt == "json" or isinstance(fmt, dict):
            value = json_mode_value(rng, last_user) if fmt == "json" else value_for_schema(fmt, rng)
            plan.content = tokenize(json.dumps(value, ensure_ascii=False))
        else:
            target = requested_tokens(last_user)
            target = DEFAULT_REPLY_TOKENS if target is None else target
            prefix: list[str] = []
            for description in image_descriptions:
                prefix += description.split()
            prefix += echo_words(last_user)
            words = prefix[:target] + filler_words(rng, max(0, target - len(prefix)))
            plan.content = words_to_tokens(words)
    stops = options.get("stop") or []
    if isinstance(stops, str):
        stops = [stops]
    plan.content, _ = apply_stop(plan.content, stops)
    limit = options.get("num_predict")
    if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0 \
            and plan.eval_count > limit:
        keep_thinking = min(limit, len(plan.thinking))
        plan.thinking = plan.thinking[:keep_thinking]
        plan.content = plan.content[: limit - keep_thinking]
        plan.tool_calls = []
        plan.done_reason = "length"
    return plan
