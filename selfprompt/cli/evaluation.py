"""Evaluation: the baselines and ablations, and the committed reference results (written from
a finished run, and a slice of them recomputed to check them)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..utils.paths import default_path
from .method import _add_backbone, _add_data, _dataset, _embeddings

#: selfprompt.evaluation.ablations.STUDIES, named here so that ``--help`` needs no NumPy
STUDIES = ("baselines", "finetune", "strategies", "classifiers", "shots", "selection", "auto",
           "persam")
#: selfprompt.evaluation.reference.DEFAULT_DIR
REFERENCE_DIR = Path("reports/reference/kvasir/medsam_lite")


def cmd_ablations(args) -> int:
    from ..evaluation.ablations import run_study, write

    if args.action == "write":
        for name, path in write(args.runs, args.out, studies=args.studies).items():
            print(f"{name}: {path}")
        return 0
    dataset = _dataset(args)
    backbone, embeddings = _embeddings(args, dataset)
    out = (args.out or default_path("reports/ablations/runs") / args.dataset_name
           / backbone.model_type)
    for study in args.studies:
        paths = run_study(study, dataset, embeddings, backbone, out, args.dataset_name,
                          args.folds, args.seed, args.k, args.test_per_fold,
                          progress=not args.quiet, seeds=args.seeds)
        print(f"{study}: {len(paths)} folds under {out / study}")
    return 0


def cmd_reference(args) -> int:
    from ..evaluation.reference import verify, write

    if args.action == "figure":
        from ..evaluation.reference import method_figure, read_results_gz

        rows = read_results_gz(args.reference / "results.csv.gz")
        print(method_figure(rows, args.reference, args.data, k=args.k, fold=args.fold,
                            preset=args.preset))
        return 0
    if args.action == "claims":
        from ..evaluation.claims import stale, write as write_claims

        if args.check:
            lines = stale(args.root)
            for line in lines:
                print(line)
            return 1 if lines else 0
        for page in write_claims(args.root):
            print(f"rewrote the generated blocks of {page}")
        return 0
    if args.action == "write":
        encode = json.loads(args.encode) if args.encode else None
        paths = write(args.run_dir, args.out_dir, k=args.k, encode=encode,
                      cache_dir=args.cache_dir, data_dir=args.data)
        for name, p in paths.items():
            print(f"{name}: {p}")
        return 0
    result = verify(args.reference, args.data, k=args.k, fold=args.fold, presets=args.presets,
                    n_images=args.images, cache=args.cache, device=args.device)
    print(f"recomputed k={args.k}, fold {args.fold} of {args.reference}"
          + (f" (first {args.images} test images)" if args.images else ""))
    for name, r in result.items():
        print(f"  {name:>9}: {r['rows']} rows, {r['identical']} identical; largest per-image "
              f"difference {r['max_diff']:.6f} ({r['max_diff_at'][0]}, {r['max_diff_at'][1]}); "
              f"mean Dice of these rows (every variant) {100 * r['mean_committed']:.2f} "
              f"committed, {100 * r['mean_recomputed']:.2f} recomputed -> "
              f"{'ok' if r['ok'] else 'DIFFERS'}")
    return 0 if all(r["ok"] for r in result.values()) else 1


def add_commands(command) -> None:
    p = command("ablations", "baselines and ablations: the method's folds, shots and cache",
                cmd_ablations)
    sub = p.add_subparsers(dest="action", required=True)
    r = sub.add_parser("run", help="compute the studies' folds (finished ones are skipped)")
    _add_data(r)
    _add_backbone(r)
    r.set_defaults(backbone="medsam_lite")
    r.add_argument("--dataset-name", default="kvasir", help="name in the tables")
    r.add_argument("--studies", nargs="+", default=list(STUDIES), choices=list(STUDIES))
    r.add_argument("--folds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    r.add_argument("--k", nargs="+", default=None, help="override the studies' k values")
    r.add_argument("--seed", type=int, default=42,
                   help="the protocol's seed: its folds are written in the study's folder")
    r.add_argument("--seeds", nargs="+", type=int, default=None,
                   help="fold seeds, each a whole run of the protocol (other seeds than "
                        "--seed in <study>/seed<N>/; default: each study's own, else --seed)")
    r.add_argument("--test-per-fold", type=int, default=None,
                   help="score the first N test images of each fold (default: all)")
    r.add_argument("--out", type=Path, default=None,
                   help="default: reports/ablations/runs/<dataset-name>/<backbone>")
    # SUPPRESS: when not given here, the -q before the command decides
    r.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="no progress bars")
    w = sub.add_parser("write", help="tables and figures from finished studies")
    w.add_argument("runs", type=Path)
    w.add_argument("out", type=Path)
    w.add_argument("--studies", nargs="+", default=None, choices=list(STUDIES),
                   help="write only these studies' tables (default: every study)")

    p = command("reference", "the committed reference results: write, or recompute a slice",
                cmd_reference)
    sub = p.add_subparsers(dest="action", required=True)
    w = sub.add_parser("write", help="reference folder from a finished run folder")
    w.add_argument("run_dir", type=Path)
    w.add_argument("out_dir", type=Path)
    w.add_argument("--k", default="20", help="k of the method table (the paper's: 20)")
    w.add_argument("--cache-dir", type=Path, default=None,
                   help="embedding cache folder whose encode_log.jsonl times the encoder "
                        "(default: the model's float16 folder under $SELFPROMPT_CACHE or "
                        "data/embeddings)")
    w.add_argument("--data", type=Path, default=None,
                   help="the data set's folder: adds pictures of the best and worst cases")
    w.add_argument("--encode", default=None,
                   help='encoder record as JSON when the cache has no log: {"images": N, '
                        '"seconds": S, "source": "..."}')
    f = sub.add_parser("figure", help="the method on one image (the fold's median), from "
                       "a reference's rows: <reference>/figures/method_*.png")
    f.add_argument("reference", type=Path, nargs="?", default=REFERENCE_DIR)
    f.add_argument("--data", type=Path, required=True, help="the data set's folder")
    f.add_argument("--k", default="20")
    f.add_argument("--fold", type=int, default=0)
    f.add_argument("--preset", default="corrected", choices=["paper", "corrected"])
    c = sub.add_parser("claims", help="rewrite the generated result blocks of README.md and "
                       "docs/reference.md from the committed rows (--check: name a stale one)")
    c.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 naming each block that differs from the rows")
    c.add_argument("--root", type=Path, default=Path("."),
                   help="the repository root holding the pages and reports/reference")
    v = sub.add_parser("verify", help="recompute a slice of a reference and compare")
    v.add_argument("reference", type=Path, nargs="?", default=REFERENCE_DIR)
    v.add_argument("--data", type=Path, required=True, help="the data set's folder")
    v.add_argument("--k", default="10")
    v.add_argument("--fold", type=int, default=0)
    v.add_argument("--presets", nargs="+", default=["paper", "corrected"])
    v.add_argument("--images", type=int, default=None, help="first N test images (default: all)")
    v.add_argument("--cache", type=Path, default=None)
    v.add_argument("--device", default=None)
