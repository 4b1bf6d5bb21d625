"""Your own images: which to label first (``suggest``), then masks for all the rest
(``predict``), the least confident listed first for checking."""
from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from ..presets import PRESETS
from .method import DATASET_NAMES, default_cache

#: the prompt ``predict`` uses unless told: chosen on the labelled images
AUTO = "auto"
#: how many of the least confident images the last lines of ``predict`` name
REVIEW_FIRST = 5


def _add_backbone(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backbone", default="medsam_lite",
                   help="medsam_lite (LiteMedSAM: real weights installed with the kit, the "
                        "default), vit_b, vit_l, vit_h, vit_t, or tiny (random weights: its "
                        "masks mean nothing)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="checkpoint file (default: the bundled or `make checkpoints` one)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA if present)")
    p.add_argument("--cache", type=Path, default=None,
                   help="embedding cache folder (default: $SELFPROMPT_CACHE or data/embeddings)")
    p.add_argument("--seed", type=int, default=42,
                   help="seeds everything random (k-means starts, auto's inner splits, box "
                        "widening: per image, from the seed and the image's content)")


def _encoding(backbone, cache_root: Path | None):
    """The backbone's encoder and its cache folder (the one ``embed`` and ``run`` use)."""
    from ..embeddings import EmbeddingCache
    from ..models.encoder import ImageEncoder
    from ..utils.paths import cache_folder

    encoder = ImageEncoder(backbone)
    cache = EmbeddingCache.for_backbone(cache_folder(cache_root or default_cache()), backbone,
                                        encoder=encoder)
    return encoder, cache


def _problems():
    """Where a skipped image's one line goes: standard error, above any progress bar."""
    import sys

    from ..utils.console import say

    return lambda line: say(line, stream=sys.stderr)


# --------------------------------------------------------------------------- suggest
def cmd_suggest(args) -> int:
    import time

    from ..models.backbone import load_backbone
    from ..own.images import list_images
    from ..own.suggest import suggest, write_list
    from ..utils.io import check_writable
    from ..utils.paths import default_path

    images = list_images(args.images)
    if args.k > len(images):
        raise ValueError(f"--k {args.k} asks for more images than the {len(images)} given")
    check_writable(args.out.parent, "the list's folder", "give --out a writable path")
    start = time.perf_counter()
    backbone = load_backbone(args.backbone, args.checkpoint, args.device,
                             checkpoints_dir=default_path("checkpoints"))
    encoder, cache = _encoding(backbone, args.cache)
    found = suggest(images, args.k, cache=cache, encoder=encoder, seed=args.seed,
                    progress=not args.quiet, say=_problems())
    write_list(args.out, found.chosen)
    for image in found.chosen:
        print(image.path)
    skipped = f"; {len(found.failed)} unreadable image(s) left out" if found.failed else ""
    print(f"label these {len(found.chosen)} of {len(images)} images first (medoids of their "
          f"{backbone.model_type} embeddings{skipped}; {time.perf_counter() - start:.1f} s); "
          f"the list is in {args.out}")
    return 0


# --------------------------------------------------------------------------- predict
def _labelled(args):
    """The labelled pairs, read as ``check`` reads a data set, every file checked before
    any encoding (a missing mask or a mask of another size stops here)."""
    from ..datasets.reader import open_dataset, parse_pair, validate
    from ..utils.io import check_writable
    from ..embeddings import WRITABLE_CACHE

    root, images = Path(args.labelled), args.labelled_images
    if images is None and any(c in str(root) for c in "*?["):
        from ..datasets.layouts import _split  # a pattern: its fixed folders are the root

        fixed, images = _split(str(root))
        root = Path(fixed)
    pair = parse_pair(args.pair) if args.pair else None
    dataset = open_dataset(root, args.dataset or "auto", images=images,
                           masks=args.labelled_masks, pair=pair)
    cache = check_writable(args.cache or default_cache(), "the embedding cache",
                           WRITABLE_CACHE)
    validate(dataset, record_dir=cache / "checks", progress=not args.quiet)
    return dataset


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _identity(args, backbone, encoder, dataset=None) -> str:
    """What the masks depend on: the model file, or the labelled files and the settings
    of the fit; the backbone, its encoder and the kit's version. A journal of another
    identity is redone."""
    from .. import __version__

    what: dict = {"backbone": backbone.model_hash, "numerics": encoder.numerics,
                  "seed": args.seed, "kit": __version__}
    if args.model is not None:
        what["model"] = _sha256(args.model)
    else:
        what.update(prompt=args.prompt, preset=args.preset, labelled=[
            [s.name, _sha256(s.image_path), *map(_sha256, s.mask_paths)]
            for s in dataset.samples])
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def cmd_predict(args) -> int:
    from ..own.images import list_images
    from ..own.predict import predict_images
    from ..utils.io import check_writable

    if (args.model is None) == (args.labelled is None):
        raise ValueError("give either --labelled (the images you labelled, to fit on) or "
                         "--model (a fit saved with --save-model), not both or neither")
    if args.model is not None and args.prompt != AUTO:
        raise ValueError(f"--prompt {args.prompt} cannot change a saved fit's prompt: fit "
                         "again with --labelled and --prompt")
    # every check that can fail fast runs before the backbone loads or an image is encoded
    images = list_images(args.images)
    if args.labelled is not None and args.prompt != AUTO:
        from ..methods.self_prompt import check_prompt

        check_prompt(args.prompt)
    dataset = _labelled(args) if args.labelled is not None else None
    if args.model is not None and not args.model.is_file():
        raise FileNotFoundError(f"{args.model}: no such model file (write one with "
                                "--save-model)")
    check_writable(args.out, "the output folder", "give --out a writable folder")
    if args.save_model is not None:
        check_writable(args.save_model.parent, "the model's folder",
                       "give --save-model a writable path")
    model = _fit(args, dataset)
    encoder, cache = _encoding(model.backbone_, args.cache)
    identity = _identity(args, model.backbone_, encoder, dataset)
    method = model.method_
    summary = predict_images(lambda f, size, seed: method.predict(f, size, seed=seed),
                             images, args.out, cache=cache, encoder=encoder,
                             identity=identity, seed=args.seed, progress=not args.quiet,
                             say=_problems())
    n = len(summary.rows)
    reused = f", {summary.reused} kept from an earlier run" if summary.reused else ""
    print(f"{n} of {len(images)} images segmented ({summary.computed} computed{reused}; "
          f"{summary.seconds:.1f} s) with prompt {model.prompt_}: masks in "
          f"{args.out / 'masks'}, overlays in {args.out / 'overlays'}")
    if summary.failed:
        print(f"{len(summary.failed)} image(s) could not be read: listed in "
              f"{args.out / 'failed.txt'}")
    if summary.rows:
        first = ", ".join(f"{r.name} ({r.score:.2f})" for r in summary.rows[:REVIEW_FIRST])
        print(f"{summary.table} lists the least confident first (quality score ascending): "
              f"check those first: {first}")
    return 1 if summary.failed else 0


