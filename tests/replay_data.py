"""Requests and recordings shared by the record/replay tests."""

from __future__ import annotations

import base64

from gleitzeit_nb.replay import Recording

IMAGE = bytes(range(256)) * 40
OTHER_IMAGE = IMAGE[:-1] + b"\x00"


def request(**changes):
    """A 3-turn chat with an image in the first turn, plus options; ``changes`` override."""
    req = {
        "provider": "ollama", "model": "llama3.2:latest",
        "messages": [
            {"role": "user", "content": "What is in this picture?",
             "images": [base64.b64encode(IMAGE).decode()]},
            {"role": "assistant", "content": "A gradient."},
            {"role": "user", "content": "Which colours?"},
        ],
        "options": {"temperature": 0.7, "seed": 42, "max_tokens": 200, "num_ctx": 4096,
                    "format": "json", "think": True, "system": "Be brief."},
    }
    options = {**req["options"], **changes.pop("options", {})}
    return {**req, **changes, "options": options}


def rec(text="Blue and green.") -> Recording:
    return Recording(text=text, thinking="hmm", stats={"eval_count": 5, "done_reason": "stop"},
                     done_reason="stop", model="llama3.2:latest")
