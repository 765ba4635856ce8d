"""escape_html on long replies: time for a 200 kB reply, and linear growth on adversarial input.

Every live update re-escapes the whole reply, so this is on the streaming path. Prints the best of
3 runs for a 200 kB ordinary reply (target: <= 50 ms) and, for inputs built to provoke quadratic
work, the time ratio between 200 kB and 50 kB (4x the input; target: < 8x, i.e. linear).

    python bench/escape.py
"""

from __future__ import annotations

import time

from gleitzeit_nb.app.markdown import escape_html

REPLY = ("Use `pip install x` then `f(a<b)`.\n\n1. First **bold** [link](http://x.y)\n2. Second\n\n"
         "```python\nfor i in range(3):\n    if i < 2 and x & 1:\n        print('<b>')\n```\n\n"
         "Prose about <div> tags and &amp; entities, costing $5 or $x^2$ with $a<b$.\n\n")

ADVERSARIAL = {
    "tag-like code spans": lambda n: "`<a>` " * (n // 6),
    "dollars then a tag": lambda n: "$" * n + "<x>",
    "open backticks": lambda n: "`a\n" * (n // 3) + "$<b>",
    "long backtick runs": lambda n: ("`" * 50 + "$ x\n") * (n // 54) + "<x>",
    "list then indented fence": lambda n: "- a\n" * (n // 4) + "    ```\n<x>",
    "many fences": lambda n: "~~~ a\n" * (n // 6) + "<x>",
    "nested list markers": lambda n: "- " * (n // 2) + "```\n<x>",
    "backslashes": lambda n: "\\" * n + "`<x>`",
    "link starts": lambda n: "](" * (n // 2) + "javascript:x)",
}


def best_of(text: str, runs: int = 3) -> float:
    best = 1e9
    for _ in range(runs):
        t0 = time.perf_counter()
        escape_html(text)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    t = best_of((REPLY * 1000)[:200_000])
    print(f"200 kB ordinary reply: {t * 1000:.1f} ms (target <= 50 ms): {'PASS' if t <= 0.05 else 'FAIL'}")
    for name, make in ADVERSARIAL.items():
        small, big = best_of(make(50_000)), best_of(make(200_000))
        ratio = big / max(small, 1e-6)
        verdict = "PASS" if big < 8 * small + 0.01 else "FAIL"
        print(f"  {name:26s} 50 kB {small * 1000:7.1f} ms   200 kB {big * 1000:7.1f} ms   "
              f"x{ratio:4.1f} (target < 8): {verdict}")


if __name__ == "__main__":
    main()
