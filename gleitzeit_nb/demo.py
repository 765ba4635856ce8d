"""Terminal demo: stream a chat, a vision answer and an embedding from a real model.

    python -m gleitzeit_nb.demo [--simulator] [--host URL]

It uses the Ollama server at ``OLLAMA_HOST`` (or ``--host``, any server URL) when one answers,
else the built-in llama.cpp engine with its small packaged model (``gleitzeit_nb.local``), so it
gives real answers on any machine without a GPU. ``--simulator`` uses the bundled simulator
(stand-in text) instead.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import time
from typing import Any

from .core.errors import LLMError
from .core.provider import BackendProvider
from .providers.servers import open_backend


def _pick(infos: list[Any], capability: str, preferred: tuple[str, ...] = ()) -> str | None:
    """A model known to have ``capability``, else one whose capabilities are not published."""
    names = [i.name for i in infos if i.can(capability)] or \
        [i.name for i in infos if i.can(capability) is None]
    for p in preferred:
        if p in names:
            return p
    return names[0] if names else None


def _demo_image() -> bytes:
    """A small chart-like picture drawn with Pillow (no files needed)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (320, 200), "white")
    draw = ImageDraw.Draw(img)
    for i, h in enumerate((60, 120, 90, 160)):
        draw.rectangle((30 + i * 70, 190 - h, 80 + i * 70, 190), fill=(40, 90 + i * 40, 200))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


async def _stream(provider: BackendProvider, method: str, params: dict[str, Any]) -> None:
    out = sys.stdout
    stream = await provider.stream_request(method, params)
    async for chunk in stream:
        out.write(chunk.content)
        out.flush()
    usage = stream.usage
    rate = f", {usage.tokens_per_second:.0f} tok/s" if usage.tokens_per_second else ""
    out.write(f"\n  [{usage.output_tokens} tokens{rate}, {usage.finish_reason}]\n\n")


async def run(host: str | None, *, vision: bool = True) -> int:
    async with open_backend(host, timeout=300) as provider:
        infos = await provider.list_models()
        chat_model = _pick(infos, "completion", ("llama3.2:latest",))
        vision_model = _pick(infos, "vision", ("llava:latest", "gemma3:latest")) if vision \
            else None
        embed_model = _pick(infos, "embedding", ("nomic-embed-text:latest",))
        print(f"Server: {provider.base_url} — {len(infos)} models installed\n")

        if chat_model:
            print(f"## Chat with {chat_model}")
            await _stream(provider, "chat", {
                "model": chat_model, "temperature": 0.2, "seed": 7, "max_tokens": 120,
                "messages": [{"role": "user",
                              "content": "In two sentences: why do notebooks suit data exploration?"}]})
        else:
            print("No chat model installed: try `ollama pull llama3.2`.\n")

        if vision_model:
            print(f"## Vision with {vision_model} (a bar chart drawn with Pillow)")
            await _stream(provider, "vision", {
                "model": vision_model, "images": [_demo_image()], "max_tokens": 120,
                "messages": [{"role": "user", "content": "Describe this chart briefly."}]})
        elif vision:
            print("No vision model installed: try `ollama pull llava`.\n")
        else:
            print("(No vision: the built-in engine's small model reads no images; Ollama with a "
                  "vision model, e.g. `ollama pull llava`, or --simulator shows it.)\n")

        if embed_model:
            print(f"## Embedding with {embed_model}")
            result = await provider.handle_request("embed", {
                "model": embed_model, "input": ["notebooks", "local models"]})
            vectors = result["embeddings"]
            head = ", ".join(f"{x:+.3f}" for x in vectors[0][:4])
            print(f"  {len(vectors)} vectors of {len(vectors[0])} dimensions; first: [{head}, …]\n")
        else:
            print("No embedding model installed: try `ollama pull nomic-embed-text`.\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gleitzeit_nb.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--simulator", action="store_true",
                        help="use the bundled simulator even if Ollama is running")
    parser.add_argument("--host", help="Ollama URL (default: OLLAMA_HOST or 127.0.0.1:11434)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    server: Any = None
    host, vision = args.host, True
    try:
        if args.simulator:
            from .testing import OllamaSimulator

            server = OllamaSimulator(token_delay=0.01).start()
            host = server.url
            print(f"Using the bundled simulator at {host} (as asked): stand-in text, no model.")
        elif not asyncio.run(_answers(host)):
            from . import local

            print(f"No server answered at {host or 'OLLAMA_HOST'}: starting the built-in llama.cpp "
                  "engine with its small model (SmolLM2-135M: short, imperfect answers; a "
                  "bigger model gives better ones) …")
            server = local.start(slots=1)
            host, vision = server.url, False
            print(f"Engine ready at {host} in {time.perf_counter() - started:.1f} s.")
        return asyncio.run(run(host, vision=vision))
    except LLMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop()
        print(f"Done in {time.perf_counter() - started:.1f} s.")


async def _answers(host: str | None) -> bool:
    provider = open_backend(host, connect_timeout=1.0, timeout=3.0, max_retries=0)
    try:
        return (await provider.health_check())["healthy"]
    finally:
        await provider.shutdown()


if __name__ == "__main__":
    sys.exit(main())
