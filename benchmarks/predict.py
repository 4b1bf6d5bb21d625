"""``python -m benchmarks.predict``: peak memory and speed of ``predict`` against the
number of images.

``predict`` streams (one image read, encoded, decoded, written and let go at a time), so
its peak resident memory should not grow with the folder: this runs the command on
generated folders of ``--n`` small images each (the tiny backbone, fitted on a few
synthetic pairs), every run in a fresh process whose ``VmHWM`` is its own peak, first
with a cold embedding cache (end to end: encoding included), then again into another
output folder with the cache warm (after encoding: read, decode, write). It prints one
row per run and, last, the growth of the peak from the smallest folder to the largest:
a few MiB (the journal's rows and the file list) against the hundreds of MiB an
in-memory pass over the same images would hold. A guide for a machine, not a test:
nothing here is asserted.

    python -m benchmarks.predict --n 100 1000 10000 --side 96
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
from selfprompt.cli import main
start = time.perf_counter()
code = main(sys.argv[1:])
seconds = time.perf_counter() - start
hwm = next(int(l.split()[1]) / 1024 for l in open('/proc/self/status') if l.startswith('VmHWM'))
print(json.dumps({"code": code, "seconds": seconds, "peak_mib": hwm}))
"""


def make_folder(folder: Path, n: int, side: int, seed: int = 0) -> Path:
    """``n`` textured JPEGs of about ``side`` pixels a side (sizes vary a little)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (side + 16, side + 16, 3), np.uint8)
    for i in range(n):
        h, w = side + i % 7, side + i % 11
        image = np.roll(base, i, axis=1)[:h, :w]
        cv2.imwrite(str(folder / f"img_{i:06d}.jpg"), image)
    return folder


def run(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, *args], cwd=REPO, capture_output=True,
                         text=True)
    if out.returncode not in (0, 1) or not out.stdout.strip():
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[50, 500])
    parser.add_argument("--side", type=int, default=96, help="image side in pixels")
    parser.add_argument("--backbone", default="tiny")
    args = parser.parse_args(argv)
    from selfprompt.datasets.synthetic import make_synthetic

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        labelled = make_synthetic(tmp / "labelled", n=4, seed=1)
        common = ["-q", "predict", "--labelled", str(labelled), "--backbone", args.backbone,
                  "--prompt", "box", "--cache", str(tmp / "cache")]
        print("images  cache  seconds  images/s  peak MiB")
        for n in sorted(args.n):
            folder = make_folder(tmp / f"in{n}", n, args.side)
            for cache in ("cold", "warm"):
                started = time.perf_counter()
                found = run(common + ["--images", str(folder), "--out",
                                      str(tmp / f"out{n}-{cache}")])
                found["wall"] = time.perf_counter() - started
                rows.append((n, cache, found))
                print(f"{n:6d}  {cache:5s}  {found['seconds']:7.1f}  "
                      f"{n / found['seconds']:8.1f}  {found['peak_mib']:8.1f}", flush=True)
    for cache in ("cold", "warm"):
        mine = [(n, f["peak_mib"]) for n, c, f in rows if c == cache]
        if len(mine) > 1:
            (n0, p0), (n1, p1) = mine[0], mine[-1]
            print(f"{cache}: peak {p0:.1f} MiB at {n0} images, {p1:.1f} MiB at {n1} "
                  f"({p1 - p0:+.1f} MiB for {n1 - n0} more images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
