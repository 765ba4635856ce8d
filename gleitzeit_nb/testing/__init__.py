"""An offline, deterministic Ollama-compatible server (that also serves the
OpenAI API under ``/v1``) for tests, CI, benchmarks and machines without a GPU.

    from gleitzeit_nb.testing import OllamaSimulator

    with OllamaSimulator(token_delay=0.01) as sim:
        client = ollama.Client(host=sim.url)
        client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}])

    with OllamaSimulator(api_key="sk-test") as sim:
        openai.OpenAI(base_url=sim.url + "/v1", api_key="sk-test").chat.completions.create(...)

    sim.script_tools([{"name": "get_rows", "arguments": {"n": 3}}])  # with ``tools``:
    # the model calls get_rows, then answers "Based on get_rows: <the result>"

Run standalone with ``python -m gleitzeit_nb.testing --port 11434``.
"""

from .faults import FAULT_KINDS, Fault
from .models import DEFAULT_MODELS, ModelSpec
from .records import Disconnect, RecordedRequest
from .replies import DEFAULT_REPLY_TOKENS
from .server import OllamaSimulator
from .tools import ToolScript

__all__ = [
    "DEFAULT_MODELS",
    "DEFAULT_REPLY_TOKENS",
    "FAULT_KINDS",
    "Disconnect",
    "Fault",
    "ModelSpec",
    "OllamaSimulator",
    "RecordedRequest",
    "ToolScript",
]