class _LabelledEmbeddings(Sequence):
    """The labelled images' embeddings, each read (from the cache, encoded once if
    missing) when the fit asks for it: memory does not grow with the number labelled."""

    def __init__(self, model, dataset) -> None:
        self.model, self.paths = model, [s.image_path for s in dataset.samples]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, j: int):
        return self.model.embed(self.paths[j])


def _fit(args, dataset):
    """The fitted ``selfprompt.api.SelfPrompt``: loaded from --model, or fitted on the
    labelled images through the embedding cache."""
    from ..api import SelfPrompt
    from ..presets import get_preset

    cache = args.cache or default_cache()
    if args.model is not None:
        model = SelfPrompt.load(args.model, checkpoint=args.checkpoint, device=args.device,
                                cache=cache)
        print(f"model {args.model}: prompt {model.prompt_}, fitted on {model.n_shots_} "
              "labelled images")
        return model
    preset = get_preset(args.preset)
    model = SelfPrompt(backbone=args.backbone, prompt=args.prompt, preset=args.preset,
                       checkpoint=args.checkpoint, device=args.device, seed=args.seed,
                       cache=cache)
    masks = [dataset.mask(i, preset.mask_threshold) for i in range(len(dataset))]
    model.fit_embeddings(_LabelledEmbeddings(model, dataset), masks)
    print(f"fitted on {len(dataset)} labelled images: prompt {model.prompt_}")
    if args.save_model is not None:
        model.save(args.save_model)
        print(f"model saved to {args.save_model}")
    return model


def add_commands(command) -> None:
    p = command("suggest", "which of your images to label first (medoids of their "
                "embeddings)", cmd_suggest)
    p.add_argument("--images", nargs="+", required=True, metavar="FOLDER|PATTERN",
                   help="image folders, glob patterns ('scans/*.png') or files")
    p.add_argument("--k", type=int, default=10, help="how many images to label")
    p.add_argument("--out", type=Path, default=Path("to_label.txt"),
                   help="the list, one image path per line (default: to_label.txt)")
    _add_backbone(p)

    p = command("predict", "masks for your images, fitted on the ones you labelled; "
                "least confident listed first", cmd_predict)
    p.add_argument("--images", nargs="+", required=True, metavar="FOLDER|PATTERN",
                   help="the images to segment, no masks needed: folders, glob patterns "
                        "or files")
    p.add_argument("--out", type=Path, required=True,
                   help="output folder: masks/, overlays/, predictions.csv (a rerun "
                        "resumes: finished images are kept); unreadable images are listed "
                        "in failed.txt and make the exit status 1")
    p.add_argument("--labelled", default=None, metavar="FOLDER|PATTERN",
                   help="the labelled images and their masks, read as `check` reads a data "
                        "set: a folder with images/ and masks/ (or a known set's layout), "
                        "or a pattern of images with --labelled-masks")
    p.add_argument("--labelled-images", default=None, metavar="PATTERN",
                   help="image folder or pattern under --labelled (as check's --images)")
    p.add_argument("--labelled-masks", default=None, metavar="PATTERN",
                   help="mask folder or pattern under --labelled (as check's --masks)")
    p.add_argument("--pair", default=None, metavar="RULE",
                   help="which mask is an image's (as check's --pair)")
    p.add_argument("--dataset", default=None, choices=DATASET_NAMES,
                   help="the labelled folder is this known set's layout (default: detected)")
    p.add_argument("--model", type=Path, default=None,
                   help="a fit saved by --save-model, instead of --labelled")
    p.add_argument("--save-model", type=Path, default=None,
                   help="save the fit to this file (reuse it with --model)")
    p.add_argument("--prompt", default=AUTO,
                   help="auto (chosen on the labelled images: prompt and threshold), or a "
                        "variant: linear, point, box, point_box, box_cc, ...")
    p.add_argument("--preset", default="corrected", choices=list(PRESETS),
                   help="corrected (default) or paper (the authors' computation)")
    _add_backbone(p)
