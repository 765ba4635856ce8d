"""One settings object for every entry point: magics, ``chat()``, panels, ``batch()``, ``embed()``.

``SETTINGS`` holds this process's defaults. In a notebook ``%config LLMMagics.<name> = …``
writes here (``LLMMagics`` is its ``%config`` front end); scripts may set attributes directly.
Keyword arguments override per call. Named servers (``%llm_host add``) live in ``servers``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import InvalidParamsError
from ..core.secret import Secret
from ..providers.servers import api_of


@dataclass(frozen=True)
class Server:
    """Where requests go: a URL, its API, and the environment variable holding its key.

    ``api_key_env`` names a variable; the key itself is read at request time and sent to this
    server only.
    """

    url: str
    api: str = "auto"
    api_key_env: str = ""

    def __post_init__(self) -> None:
        api_of(self.url, self.api)  # checks the API's name


@dataclass
class Settings:
    """Defaults for every request (see the module docstring); ``""`` / None: not set."""

    host: str = ""  # a URL or a server name; "": OLLAMA_HOST
    api: str = "auto"
    api_key_env: str = ""
    model: str = ""
    vision_model: str = ""
    embed_model: str = ""
    timeout: float = 120.0
    chunk_timeout: float = 60.0
    deadline: float | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    num_ctx: int | None = None  # context size to ask for (where the server takes one)
    table_budget: int = 2000  # tokens a DataFrame in a prompt may take before it is summarised
    system: str | None = None
    max_image_edge: int = 1024
    show_stats: bool = True
    display: str = "auto"
    max_tool_rounds: int = 8  # rounds of tool calls before a reply must be the answer
    tool_approval: Any = "never"  # "never", "always" or a function given the call -> bool
    servers: dict[str, Server] = field(default_factory=dict)

    def server(self, host: str | None = None, *, api: str | None = None,
               api_key_env: str | None = None) -> Server:
        """The server a call goes to: ``host`` (a URL or a name) or the default one.

        The configured ``api_key_env`` belongs to the configured ``host``: a call naming
        another URL sends no key unless it names one itself.
        """
        if host and host in self.servers:
            named = self.servers[host]
            return Server(named.url, api or named.api, api_key_env or named.api_key_env)
        if not host and self.host in self.servers:
            return self.server(self.host, api=api, api_key_env=api_key_env)
        if host and host != self.host:
            return Server(host, api or "auto", api_key_env or "")
        return Server(self.host, api or self.api, api_key_env or self.api_key_env)

    def add_server(self, name: str, url: str, *, api: str = "auto",
                   api_key_env: str = "") -> Server:
        """Name a server for ``--host NAME`` / ``host="NAME"``."""
        if not name.isidentifier():
            raise InvalidParamsError(f"A server name is a word like 'gpu1', not {name!r}.",
                                     param="name")
        self.servers[name] = Server(url, api, api_key_env)
        return self.servers[name]

    def model_for(self, images: bool) -> str | None:
        """The configured model for a request with or without images (None: let the server's
        models decide: a vision model is picked for images)."""
        return (self.vision_model if images else self.model) or None


def api_key(server: Server) -> Secret | None:
    """The key named by ``server.api_key_env``, read now; a clear error if it is not set."""
    if not server.api_key_env:
        return None
    value = os.environ.get(server.api_key_env, "").strip()
    if not value:
        raise InvalidParamsError(
            f"The environment variable {server.api_key_env} (the API key setting for "
            f"{server.url or 'the default server'}) is not set or empty. Set it before starting "
            "Jupyter, or in the notebook with os.environ[…] from a secret store.",
            param="api_key_env")
    return Secret(value)


SETTINGS = Settings()
