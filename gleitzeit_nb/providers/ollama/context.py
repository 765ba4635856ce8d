"""The context size an Ollama chat request gets, from ``/api/show`` and ``/api/ps``.

Ollama decides it in this order: the request's ``options.num_ctx``; the model's ``num_ctx``
parameter (its Modelfile); the server's default, which is ``OLLAMA_CONTEXT_LENGTH`` when set,
else chosen by the server's VRAM since Ollama 0.15.5 (4,096 tokens below 24 GiB, 32,768 up to
48 GiB, 262,144 above; 2,048 or 4,096 in older versions). The default is only visible once the
model is loaded (``/api/ps`` ``context_length``); before that a loopback server is assumed to
read this process's ``OLLAMA_CONTEXT_LENGTH``, else 4,096 (the smallest current default). The
model's trained maximum (``<arch>.context_length``) caps every value, as Ollama does.
"""

from __future__ import annotations

import os
import re
from typing import Any

from ...core.backend import ContextInfo
from ..http import is_loopback

#: What Ollama allocates with no num_ctx anywhere, on a machine below 24 GiB of VRAM.
DEFAULT_CONTEXT = 4096
HINT = "--num-ctx N on %%llm, num_ctx= in chat() (Ollama's options.num_ctx)"
_PARAMETER = re.compile(r"^\s*num_ctx\s+(\d+)\s*$", re.M)


def trained_context(show: dict[str, Any]) -> int | None:
    """The model's trained maximum from ``/api/show`` ``model_info``."""
    for key, value in (show.get("model_info") or {}).items():
        if key.endswith(".context_length") and isinstance(value, int) and value > 0:
            return value
    return None


def parameter_context(show: dict[str, Any]) -> int | None:
    """The ``num_ctx`` parameter of the model's Modelfile, when it has one."""
    found = _PARAMETER.search(str(show.get("parameters") or ""))
    return int(found.group(1)) if found else None


def loaded_context(running: list[dict[str, Any]], model: str) -> int | None:
    """The context the loaded model runs with (``/api/ps``), if it is loaded."""
    for entry in running:
        if model in (entry.get("name"), entry.get("model")):
            value = entry.get("context_length")
            return value if isinstance(value, int) and value > 0 else None
    return None


def env_context(base_url: str) -> int | None:
    """``OLLAMA_CONTEXT_LENGTH`` from this environment, for a loopback server."""
    value = os.environ.get("OLLAMA_CONTEXT_LENGTH", "").strip()
    if not (value.isdigit() and int(value) > 0 and is_loopback(base_url)):
        return None
    return int(value)


def context_info(show: dict[str, Any], running: list[dict[str, Any]], model: str,
                 base_url: str, num_ctx: int | None = None) -> ContextInfo:
    """The context size a request for ``model`` gets (see the module docstring)."""
    trained = trained_context(show)
    choices = ((num_ctx, "this request's num_ctx"),
               (parameter_context(show), "the model's num_ctx parameter"),
               (loaded_context(running, model), "the loaded model (ollama ps)"),
               (env_context(base_url), "OLLAMA_CONTEXT_LENGTH"),
               (DEFAULT_CONTEXT, "Ollama's default below 24 GiB of VRAM"))
    tokens, source = next((v, s) for v, s in choices if v)
    if trained and tokens > trained:
        tokens, source = trained, f"the model's trained maximum ({source} asks for more)"
    return ContextInfo(tokens, source, adjustable=True, trained=trained, hint=HINT)
