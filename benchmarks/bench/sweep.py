"""Section 1: encoder passes and wall time of a k-shot sweep, the kit's flow against a
re-enactment of the authors' (D6), on the same images and backbone.

The kit encodes each image once into the embedding cache and runs the folds from it (a
warm rerun: no pass at all); the authors' code calls ``SamPredictor.set_image`` for every
shot and twice for every test image, again in every fold. Passes are counted by a forward
hook on the image encoder, so both flows are counted the same way. Both use the same
folds, shots, prompts and decoded variants, so their Dice must agree; the section also
gives the Dice change of the float16 cache, a bf16 encoder and SAM's own encoder code
against the float32 cache. The full-size counts are analytic.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.bench.common import (load_tiny, mean_dice, open_data, peak_rss_mib,
                                     random_backbone, run_child)


def analytic_passes(n_images: int, n_folds: int, k_values, kit: bool = False) -> int:
    """Encoder passes of a sweep: the kit's 1 per image; the authors' k + 2 per test image
    for every (k, fold) (k = all: the whole training part of the fold)."""
    if kit:
        return n_images
    from selfprompt.evaluation.protocol import make_folds

    total = 0
    for train, test in make_folds(n_images, n_folds, 0):
        for k in k_values:
            total += (len(train) if str(k) == "all" else int(k)) + 2 * len(test)
    return total


class PassCounter:
    """Counts images through ``module.forward`` (a forward hook: any caller, any flow)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.n = 0
        self._h = module.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output) -> None:
        self.n += int(inputs[0].shape[0])

    def close(self) -> None:
        self._h.remove()


def kit_flow(dataset, backbone, cache_root: Path, out_dir: Path, k_values, n_folds: int,
             batch: int, workers: int, dtype: str, preset: str, seed: int,
             variants=("point_box",), precision: str = "fp32",
             fused: bool | None = None) -> dict:
    from selfprompt.embeddings import embed_dataset
    from selfprompt.models.encoder import ImageEncoder
    from selfprompt.evaluation.protocol import Experiment
    from selfprompt.evaluation.results import read_results

    counter = PassCounter(backbone.sam.image_encoder)
    t0 = time.perf_counter()
    encoder = ImageEncoder(backbone, batch_size=batch, precision=precision,
                           fused=fused)
    emb, _ = embed_dataset(dataset, backbone, cache_root, dtype=dtype, workers=workers,
                           progress=False, encoder=encoder)
    t_embed = time.perf_counter() - t0
    exp = Experiment(dataset, emb, backbone, out_dir, seed=seed, n_folds=n_folds,
                     variants=tuple(variants), progress=False)
    rows = read_results([exp.run_fold(preset, k, fold, force=True)
                         for k in k_values for fold in range(n_folds)])
    counter.close()
    return {"passes": counter.n, "encoder_passes": encoder.passes, "embed_s": t_embed,
            "wall_s": time.perf_counter() - t0, "dice": mean_dice(rows)}


def authors_flow(dataset, backbone, k_values, n_folds: int, preset_name: str, seed: int,
                 variants=("point_box",)) -> dict:
    """The authors' computation order (D6), with the kit's classifier/prompt/decode steps."""
    from selfprompt.decode import PromptDecoder
    from selfprompt.metrics import dice
    from selfprompt.pipeline import coarse_mask, fit_classifier
    from selfprompt.presets import get_preset
    from selfprompt.prompts import make_prompts
    from selfprompt.evaluation.protocol import draw_shots, make_folds

    preset = get_preset(preset_name)
    decoder = PromptDecoder(backbone)
    predictor = decoder.predictor
    counter = PassCounter(backbone.sam.image_encoder)
    folds = make_folds(len(dataset), n_folds, seed)
    t0 = time.perf_counter()
    rows = []

    def embed(i):  # one set_image: one encoder pass
        image = dataset.image(i)
        predictor.set_image(image)
        return image, predictor.features[0].cpu().numpy()

    for k in k_values:
        shots = draw_shots(folds, k, seed)
        for fold, (_, test) in enumerate(folds):
            feats = [embed(i)[1] for i in shots[fold]]
            clf = fit_classifier(feats, [dataset.mask(i, preset.mask_threshold)
                                         for i in shots[fold]], preset)
            del feats
            for i in map(int, test):
                truth = dataset.mask(i, preset.mask_threshold)
                image, features = embed(i)                     # pass 1: the coarse mask
                coarse = coarse_mask(clf, features, truth.shape, preset)
                rng = np.random.default_rng([seed, fold, i])  # as the kit's per-image draws
                prompts = make_prompts(coarse, preset, rng)
                predictor.set_image(image)                     # pass 2: SAM's prediction
                for v, m in decoder.variants(prompts, variants).items():
                    rows.append({"variant": v, "dice": dice(m, truth),
                                 "counted": not (preset.drop_empty and prompts.empty)})
    counter.close()
    return {"passes": counter.n, "wall_s": time.perf_counter() - t0, "dice": mean_dice(rows)}


