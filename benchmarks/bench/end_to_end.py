"""Section 2, end to end: the whole embedding step as ``python -m selfprompt embed`` runs
it (read, decode, resize, encode, cache write, with its default loader processes), beside
the encoder-only rate at the same batch and precision measured just before it.

The ratio says how much of the encoder's speed the rest of the step lets through; on a
GPU the target is 80 %.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.bench.common import backbone_or_row, open_data
from benchmarks.bench.measure import encoder_speed, synchronizer
from benchmarks.bench.options import parse_entries
from benchmarks.bench.table import measuring


def embed_speed(backbone, dataset, batch: int, precision: str, root: Path) -> float:
    """Images/s of the whole embedding step as ``python -m selfprompt embed`` runs it
    (:func:`~selfprompt.embeddings.embed_dataset` with its defaults: read, decode and
    resize, in loader processes on a GPU; encode; cache write in a thread beside the
    encoder), over ``dataset`` into a fresh float16 cache under ``root``. A first batch
    is embedded into another cache beforehand, untimed, so that one-off set-up (the
    kernels' first calls) is not counted; the loader processes' start is."""
    from selfprompt.embeddings import embed_dataset
    from selfprompt.models.encoder import ImageEncoder

    encoder = ImageEncoder(backbone, batch_size=batch, precision=precision)
    embed_dataset(dataset.subset(batch), backbone, root / "warm", progress=False,
                  encoder=encoder)
    sync = synchronizer(backbone.device)
    sync()
    t = time.perf_counter()
    embed_dataset(dataset, backbone, root / "timed", progress=False, encoder=encoder)
    sync()
    return len(dataset) / (time.perf_counter() - t)


def end_to_end_rows(args, rows: list, device: str, grid: str, images: int) -> None:
    """Section 2, end to end: the embedding step's images/s beside the encoder-only rate
    at the same batch and precision, measured just before it (target on a GPU: 80 %)."""
    entries = parse_entries(grid)
    if not entries:
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # one data set for every row, each taking its first images
        full, root = open_data(args.data, tmp, max(max(images, 2 * b) for _, b, _ in entries))
        for model, batch, precision in entries:
            dataset = full.subset(max(images, 2 * batch))
            name = f"{model} {device} batch {batch} {precision}: end to end (embed)"
            with measuring(rows, "2", name):
                backbone = backbone_or_row(model, device, rows, f"{model} {device}: end to end")
                if backbone is None:
                    continue
                only = encoder_speed(backbone, batch, precision, args.reps,
                                     args.warmup).images_per_s
                ips = embed_speed(backbone, dataset, batch, precision,
                                  tmp / f"{model}-{batch}-{precision}")
                target = ""
                if device == "cuda":
                    target = f"; target 80 %: {'met' if ips >= 0.8 * only else 'NOT met'}"
                rows.append(("2", name, f"{ips:.3g}", "images/s",
                             f"{len(dataset)} images of {Path(root).name}: read, decode, "
                             f"resize, encode, cache write; {100 * ips / only:.0f} % of the "
                             f"encoder-only {only:.3g} images/s{target}"))
            backbone = None  # freed before the next row's model is built
