"""Section 5: where a sweep's time goes once the embeddings are cached.

For one (preset, k, fold) on real weights, in a child process: the classifier's fit and,
per test image, the mask read, coarse mask + prompts, SAM's decoding of the variants (one
call each, SAM's own code, and in one batched call, the default) and scoring, with an
estimate for a full sweep; on a GPU (or with ``--stages-bf16``) the mean Dice change of a
bf16 encoder on the same fold; and the committed reference's seconds by stage.
"""
from __future__ import annotations

import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from benchmarks.bench.common import (NO_GPU, REFERENCE, REPO, load_tiny, mean_dice, open_data,
                                     reference_provenance, run_child)
from benchmarks.bench.table import measuring

#: test images scored in a full sweep: 2 presets x 4 k values x 1000 images
FULL_SWEEP_IMAGES = 2 * 4 * 1000


def stages_child(args) -> dict:
    """Seconds per stage after encoding, for one (preset, k, fold) of the kit's sweep on
    the first ``--stages-test`` test images: the classifier's fit, then per image the
    mask read, coarse mask + prompts, SAM's decoding of the variants one call each (SAM's
    own code, ``run --sam-decoder``) and in one batched call (the default), and scoring.
    Embeddings come from the kit's cache (encoded first when missing: not timed)."""
    from selfprompt.models.backbone import load_backbone
    from selfprompt.decode import PromptDecoder
    from selfprompt.embeddings import embed_dataset
    from selfprompt.metrics import dice, iou
    from selfprompt.utils.paths import cache_folder
    from selfprompt.pipeline import coarse_mask
    from selfprompt.presets import VARIANTS, get_preset
    from selfprompt.prompts import make_prompts
    from selfprompt.evaluation.protocol import Experiment

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dataset, root = open_data(args.data, tmp, args.stages_images)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            backbone = (load_tiny(tmp) if args.stages_backbone == "tiny" else
                        load_backbone(args.stages_backbone, device=args.stages_device))
        emb, _ = embed_dataset(dataset, backbone, cache_folder(None), progress=False)
        exp = Experiment(dataset, emb, backbone, tmp / "runs", progress=False)
        preset, k, fold = get_preset(args.stages_preset), args.stages_k, 0
        t = {s: 0.0 for s in ("fit", "mask", "prompts", "decode", "decode_batched", "score")}
        t0 = time.perf_counter()
        clf = exp.fitted(preset, k, fold).classifier_
        t["fit"] = time.perf_counter() - t0
        one, batched = PromptDecoder(backbone, batched=False), PromptDecoder(backbone, batched=True)
        test = [int(i) for i in exp.folds[fold][1][:args.stages_test]]
        same = 0
        for i in test:
            t0 = time.perf_counter()
            truth = exp.mask(i, preset.mask_threshold)
            t1 = time.perf_counter()
            features = np.asarray(emb[i], np.float32)
            prompts = make_prompts(coarse_mask(clf, features, truth.shape, preset,
                                               backbone.img_size),
                                   preset, np.random.default_rng([args.seed, fold, i]))
            t2 = time.perf_counter()
            one.set_embedding(features, truth.shape)
            masks = one.variants(prompts, VARIANTS)
            t3 = time.perf_counter()
            batched.set_embedding(features, truth.shape)
            masks_b = batched.variants(prompts, VARIANTS)
            t4 = time.perf_counter()
            [(dice(m, truth), iou(m, truth)) for m in masks.values()]
            t5 = time.perf_counter()
            same += all(np.array_equal(masks[v], masks_b[v]) for v in VARIANTS)
            for key, a, b in (("mask", t0, t1), ("prompts", t1, t2), ("decode", t2, t3),
                              ("decode_batched", t3, t4), ("score", t4, t5)):
                t[key] += b - a
        bf16 = None
        if args.stages_bf16 if args.stages_bf16 is not None else args.stages_device == "cuda":
            bf16 = bf16_dice_change(exp, tmp, preset, k, fold)
    return {"n": len(test), "k": k, "preset": preset.name, "backbone": backbone.model_type,
            "device": str(one.predictor.device), "data": f"{root.name} ({len(dataset)} images)",
            "fold_test": len(exp.folds[fold][1]), "seconds": t, "same": same, "bf16": bf16}


