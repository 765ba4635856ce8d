"""``LLMSettingsTraits``: the ``%config LLMMagics`` settings as traitlets, mirrored into
``SETTINGS`` (the one settings object every entry point reads)."""

from __future__ import annotations

from typing import Any

from traitlets import (All, Bool, Callable, Enum, Float, Int, TraitError, Unicode, Union, observe,
                       validate)
from traitlets.config import Configurable

from ..app.settings import SETTINGS, Settings
from ..providers.servers import APIS

_D = Settings()  # the defaults, written once (in Settings)


class LLMSettingsTraits(Configurable):
    """The settings part of ``LLMMagics`` (``%config LLMMagics`` lists them)."""

    host = Unicode(_D.host, help="Server URL or a name from %llm_host; empty: OLLAMA_HOST, else "
                            "127.0.0.1:11434. A URL ending in /v1 is an OpenAI-compatible server "
                            "(llama.cpp, vLLM, LM Studio, Ollama's /v1)").tag(config=True)
    api = Enum(list(APIS), _D.api,
               help="The server's API; auto: openai for a URL ending in /v1, else ollama").tag(config=True)
    api_key_env = Unicode(_D.api_key_env, help="Name of the environment variable holding the API key of "
                                   "`host` (the key itself is never a setting)").tag(config=True)
    model = Unicode(_D.model, help="Chat model; empty: a loaded model, else the first installed").tag(config=True)
    vision_model = Unicode(_D.vision_model, help="Model for images (%vision, chat(images=…), the vision panel, batch(images=True)); empty: a vision model on the server").tag(config=True)
    embed_model = Unicode(_D.embed_model, help="Model for embed(); empty: `model` if it can embed, else an "
                                   "embedding model on the server").tag(config=True)
    timeout = Float(_D.timeout, help="Seconds for a reply to start (model load included)").tag(config=True)
    chunk_timeout = Float(_D.chunk_timeout, help="Seconds a started reply may pause before it counts as "
                                     "stalled").tag(config=True)
    deadline = Float(_D.deadline, allow_none=True, help="Seconds a whole reply may take (None: no "
                                                 "limit)").tag(config=True)
    temperature = Float(_D.temperature, allow_none=True, help="Default temperature, 0–2 (None: the model's)").tag(config=True)
    max_tokens = Int(_D.max_tokens, allow_none=True, help="Default reply length limit in tokens").tag(config=True)
    num_ctx = Int(_D.num_ctx, allow_none=True,
                  help="Context size in tokens to ask for (Ollama's num_ctx; an OpenAI-compatible "
                       "server's is fixed when it starts). None: the server's").tag(config=True)
    table_budget = Int(_D.table_budget, help="Tokens a DataFrame in a prompt may take; a larger one "
                       "is sent as a summary ({df:full} sends it whole)").tag(config=True)
    system = Unicode(_D.system, allow_none=True, help="Default system prompt").tag(config=True)
    max_image_edge = Int(_D.max_image_edge, help="Longest image edge sent to vision models, in pixels").tag(config=True)
    show_stats = Bool(_D.show_stats, help="Show the tokens / speed footer under replies").tag(config=True)
    display = Enum(["auto", "live", "final"], _D.display,
                   help="live: stream updates; final: one output at the end (headless runs, nbval); "
                        "auto: live under a Jupyter front end, final otherwise").tag(config=True)
    max_tool_rounds = Int(_D.max_tool_rounds, help="Rounds of tool calls (--tools) before the "
                          "model must answer").tag(config=True)
    tool_approval = Union([Enum(["never", "always"]), Callable()], default_value=_D.tool_approval,
                          help="Ask before running a tool call: never, always (buttons in the "
                               "notebook), or a function given the call that returns True to "
                               "run it").tag(config=True)
    debug = Bool(False, help="Show full tracebacks for gleitzeit_nb errors").tag(config=True)
    replay = Enum(["off", "record", "replay", "auto"], "off",
                  help="Record/replay of calls: record (always live, store replies), replay (only "
                       "recordings; a miss is an error), auto (replay hits, record misses). "
                       "GLEITZEIT_REPLAY overrides").tag(config=True)
    store = Unicode("", help="Recordings folder; empty: llm-replay beside the notebook. "
                             "GLEITZEIT_STORE overrides").tag(config=True)

    @observe("replay", "store")
    def _replay_changed(self, change: dict[str, Any]) -> None:
        from ..replay import configure

        configure(self.replay, self.store or None)

    @observe(All)
    def _setting_changed(self, change: dict[str, Any]) -> None:
        """Every setting that ``Settings`` has goes there, for chat(), batch(), panels…"""
        if change["name"] in SHARED:
            setattr(SETTINGS, change["name"], change["new"])

    @validate("temperature")
    def _check_temperature(self, proposal: dict[str, Any]) -> float | None:
        value = proposal["value"]
        if value is not None and not 0 <= value <= 2:
            raise TraitError(f"temperature must be between 0 and 2, not {value}")
        return value

    @validate("max_tokens", "max_image_edge", "max_tool_rounds", "num_ctx", "table_budget")
    def _check_positive(self, proposal: dict[str, Any]) -> int | None:
        value = proposal["value"]
        if value is not None and value < 1:
            raise TraitError(f"{proposal['trait'].name} must be at least 1, not {value}")
        return value

    @validate("timeout", "chunk_timeout", "deadline")
    def _check_timeout(self, proposal: dict[str, Any]) -> float | None:
        value = proposal["value"]
        if value is not None and value <= 0:
            raise TraitError(f"{proposal['trait'].name} must be a positive number of seconds")
        return value


#: Settings shared with ``chat()``, ``batch()``, ``embed()`` and the panels.
SHARED = tuple(name for name in Settings.__dataclass_fields__ if name != "servers")
