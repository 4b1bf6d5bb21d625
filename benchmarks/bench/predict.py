"""Section 6: ``python -m selfprompt predict`` on one's own images: images per second
after encoding (cache warm) and end to end (cache cold), where the time of an image goes
after encoding (the SAM decoder against the kit's own steps), and peak resident memory
against the number of images.

Every run is ``selfprompt.cli.main(["predict", ...])`` in a child process of its own
(``--child predict``), so that its ``VmHWM`` is its own peak: the backbone, the fit on the
labelled pairs and the streamed folder together. Each folder is run twice, first into an
empty embedding cache (end to end: every image encoded) and then, into another output
folder, with the cache warm (what is left after encoding: read the file, read its
embedding from the cache, classifier, prompt, decode, write two PNGs).

- Speed: the first ``--predict-images`` images of the data set (Kvasir-SEG when present)
  are the folder, the next ``--predict-k`` pairs the labelled ones, on
  ``--predict-backbone`` (LiteMedSAM, real weights). In the warm run the decoder's time is
  taken apart from the rest by timing :class:`selfprompt.decode.PromptDecoder`'s methods
  (setting the embedding, decoding the prompts): the rest of ``predict`` is the
  classifier and the prompt, and around it the kit's reading and writing.
- Memory: generated folders of ``--predict-n`` small images (``--predict-side`` pixels a
  side) on the ``tiny`` backbone. ``predict`` streams (one image read, encoded, decoded,
  written and let go at a time), so the peak should not grow with the folder beyond its
  file list and journal.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.bench.common import open_data, peak_rss_mib, run_child
from benchmarks.bench.table import measuring

#: the stages ``predict_images`` times per image, and the decoder's part of "predict"
STAGES = ("read", "embed", "predict", "write")


def make_folder(folder: Path, n: int, side: int, seed: int = 0) -> Path:
    """``n`` textured JPEGs of about ``side`` pixels a side (sizes vary a little)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (side + 16, side + 16, 3), np.uint8)
    for i in range(n):
        h, w = side + i % 7, side + i % 11
        cv2.imwrite(str(folder / f"img_{i:06d}.jpg"), np.roll(base, i, axis=1)[:h, :w])
    return folder


@contextlib.contextmanager
def decoder_clock():
    """Seconds spent in :class:`~selfprompt.decode.PromptDecoder`'s methods (outermost
    calls only: ``variants`` may call ``predict``), in the yielded one-item list."""
    from selfprompt.decode import PromptDecoder

    spent, depth = [0.0], [0]
    originals = {name: getattr(PromptDecoder, name)
                 for name in ("set_embedding", "predict", "variants")}

    def timed(fn):
        def wrapper(*a, **kw):
            depth[0] += 1
            start = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    spent[0] += time.perf_counter() - start
        return wrapper

    for name, fn in originals.items():
        setattr(PromptDecoder, name, timed(fn))
    try:
        yield spent
    finally:
        for name, fn in originals.items():
            setattr(PromptDecoder, name, fn)


def predict_child(args) -> dict:
    """One ``predict`` run (``--predict-argv``, JSON): its wall time, its stages, the
    decoder's seconds over the folder (not the fit's: ``auto`` decodes the shots too)
    and this process's peak resident memory."""
    import selfprompt.own.predict as own_predict
    from selfprompt.cli import main

    argv = json.loads(args.predict_argv)
    found: list[tuple] = []
    inner = own_predict.predict_images

    with decoder_clock() as decoder:
        def capture(*a, **kw):  # the folder's pass alone, after loading and the fit
            before = decoder[0]
            summary = inner(*a, **kw)
            found.append((summary, decoder[0] - before))
            return summary

        own_predict.predict_images = capture
        start = time.perf_counter()
        code = main(argv)
        seconds = time.perf_counter() - start
    if code != 0 or not found:
        raise RuntimeError(f"predict exited with status {code}")
    s, decoding = found[0]
    return {"seconds": seconds, "predict_seconds": s.seconds, "computed": s.computed,
            "stages": s.stages, "decoder": decoding, "peak_mib": peak_rss_mib()}


def _run(args, argv: list[str]) -> dict:
    return run_child("predict", args, ["--predict-argv", json.dumps(argv)])


def _pairs(dataset, indices, folder: Path) -> Path:
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in indices:
        s = dataset.samples[i]
        shutil.copy(s.image_path, folder / "images" / s.image_path.name)
        shutil.copy(s.mask_path, folder / "masks" / s.mask_path.name)
    return folder


def _ms(seconds: float, n: int) -> str:
    return f"{1000 * seconds / max(n, 1):.0f} ms"