def bf16_dice_change(exp, tmp: Path, preset, k, fold: int) -> dict:
    """The accuracy check of a bf16 encoder, on real weights: the embeddings of
    ``exp``'s data set again in bf16, and one fold evaluated (every test image, every
    variant) from each cache. Returns the mean Dice per variant both ways, the images
    scored and the embeddings' largest difference relative to the largest fp32 value."""
    from selfprompt.embeddings import embed_dataset
    from selfprompt.models.encoder import ImageEncoder
    from selfprompt.utils.paths import cache_folder
    from selfprompt.presets import VARIANTS
    from selfprompt.evaluation.results import read_results

    backbone = exp.backbone
    emb16, _ = embed_dataset(exp.dataset, backbone, cache_folder(None), progress=False,
                             encoder=ImageEncoder(backbone, precision="bf16"))
    dice = {}
    for name, emb in (("fp32", exp.embeddings), ("bf16", emb16)):
        run = replace(exp, embeddings=emb, out_dir=tmp / f"runs-{name}", variants=VARIANTS)
        rows = read_results([run.run_fold(preset, k, fold, force=True)])
        dice[name] = {v: mean_dice(rows, v) for v in VARIANTS}
    test = [int(i) for i in exp.folds[fold][1]]
    largest = diff = 0.0
    for i in test:  # each embedding read once from each cache
        a = exp.embeddings.read(i).astype(np.float32)
        largest = max(largest, float(np.abs(a).max()))
        diff = max(diff, float(np.abs(a - emb16.read(i).astype(np.float32)).max()))
    return {"images": len(test), "dice": dice, "relative": diff / largest}


def stage_rows(args, rows: list, device: str) -> None:
    """5 on one device: the stages child's seconds, per test image and estimated for a
    full sweep."""
    m = run_child("stages", args, ["--stages-device", device])
    sec, n = m["seconds"], m["n"]
    where = (f"{m['backbone']} on {device}, {m['data']}, {m['preset']} k = {m['k']}, "
             f"fold 0, first {n} of its {m['fold_test']} test images")
    per = {key: 1000 * v / n for key, v in sec.items() if key != "fit"}
    rest = sum(per[key] for key in ("mask", "prompts", "score"))
    after, after_sam = rest + per["decode_batched"], rest + per["decode"]
    rows += [
        ("5", f"{device}: classifier fit", f"{sec['fit']:.2f}", "s", where),
        ("5", f"{device}: per test image, mask read / coarse mask + prompts / score",
         f"{per['mask']:.1f} / {per['prompts']:.1f} / {per['score']:.1f}", "ms", where),
        ("5", f"{device}: per test image, SAM decode (3 variants, SAM's own calls)",
         f"{per['decode']:.1f}", "ms",
         f"`run --sam-decoder`; {100 * per['decode'] / after_sam:.0f} % of the "
         "per-image time"),
        ("5", f"{device}: per test image, SAM decode (3 variants, one batched call)",
         f"{per['decode_batched']:.1f}", "ms",
         f"the default; {per['decode'] / per['decode_batched']:.2f}x faster; identical "
         f"masks on {m['same']} of {n} images; "
         f"{100 * per['decode_batched'] / after:.0f} % of the per-image time"),
        ("5", f"{device}: full sweep after encoding, estimated",
         f"{FULL_SWEEP_IMAGES * after / 1000 / 60:.0f}", "min",
         f"{FULL_SWEEP_IMAGES} test images x {after:.0f} ms ({after_sam:.0f} ms with "
         f"SAM's own calls: {after_sam / after:.2f}x), without the 40 fits"),
    ]
    if m["bf16"]:
        b = m["bf16"]
        fp32, bf16 = b["dice"]["fp32"], b["dice"]["bf16"]
        change = {v: 100 * (bf16[v] - fp32[v]) for v in fp32}
        by_variant = ", ".join(f"{v} {c:+.2f}" for v, c in change.items())
        weights = ("random weights: masks mean nothing" if m["backbone"] == "tiny" else
                   "real weights")
        rows.append((
            "2", f"{m['backbone']} {device} bf16 encoder: mean Dice change",
            f"{max(change.values(), key=abs):+.2f}", "points",
            f"the largest of bf16 - fp32 by variant ({by_variant}); {weights}, "
            f"fold 0, {b['images']} test images, {m['preset']} k = {m['k']}; embeddings "
            f"{b['relative']:.2g} max relative; the protocol alone moves a 200-image fold's "
            "mean by up to 0.9 points (last bits change a random point prompt's pixel)"))


def stages_section(args, rows: list) -> None:
    """5: where a sweep's time goes once the embeddings are cached."""
    devices = [] if args.gpu_only else ["cpu"]
    devices += ["cuda"] if torch.cuda.is_available() and not args.no_gpu else []
    for device in devices:
        with measuring(rows, "5", f"{device}: sweep stages"):
            stage_rows(args, rows, device)
    if "cuda" not in devices:
        rows.append(("5", "cuda: sweep stages, bf16 Dice change", "not measured", "", NO_GPU))
    provenance = reference_provenance()
    if provenance:
        ref = provenance["seconds"]
        total = sum(v["seconds"] if isinstance(v, dict) else v for v in ref.values())
        split = ", ".join(f"{key} {v['seconds'] if isinstance(v, dict) else v:.0f} s"
                          for key, v in ref.items())
        rows.append(("5", "committed reference sweep (make reference), seconds by stage",
                     f"{total:.0f}", "s", f"{split} ({REFERENCE.relative_to(REPO)}; "
                     f"{provenance['fold_environment']['cpu']})"))
