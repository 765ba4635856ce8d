"""Providers: implementations of the core protocols on real servers."""

from .ollama import ChatStream, ModelInfo, OllamaProvider, StreamChunk

__all__ = ["OllamaProvider", "ChatStream", "StreamChunk", "ModelInfo"]
