"""Section 4: peak resident memory (``VmHWM``) of the embedding step and of a k = all
fold's classifier fit at full size, each in a child process of its own so that the peak
is that step's alone.

The fit runs on synthetic embeddings (no encoder needed) with lbfgs cut to a few
iterations, since memory does not depend on their number, in a process that also holds a
vit_b SAM as a sweep's does. The target for both is 4096 MiB.
"""
from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks.bench.common import open_data, peak_rss_mib, random_backbone, run_child
from benchmarks.bench.table import measuring


class SyntheticShots:
    """``n`` synthetic (256, 64, 64) embeddings made on access, like cache reads."""

    def __init__(self, n: int) -> None:
        self.n = n
        base = np.random.default_rng(0).standard_normal((256, 64, 64)).astype(np.float32)
        self.kinds = [(base + 0.01 * j).astype(np.float16) for j in range(7)]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> np.ndarray:
        return self.kinds[i % 7].copy()  # a fresh float16 array, as a cache read gives


def classifier_child(args) -> dict:
    """Peak RSS of a k = all fold's classifier fit on ``n`` synthetic embeddings, in a
    process that also holds a vit_b SAM (as a sweep's does, for decoding).

    lbfgs is cut to a few iterations (memory does not depend on their number).
    ``--memory-in-memory`` forces scikit-learn's one-matrix fit, for comparison.
    """
    import selfprompt.pipeline as pipeline
    from selfprompt.classifier import LinearPixelClassifier
    from selfprompt.presets import get_preset

    backbone = random_backbone("vit_b") if args.memory_backbone else None
    n = args.memory_images
    yy, xx = np.mgrid[:512, :640]

    def masks():
        for i in range(n):
            r = 60 + i % 90
            yield ((yy - 256) ** 2 + (xx - 320) ** 2 < r * r).astype(np.uint8)

    class Short(LinearPixelClassifier):
        def __init__(self, threshold=0.5):
            super().__init__(max_iter=args.memory_iter, threshold=threshold)

    pipeline.LinearPixelClassifier = Short
    preset = get_preset(args.preset if args.memory_preset is None else args.memory_preset)
    before = peak_rss_mib()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = pipeline.fit_classifier(SyntheticShots(n), masks(), preset,
                                      in_memory_limit=2 ** 62 if args.memory_in_memory
                                      else None)
    return {"n": n, "rss_mib": peak_rss_mib(), "rss_before_mib": before,
            "seconds": time.perf_counter() - t0, "iterations": int(clf.n_iter_[0]),
            "route": clf.fit_route_, "preset": preset.name,
            "backbone": "vit_b" if backbone is not None else "none"}


def encode_child(args) -> dict:
    """Peak RSS of a process that encodes images with vit_b into the cache (the
    sweep's embedding step), with the kit's encoder or SAM's own code."""
    from selfprompt.embeddings import embed_dataset
    from selfprompt.models.encoder import ImageEncoder

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dataset, _ = open_data(args.data, tmp, args.memory_encode)
        backbone = random_backbone(args.memory_encoder_model)
        before = peak_rss_mib()
        encoder = ImageEncoder(backbone, fused=False if args.memory_exact else None)
        t0 = time.perf_counter()
        embed_dataset(dataset, backbone, tmp / "cache", progress=False, encoder=encoder)
        return {"n": len(dataset), "rss_mib": peak_rss_mib(), "rss_before_mib": before,
                "seconds": time.perf_counter() - t0, "model": backbone.model_type,
                "exact": args.memory_exact}


def memory_section(args, rows: list) -> None:
    """4: the encoding probe, with the kit's encoder and SAM's own code, and the k = all
    fit for each preset (and scikit-learn's one-matrix fit with ``--memory-in-memory``)."""
    for exact in [False, True] if args.memory_encode else []:
        label = (f"peak RSS: encoding, {args.memory_encoder_model} "
                 f"{'exact encoder' if exact else 'kit encoder'}")
        with measuring(rows, "4", label):
            m = run_child("encode", args, ["--memory-exact"] if exact else [])
            rows.append((
                "4", label, f"{m['rss_mib']:.0f}", "MiB",
                f"{m['n']} image(s) into the cache, {m['rss_before_mib']:.0f} MiB with the model "
                f"loaded; target 4096 MiB: {'met' if m['rss_mib'] < 4096 else 'NOT met'}"))
    if args.memory_images:
        for preset in [args.memory_preset] if args.memory_preset else ["paper", "corrected"]:
            routes = [[]] + ([["--memory-in-memory"]] if args.memory_in_memory else [])
            for extra in routes:
                with measuring(rows, "4", f"peak RSS: k = all fold, {preset} preset"):
                    m = run_child("classifier", args, ["--memory-preset", preset] + extra)
                    rows.append((
                        "4", f"peak RSS: k = all fold, {preset} preset, {m['route']} fit",
                        f"{m['rss_mib']:.0f}", "MiB",
                        f"{m['n']} shots (synthetic), {m['backbone']} SAM held, "
                        f"{m['rss_before_mib']:.0f} MiB before the fit; "
                        f"{m['iterations']} lbfgs iterations {m['seconds']:.1f} s; "
                        f"target 4096 MiB: {'met' if m['rss_mib'] < 4096 else 'NOT met'}"))
