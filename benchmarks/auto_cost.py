"""What ``auto`` costs on real embeddings: its choice per fold (k = 2, 5, 20) and
decoding every candidate prompt on test images (the ``auto`` study's per-fold work).

    python -m benchmarks.auto_cost --backbone medsam_lite --data ../shared/data/kvasir-seg

Reads cached embeddings only (images without one are left out, nothing is encoded).
Shots and test images are drawn from one seeded generator; prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main(argv=None) -> dict:
    from selfprompt.datasets.reader import open_dataset
    from selfprompt.decode import PromptDecoder
    from selfprompt.embeddings import DatasetEmbeddings, EmbeddingCache
    from selfprompt.methods.base import Shots
    from selfprompt.methods.recipe import AUTO, candidate_prompts, choose_recipe
    from selfprompt.methods.variants import Variants
    from selfprompt.models.backbone import load_backbone
    from selfprompt.presets import get_preset
    from selfprompt.utils.paths import cache_folder

    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default="medsam_lite")
    ap.add_argument("--data", default="../shared/data/kvasir-seg")
    ap.add_argument("--ks", default="2,5,20")
    ap.add_argument("--test", type=int, default=40)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--naive-k", type=int, default=0,
                    help="also time the per-threshold segment() route at this k")
    args = ap.parse_args(argv)

    ds = open_dataset(args.data)
    backbone = load_backbone(args.backbone)
    emb = DatasetEmbeddings(ds, EmbeddingCache.for_backbone(cache_folder(None), backbone))
    missing = set(emb.missing())
    have = np.array([i for i in range(len(ds)) if i not in missing])
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(have)
    test, pool = order[:args.test], order[args.test:]
    preset = get_preset("corrected")
    decoder = PromptDecoder(backbone)
    out = {"backbone": args.backbone, "cached_images": len(have),
           "candidates": len(candidate_prompts()), "choice_seconds": {}}
    for k in [int(v) for v in args.ks.split(",")]:
        shots = pool[:k]
        masks = [ds.mask(int(i), preset.mask_threshold) for i in shots]
        start = time.perf_counter()
        recipe = choose_recipe(emb.take(shots), masks, preset, decoder, seed=args.seed)
        out["choice_seconds"][k] = {"seconds": round(time.perf_counter() - start, 1),
                                    "cv": recipe.cv, "held_out": recipe.n_scored_,
                                    "choice": recipe.name}
    if args.naive_k:
        out["naive"] = naive(emb, ds, pool[:args.naive_k], preset, decoder, args.seed)
    k = max(int(v) for v in args.ks.split(","))
    shots = Shots(emb.take(pool[:k]), [ds.mask(int(i), preset.mask_threshold)
                                       for i in pool[:k]], decoder, seed=args.seed)
    start = time.perf_counter()
    group = Variants(preset, candidate_prompts() + (AUTO,)).fit(shots)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    per_part: dict[str, float] = {}
    for i in map(int, test):
        seg = group.segment(np.asarray(emb[i], np.float32), ds.mask(i, preset.mask_threshold).shape,
                            np.random.default_rng([args.seed, 0, i]), (args.seed, 0, i))
        for part, s in seg.seconds.items():
            per_part[part] = per_part.get(part, 0.0) + s
    out["test"] = {"images": len(test), "k": k, "fit_seconds": round(fit, 1),
                   "segment_seconds": round(time.perf_counter() - start, 1),
                   "by_part": {p: round(s, 1) for p, s in per_part.items()}}
    print(json.dumps(out))
    return out


def naive(emb, ds, shots, preset, decoder, seed) -> dict:
    """The per-threshold route: ``segment`` once per (held-out shot, threshold), the
    classifier's map and SAM's decodes redone for each (what ``auto`` did before)."""
    from selfprompt.embeddings import to_float32
    from selfprompt.methods.recipe import (AUTO_THRESHOLDS, _Subset, candidate_prompts,
                                           inner_splits, with_threshold)
    from selfprompt.pipeline import fit_classifier, segment

    masks = [ds.mask(int(i), preset.mask_threshold) for i in shots]
    e = emb.take(shots)
    start = time.perf_counter()
    for s, (train, held) in enumerate(inner_splits(len(shots), seed)):
        clf = fit_classifier(_Subset(e, train), [masks[j] for j in train], preset,
                             img_size=decoder.backbone.img_size)
        for j in map(int, held):
            for t in AUTO_THRESHOLDS:
                segment(with_threshold(clf, t), decoder, to_float32(e[j]), masks[j].shape,
                        preset, np.random.default_rng([seed, s, j]), candidate_prompts(),
                        seed=(seed, s, j))
    return {"k": len(shots), "seconds": round(time.perf_counter() - start, 1)}


if __name__ == "__main__":
    main()