def speed_rows(args, rows: list, tmp: Path) -> None:
    """Cold and warm runs on real images; the warm one's time per image taken apart."""
    n, k = args.predict_images, args.predict_k
    dataset, root = open_data(args.data, tmp, n + k)
    if len(dataset) < n + k:
        raise ValueError(f"{root}: {len(dataset)} images, {n + k} needed")
    folder = tmp / "speed-images"
    folder.mkdir()
    for s in dataset.samples[:n]:
        shutil.copy(s.image_path, folder / s.image_path.name)
    labelled = _pairs(dataset, range(n, n + k), tmp / "speed-labelled")
    common = ["-q", "predict", "--labelled", str(labelled), "--images", str(folder),
              "--backbone", args.predict_backbone, "--prompt", args.predict_prompt,
              "--cache", str(tmp / "speed-cache"), "--seed", str(args.seed)]
    what = (f"{n} images of {Path(root).name}, {args.predict_backbone}, prompt "
            f"{args.predict_prompt}, fitted on {k}")
    for cache in ("cold", "warm"):
        r = _run(args, common + ["--out", str(tmp / f"speed-out-{cache}")])
        st = r["stages"]
        if cache == "cold":
            rows.append(("6", "predict, cold cache: end to end", f"{n / r['predict_seconds']:.2f}",
                         "images/s",
                         f"{what}; per image: encode+cache {_ms(st['embed'], n)}, the rest "
                         f"{_ms(r['predict_seconds'] - st['embed'], n)}; with loading and "
                         f"the fit {r['seconds']:.1f} s; peak RSS {r['peak_mib']:.0f} MiB"))
            continue
        total = r["predict_seconds"]
        decoder, rest = r["decoder"], st["predict"] - r["decoder"]
        share = {"SAM decoder": decoder, "classifier and prompt": rest,
                 "read file": st["read"], "cache read": st["embed"], "write PNGs": st["write"]}
        other = total - sum(share.values())
        parts = ", ".join(f"{name} {_ms(s, n)} ({100 * s / total:.0f} %)"
                          for name, s in share.items())
        bound = "the decoder" if decoder >= total - decoder else "the kit"
        rows.append(("6", "predict, warm cache: after encoding", f"{n / total:.2f}", "images/s",
                     f"{what}; per image {_ms(total, n)}: {parts}, loop {_ms(other, n)}; "
                     f"peak RSS {r['peak_mib']:.0f} MiB"))
        rows.append(("6", "predict, warm cache: decoder share", f"{100 * decoder / total:.0f}",
                     "%", f"bound by {bound}: SAM decoder {_ms(decoder, n)} of "
                     f"{_ms(total, n)} per image"))


def memory_rows(args, rows: list, tmp: Path) -> None:
    """Peak RSS per folder size, cold and warm, and its growth from smallest to largest."""
    from selfprompt.datasets.synthetic import make_synthetic

    labelled = make_synthetic(tmp / "mem-labelled", n=4, seed=1)
    common = ["-q", "predict", "--labelled", str(labelled), "--backbone", "tiny",
              "--prompt", "box", "--cache", str(tmp / "mem-cache"), "--seed", str(args.seed)]
    peaks: dict[str, list[tuple[int, float]]] = {"cold": [], "warm": []}
    for n in sorted(args.predict_n):
        folder = make_folder(tmp / f"mem-in{n}", n, args.predict_side)
        for cache in ("cold", "warm"):
            r = _run(args, common + ["--images", str(folder), "--out",
                                     str(tmp / f"mem-out{n}-{cache}")])
            peaks[cache].append((n, r["peak_mib"]))
            rows.append(("6", f"predict peak RSS: {n} images, {cache} cache",
                         f"{r['peak_mib']:.0f}", "MiB",
                         f"tiny backbone, {args.predict_side}-px images, "
                         f"{n / r['predict_seconds']:.1f} images/s"))
    for cache, found in peaks.items():
        if len(found) > 1:
            (n0, p0), (n1, p1) = found[0], found[-1]
            rows.append(("6", f"predict peak RSS growth, {cache} cache", f"{p1 - p0:+.1f}",
                         "MiB", f"from {n0} to {n1} images ({p0:.0f} -> {p1:.0f} MiB): "
                         "streamed, it should stay flat"))


def predict_section(args, rows: list) -> None:
    """6: speed on real images (cold, warm, the decoder's share), then memory against
    the folder's size."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.predict_images:
            with measuring(rows, "6", "predict speed"):
                speed_rows(args, rows, tmp)
        if args.predict_n:
            with measuring(rows, "6", "predict peak RSS against the number of images"):
                memory_rows(args, rows, tmp)
