"""Providers: implementations of the backend seam (``gleitzeit_nb.core.backend``) on real
server APIs, one package per API."""

from .ollama import ChatStream, OllamaProvider
from .openai import OpenAICompatibleProvider

__all__ = ["OllamaProvider", "ChatStream", "OpenAICompatibleProvider"]
