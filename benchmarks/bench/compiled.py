"""Section 2, ``torch.compile``: ``ImageEncoder(compile=True)`` beside the same encoder
uncompiled, on the CPU (``--compile``) and a GPU (``--gpu-compile``).

These rows run last because compiling takes minutes: a run cut short keeps the rest.
"""
from __future__ import annotations

import torch

from benchmarks.bench.common import backbone_or_row
from benchmarks.bench.measure import encoder_speed
from benchmarks.bench.options import parse_entries
from benchmarks.bench.table import measuring


def compiled_rows(args, rows: list) -> None:
    """Section 2, ``torch.compile``, last (compiling takes minutes): on each device,
    ``ImageEncoder(compile=True)`` beside the same encoder uncompiled, measured just
    before it, with the first batch's seconds (the compiling) and the embeddings'
    difference: whether compiling pays once shapes are fixed, at what start-up cost."""
    grids = [] if args.gpu_only else [("cpu", args.compile)]
    if torch.cuda.is_available() and not args.no_gpu:
        grids.append(("cuda", args.gpu_compile))
    for device, (model, batch, precision) in [(d, e) for d, g in grids
                                              for e in parse_entries(g)]:
        name = f"{model} {device} batch {batch} {precision} compiled: encoder speed"
        with measuring(rows, "2", name):
            backbone = backbone_or_row(model, device, rows, name)
            if backbone is None:
                continue
            # as the speed grid runs them (channels_last in half precision on a GPU)
            layout = {"channels_last": device == "cuda" and precision != "fp32"}
            plain = encoder_speed(backbone, batch, precision, args.reps, args.warmup, **layout)
            built = encoder_speed(backbone, batch, precision, args.reps, args.warmup,
                                  compile=True, **layout)
            d = (built.embedding - plain.embedding).abs().max().item()
            rows.append(("2", name, f"{built.images_per_s:.3g}", "images/s",
                         f"torch.compile: {built.images_per_s / plain.images_per_s:.2f}x "
                         f"the uncompiled {plain.images_per_s:.3g} images/s; first batch "
                         f"(compiling) {built.first_s:.0f} s; embedding max abs from "
                         f"uncompiled {d:.2g} (relative "
                         f"{d / plain.embedding.abs().max().item():.2g})"))
        backbone = None  # freed before the next row's model is built
