"""prepare_image vs the naive Pillow pipeline on a 24 MP photo-like JPEG.

Naive: ``Image.open(path).convert("RGB")`` (full decode), ``resize`` to a 1024 longest edge
(Pillow's default filter), JPEG quality 85. prepare_image uses JPEG draft mode (DCT scaling) and a
LANCZOS resize. Runs alternate; medians are compared (targets: >= 3x faster, payload <= 1/10 of
the original file). Peak memory is the growth of ``ru_maxrss`` in a fresh subprocess per approach
(tracemalloc cannot see Pillow's C allocations). Linux carries ``ru_maxrss`` across exec, so the
photo is made in a subprocess too and memory is measured before the parent decodes anything.

    python bench/image_prep.py [--runs 7] [--size 6000x4000] [--max-edge 1024]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from PIL import Image

from gleitzeit_nb.core.images import prepare_image


def make_photo(path: str, size: tuple[int, int]) -> None:
    """Smooth structure (upscaled noise), gradients and fine grain, like a photograph."""
    width, height = size
    coarse = Image.effect_noise((width // 4, height // 4), 60).resize(size, Image.Resampling.BICUBIC)
    grain = Image.effect_noise(size, 20)
    ramp = Image.linear_gradient("L").resize(size)
    glow = Image.radial_gradient("L").resize(size)
    red = Image.blend(Image.blend(coarse, ramp, 0.4), grain, 0.15)
    green = Image.blend(Image.blend(coarse, glow, 0.5), grain, 0.15)
    blue = Image.blend(ramp, glow, 0.5)
    Image.merge("RGB", (red, green, blue)).save(path, format="JPEG", quality=90)


def naive(path: str, max_edge: int) -> bytes:
    img = Image.open(path).convert("RGB")
    scale = max_edge / max(img.size)
    img = img.resize((round(img.width * scale), round(img.height * scale)))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def prepared(path: str, max_edge: int) -> bytes:
    return prepare_image(path, max_edge=max_edge).data


APPROACHES = {"naive": naive, "prepare_image": prepared}


def child(name: str, path: str, max_edge: int) -> None:
    """Run one approach once in this fresh process; print its peak RSS growth as JSON."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    APPROACHES[name](path, max_edge)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"base_kib": before, "peak_kib": after}))


def peak_memory(name: str, path: str, max_edge: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", name, "--path", path,
                          "--max-edge", str(max_edge)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--size", default="6000x4000")
    parser.add_argument("--max-edge", type=int, default=1024)
    parser.add_argument("--child", choices=[*sorted(APPROACHES), "make"])
    parser.add_argument("--path")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    if args.child == "make":
        make_photo(args.path, size)
        return
    if args.child:
        child(args.child, args.path, args.max_edge)
        return

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "photo.jpg")
        subprocess.run([sys.executable, __file__, "--child", "make", "--path", path,
                        "--size", args.size], check=True)
        original = os.path.getsize(path)
        memory = {name: peak_memory(name, path, args.max_edge) for name in APPROACHES}
        times: dict[str, list[float]] = {name: [] for name in APPROACHES}
        payload: dict[str, int] = {}
        for name, fn in APPROACHES.items():  # warm-up (imports, caches)
            payload[name] = len(fn(path, args.max_edge))
        for _ in range(args.runs):
            for name, fn in APPROACHES.items():
                started = time.perf_counter()
                fn(path, args.max_edge)
                times[name].append(time.perf_counter() - started)

    print(f"input: {size[0]}x{size[1]} JPEG q90, {original / 1e6:.2f} MB; max_edge={args.max_edge}; "
          f"median of {args.runs} alternating runs")
    for name in APPROACHES:
        med = statistics.median(times[name])
        mem = memory[name]
        print(f"  {name:<14} {med * 1000:8.1f} ms  (min {min(times[name]) * 1000:.1f}, "
              f"max {max(times[name]) * 1000:.1f})  payload {payload[name] / 1e3:8.1f} kB  "
              f"peak RSS +{(mem['peak_kib'] - mem['base_kib']) / 1024:.0f} MiB "
              f"(process peak {mem['peak_kib'] / 1024:.0f} MiB)")
    speed = statistics.median(times["naive"]) / statistics.median(times["prepare_image"])
    ratio = payload["prepare_image"] / original
    print(f"speed: prepare_image is {speed:.1f}x faster than naive (target >= 3x): "
          f"{'PASS' if speed >= 3 else 'FAIL'}")
    print(f"payload: {ratio:.4f} of the original file (1/{1 / ratio:.0f}; target <= 1/10): "
          f"{'PASS' if ratio <= 0.1 else 'FAIL'}")


if __name__ == "__main__":
    main()
