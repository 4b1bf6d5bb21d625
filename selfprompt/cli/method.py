"""The method's commands: check a data set, embed it, run k-shot folds, summarise.

Each is a thin wrapper over the package, so that what the command line does, a notebook
can do in the same words. The data and backbone options are shared with ``ablations run``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..datasets.catalog import CATALOG

from ..presets import PRESETS, VARIANTS
from ..utils.paths import default_path


def default_data() -> Path:
    return Path(os.environ.get("SELFPROMPT_DATA_DIR") or default_path("data/kvasir-seg"))


def default_cache() -> Path:
    return Path(os.environ.get("SELFPROMPT_CACHE") or default_path("data/embeddings"))


#: the catalog's sets (plain data, no NumPy: the parser stays instant)
DATASET_NAMES = list(CATALOG)
#: selfprompt.shots.SHOT_STRATEGIES and selfprompt.methods.recipe.AUTO, named here for the
#: same reason
SHOT_STRATEGIES = ("random", "kcenter", "medoids")
AUTO = "auto"


def _add_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", nargs="?", type=Path, default=None,
                   help="data-set folder, as published (default: $SELFPROMPT_DATA_DIR, "
                        "data/<folder> of --dataset, or data/kvasir-seg)")
    p.add_argument("--dataset", default=None, choices=DATASET_NAMES,
                   help="a known public set: its layout and name (default: detected; "
                        "`python -m selfprompt datasets` lists them)")
    p.add_argument("--layout", default="auto", choices=["auto", "folder"] + DATASET_NAMES,
                   help=argparse.SUPPRESS)  # older spelling of --dataset
    p.add_argument("--images", default=None, metavar="PATTERN",
                   help="image folder or glob pattern under the data folder, e.g. "
                        "'Original' or '*/*_Dermoscopic_Image/*.bmp' (files the --masks "
                        "pattern matches are never images)")
    p.add_argument("--masks", default=None, metavar="PATTERN",
                   help="mask folder or glob pattern, e.g. 'Ground Truth' or '*/*_mask*.png'")
    p.add_argument("--pair", default=None, metavar="RULE",
                   help="which mask is an image's. Without it, --images and --masks pair "
                        "each mask with the image whose file stem begins the mask's "
                        "(x with x_label, in any folder). Else: a suffix ('_mask'; "
                        "'_mask_1' ... are further masks, united), comma-separated "
                        "suffixes tried in order (default for images/ + masks/: "
                        "',_segmentation,_mask'), or a regular expression with (?P<key>...) "
                        "whose key equals the image's (e.g. '(?P<key>IMD\\d+)_lesion')")
    p.add_argument("--limit", type=int, default=None,
                   help="use only the first N images in name order (CI-sized runs)")


def _add_backbone(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backbone", default="vit_b",
                   help="vit_b (paper), vit_l, vit_h, medsam_lite (LiteMedSAM: real weights "
                        "installed with the kit, no download), vit_t (MobileSAM, optional) or "
                        "tiny (random weights, no download; its masks mean nothing)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="checkpoint file (default: the one `make checkpoints` writes)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA if present)")
    p.add_argument("--cache", type=Path, default=None,
                   help="embedding cache folder (default: $SELFPROMPT_CACHE or data/embeddings)")
    p.add_argument("--cache-dtype", default="float16", choices=["float16", "float32"],
                   help="storage type of cached embeddings (float16 halves disk and reads)")
    p.add_argument("--batch-size", type=int, default=1, help="images per encoder pass")
    p.add_argument("--workers", type=int, default=None,
                   help="image-loading worker processes (default: up to 8 on a GPU, 0 on "
                   "the CPU, where the encoder uses every core)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"],
                   help="encoder arithmetic (autocast)")
    numerics = p.add_mutually_exclusive_group()
    numerics.add_argument("--exact-encoder", action="store_true",
                          help="SAM's own encoder code: with fp32, bit-for-bit set_image; ~2x "
                          "slower on CPU than the default fused path, which differs by "
                          "~4e-6 (the two are cached apart)")
    numerics.add_argument("--fused-encoder", action="store_true",
                          help="TinyViT encoders (medsam_lite, vit_t) fused too: batch norms "
                          "folded, channels_last, GELUs inside the layers, fused attention; "
                          "~1.5x faster on a CPU, ~4e-6 relative from the exact one they "
                          "use by default (which the committed reference was made with; "
                          "cached apart)")


def _layout(args) -> str:
    if args.dataset and args.layout not in ("auto", args.dataset):
        raise ValueError(f"--dataset {args.dataset} and --layout {args.layout} disagree")
    return args.dataset or args.layout


def _data_folder(args) -> Path:
    if args.data is not None:
        return args.data
    if args.dataset and not os.environ.get("SELFPROMPT_DATA_DIR"):
        from ..datasets.catalog import get

        return default_path("data") / get(args.dataset).folder
    return default_data()


def _open(args):
    from ..datasets.reader import open_dataset, parse_pair

    return open_dataset(_data_folder(args), _layout(args), images=args.images,
                        masks=args.masks, pair=parse_pair(args.pair) if args.pair else None)


def _dataset(args, facts: list | None = None):
    from ..datasets.reader import validate

    from ..embeddings import WRITABLE_CACHE
    from ..utils.io import check_writable

    cache = check_writable(args.cache or default_cache(), "the embedding cache", WRITABLE_CACHE)
    dataset = _open(args).subset(args.limit)
    found = validate(dataset, record_dir=cache / "checks", progress=not args.quiet)
    if facts is not None:
        facts += found
    return dataset


def _embeddings(args, dataset):
    from ..models.backbone import load_backbone
    from ..embeddings import embed_dataset
    from ..models.encoder import ImageEncoder

    backbone = load_backbone(args.backbone, args.checkpoint, args.device,
                             checkpoints_dir=default_path("checkpoints"))
    encoder = ImageEncoder(backbone, batch_size=args.batch_size, precision=args.precision,
                           fused=False if args.exact_encoder else
                           True if args.fused_encoder else None)
    embeddings, stats = embed_dataset(dataset, backbone, args.cache or default_cache(),
                                      dtype=args.cache_dtype, workers=args.workers,
                                      progress=not args.quiet, encoder=encoder)
    print(f"embeddings: {stats.total} images, {stats.encoded} encoded, {stats.reused} reused "
          f"from {embeddings.cache.dir}")
    return backbone, embeddings


def cmd_check(args) -> int:
    from ..datasets.layouts import describe_suffixes
    from ..datasets.reader import summarise_check

    facts: list[dict] = []
    dataset = _dataset(args, facts)
    print(f"{dataset.root}: {len(dataset)} image/mask pairs, layout {dataset.layout}: OK")
    naming = describe_suffixes((s.image_path, s.mask_paths) for s in dataset.samples)
    for line in [naming] + summarise_check(facts):
        print(f"  {line}")
    return 0


def cmd_embed(args) -> int:
    _embeddings(args, _dataset(args))
    return 0


def cmd_run(args) -> int:
    from ..evaluation.progress import SweepProgress
    from ..evaluation.protocol import Experiment, parse_k
    from ..evaluation.results import collect

    from ..utils.io import check_writable

    if args.out is not None:  # before minutes of encoding, not after
        check_writable(args.out, "the run folder", "give --out a writable folder")
    dataset = _dataset(args)
    backbone, embeddings = _embeddings(args, dataset)
    name = args.dataset_name or (dataset.layout if dataset.layout != "folder"
                                 else dataset.root.name)  # "folder": named after itself
    # where `make reproduce` writes: chosen shots keep a subfolder and summary lines apart
    out = args.out or default_path("reports/runs") / name / backbone.model_type
    exp = Experiment(dataset, embeddings, backbone, out, dataset_name=name, seed=args.seed,
                     n_folds=args.n_folds, variants=tuple(args.variants),
                     progress=not args.quiet,
                     decoding="sam" if args.sam_decoder else "batched",
                     shot_strategy=args.shots)
    ks = [parse_k(k) for k in args.k]
    exp.write_plan(ks)
    folds = args.folds if args.folds is not None else list(range(args.n_folds))
    # one overall line after each fold (standard error; none under -q)
    progress = SweepProgress(len(args.presets) * len(ks) * len(folds), quiet=args.quiet)
    for preset in args.presets:
        for k in ks:
            for fold in sorted(folds):
                meta = exp.fold_path(preset, k, fold).with_suffix(".json")
                before = meta.stat().st_mtime_ns if meta.exists() else None
                path = exp.run_fold(preset, k, fold, force=args.force)
                # a finished fold that was skipped took no time: it says nothing of the rest
                progress.fold_done(path, computed=meta.stat().st_mtime_ns != before)
    results, _, md = collect(out)
    print(md.read_text())
    print(f"results: {results}\nfolds: {out / 'folds.json'}")
    return 0


def cmd_summarise(args) -> int:
    from ..evaluation.results import collect

    _, _, md = collect(args.run_dir)
    print(md.read_text())
    return 0


def cmd_progress(args) -> int:
    from ..evaluation.progress import targets_line

    if not args.quiet:
        print(targets_line(args.targets, args.since, variant=args.variant), file=sys.stderr,
              flush=True)
    return 0


def add_commands(command) -> None:
    p = command("check", "validate a data set (every file read once)", cmd_check)
    _add_data(p)
    p.add_argument("--cache", type=Path, default=None, help=argparse.SUPPRESS)

    p = command("embed", "encode every image once into the embedding cache", cmd_embed)
    _add_data(p)
    _add_backbone(p)

    p = command("run", "k-shot cross-validation: fold results, folds.json, summary", cmd_run)
    _add_data(p)
    _add_backbone(p)
    p.add_argument("--k", nargs="+", default=["10", "20", "40", "all"],
                   help="numbers of training images (integers or 'all')")
    p.add_argument("--folds", nargs="+", type=int, default=None,
                   help="which folds to run (default: all)")
    p.add_argument("--n-folds", type=int, default=5, help="cross-validation folds")
    p.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS),
                   help="paper: as the authors computed (seeded); corrected: D2/D4/D5/D7 fixed")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS),
                   choices=list(VARIANTS) + [AUTO],
                   help="what is scored per test image; auto: the prompt and classifier "
                   "threshold chosen by cross-validation inside the k shots (each fold's "
                   "JSON records the choice)")
    p.add_argument("--shots", default="random", choices=SHOT_STRATEGIES,
                   help="how each fold's k shots are chosen from its training images: "
                   "random (the paper's draw), kcenter (diverse: farthest-first on pooled "
                   "embeddings) or medoids (representative: k-means centres); from the "
                   "embeddings alone, before any mask is read; their folds go in a "
                   "subfolder of the run folder (k10/medoids/fold0.csv)")
    p.add_argument("--seed", type=int, default=42, help="drives folds, shots and box widening")
    p.add_argument("--dataset-name", default=None, help="name in the table (default: layout)")
    p.add_argument("--out", type=Path, default=None,
                   help="run folder (default: reports/runs/<data set>/<backbone>)")
    p.add_argument("--force", action="store_true", help="recompute finished folds")
    p.add_argument("--sam-decoder", action="store_true",
                   help="decode with SAM's own calls, one prompt at a time, bit for bit "
                   "(default: an image's prompts in one call, equal up to float rounding "
                   "and ~1.8x faster; each fold's JSON records which)")

    p = command("summarise", "combine a run folder's fold files into tables", cmd_summarise,
                aliases=["summarize"])
    p.add_argument("run_dir", type=Path)

    p = command("progress", "where a sweep of folds stands (make reproduce: after each fold)",
                cmd_progress)
    p.add_argument("targets", nargs="+", type=Path,
                   help="every fold's JSON of the job, finished or not")
    p.add_argument("--since", type=float, required=True,
                   help="when the job started, seconds since the epoch (date +%%s)")
    p.add_argument("--variant", default="point_box",
                   help="whose mean Dice the line shows (default: point_box)")