def sweep_child(args) -> dict:
    """Section 1, run in its own process so that its peak RSS is its own."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dataset, root = open_data(args.data, tmp, args.images)
        backbone = load_tiny(tmp) if args.sweep_backbone == "tiny" else random_backbone(
            args.sweep_backbone)
        ks = args.k
        common = dict(k_values=ks, n_folds=args.folds, batch=args.sweep_batch,
                      workers=args.workers, preset=args.preset, seed=args.seed,
                      variants=args.variants)
        cold = kit_flow(dataset, backbone, tmp / "cache", tmp / "runs_cold", dtype="float16",
                        **common)
        warm = kit_flow(dataset, backbone, tmp / "cache", tmp / "runs_warm", dtype="float16",
                        **common)
        rss_kit = peak_rss_mib()
        fp32 = kit_flow(dataset, backbone, tmp / "cache", tmp / "runs_fp32", dtype="float32",
                        **common)
        # other encoder numerics (cached apart), against the fp32 cache's Dice
        bf16 = kit_flow(dataset, backbone, tmp / "cache", tmp / "runs_bf16", dtype="float32",
                        precision="bf16", **common)
        exact = kit_flow(dataset, backbone, tmp / "cache", tmp / "runs_exact",
                         dtype="float32", fused=False, **common)
        authors = authors_flow(dataset, backbone, ks, args.folds, args.preset, args.seed,
                               args.variants)
        return {"n": len(dataset), "data": str(root), "backbone": backbone.model_type,
                "cold": cold, "warm": warm, "fp32": fp32, "bf16": bf16, "exact": exact,
                "authors": authors,
                "rss_kit_mib": rss_kit, "rss_mib": peak_rss_mib()}


def sweep_section(args, rows: list) -> None:
    """1: encoder passes and wall time of a sweep, the kit's flow against the authors'."""
    s = run_child("sweep", args)
    a, c, w, f = s["authors"], s["cold"], s["warm"], s["fp32"]
    where = f"{s['n']} images of {Path(s['data']).name}, {args.folds} folds, k = " \
            f"{'/'.join(args.k)}, {s['backbone']}"
    rows += [
        ("1", "authors' flow: encoder passes", a["passes"], "passes",
         f"{where}; analytic {analytic_passes(s['n'], args.folds, args.k)}"),
        ("1", "authors' flow: wall time", f"{a['wall_s']:.1f}", "s", "set_image per use"),
        ("1", "kit flow (cold cache): encoder passes", c["passes"], "passes",
         f"{c['passes'] / s['n']:.2f} per image; ratio {a['passes'] / max(c['passes'], 1):.1f}x"),
        ("1", "kit flow (cold cache): wall time", f"{c['wall_s']:.1f}", "s",
         f"encoding {c['embed_s']:.1f} s; ratio {a['wall_s'] / c['wall_s']:.1f}x"),
        ("1", "kit flow (warm rerun): encoder passes", w["passes"], "passes", "all from cache"),
        ("1", "kit flow (warm rerun): wall time", f"{w['wall_s']:.1f}", "s",
         f"ratio {a['wall_s'] / w['wall_s']:.1f}x vs authors'"),
        ("1", "full size: authors' flow passes (analytic)",
         analytic_passes(args.full_images, 5, args.full_k), "passes",
         f"{args.full_images} images, 5 folds, k = {'/'.join(args.full_k)}"),
        ("1", "full size: kit passes (cold / warm)", f"{args.full_images} / 0", "passes",
         f"ratio {analytic_passes(args.full_images, 5, args.full_k) / args.full_images:.1f}x"),
        ("1", "mean Dice point+box: kit fp16 cache", f"{100 * c['dice']:.2f}", "%",
         f"{s['backbone']} backbone"
         + (" (random weights: masks mean nothing)" if s["backbone"] == "tiny" else "")),
        ("1", "mean Dice point+box: kit fp32 cache", f"{100 * f['dice']:.2f}", "%",
         f"fp16 - fp32 = {100 * (c['dice'] - f['dice']):+.3f} points"),
        ("1", "mean Dice point+box: kit bf16 encoder", f"{100 * s['bf16']['dice']:.2f}", "%",
         f"bf16 - fp32 = {100 * (s['bf16']['dice'] - f['dice']):+.3f} points (target: "
         f"under 0.1 in size)"),
        ("1", "mean Dice point+box: kit exact encoder", f"{100 * s['exact']['dice']:.2f}",
         "%", f"exact - fused = {100 * (s['exact']['dice'] - f['dice']):+.3f} points"),
        ("1", "mean Dice point+box: authors' flow", f"{100 * a['dice']:.2f}", "%",
         f"kit exact fp32 - authors' = {100 * (s['exact']['dice'] - a['dice']):+.3f} points "
         f"(same arithmetic: must be 0)"),
        ("4", "peak RSS: measured sweep (kit flow)", f"{s['rss_kit_mib']:.0f}", "MiB",
         "subprocess VmHWM (loader workers not included)"),
    ]


def full_size_hours(args, rows: list) -> None:
    """1 in hours: the full-size passes at the vit_b CPU speed that section 2 measured
    (no row when it was not measured)."""
    vit_b = [r for r in rows if r[1] == "vit_b cpu batch 1 fp32: encoder speed"]
    if vit_b:
        t = 1 / float(vit_b[0][2])
        full = analytic_passes(args.full_images, 5, args.full_k)
        rows.append(("1", "full size, vit_b CPU encoder time: authors' / kit / warm",
                     f"{full * t / 3600:.1f} / {args.full_images * t / 3600:.1f} / 0", "hours",
                     f"passes x {t:.1f} s (measured vit_b batch 1 fp32 above)"))
