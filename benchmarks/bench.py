"""``make bench``: encoder passes, encoder speed, arithmetic rate and memory, in one table.

1. A full k-shot sweep (folds x k) with the kit's flow (each image encoded once into
   the cache, then classifier -> prompts -> SAM decode from the cache) against a
   re-enactment of the authors' flow (``SamPredictor.set_image`` per image, twice per
   test image, again in every fold, D6), on the same images and backbone; then the
   kit's warm rerun. Passes are counted by a hook on the image encoder's forward.
   The full-size counts (Kvasir-SEG: 1000 images, k = 10/20/40/all) are analytic.
2. Encoder images/s per backbone, batch size and precision (random weights: same speed).
3. Achieved multiply-adds per second (MACs per image x images/s) beside this machine's
   measured matrix-multiply peak.
4. Peak resident memory: of the measured sweep, and of the classifier's k = all fit at
   full size (synthetic embeddings, no encoder needed); on a GPU, peak GPU memory.
5. The sweep after encoding: its stages per test image, a bf16 encoder's Dice change on
   real weights, and a finished ``make reproduce`` timed against the committed reference.

Each row is written out as soon as it is measured (:class:`Table`), and a measurement
that raises becomes a ``failed`` row (:func:`measuring`): a borrowed GPU's run cut short
or broken in one place still leaves the rest.

Defaults are small (minutes on 2 CPU cores); see ``--help`` and benchmarks/README.md
for the full size. Run as ``python -m benchmarks.bench``.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
KVASIR = REPO.parent / "shared" / "data" / "kvasir-seg"
COLUMNS = ("#", "measurement", "value", "unit", "detail")


# ------------------------------------------------------------------------- helpers
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


def peak_rss_mib() -> float:
    """This process's peak resident memory. Linux: ``VmHWM``, which starts afresh at
    ``exec`` (``ru_maxrss`` would carry over the parent's peak into a child process)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class PassCounter:
    """Counts images through ``module.forward`` (a forward hook: any caller, any flow)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.n = 0
        self._h = module.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output) -> None:
        self.n += int(inputs[0].shape[0])

    def close(self) -> None:
        self._h.remove()


def random_backbone(model_type: str, device: str = "cpu"):
    from selfprompt.models.backbone import Backbone, build

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sam = build(model_type)
    return Backbone(sam.to(device).eval(), model_type, Path("<random>"), "random" * 8,
                    torch.device(device))


def load_tiny(tmp: Path):
    from selfprompt.models.backbone import load_backbone

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_backbone("tiny", tmp / "sam_tiny_seed0.pth", device="cpu")


def open_data(arg: str | None, tmp: Path, n: int):
    from selfprompt.datasets.reader import open_dataset
    from selfprompt.datasets.synthetic import make_synthetic

    if arg:
        root = Path(arg)
    elif (KVASIR / "images").is_dir():
        root = KVASIR
    else:
        root = make_synthetic(tmp / "synthetic", n=n, seed=0)
    return open_dataset(root).subset(n), root


def mean_dice(rows, variant: str = "point_box") -> float:
    d = [r["dice"] for r in rows if r["variant"] == variant and r["counted"]]
    return float(np.mean(d)) if d else float("nan")


# ------------------------------------------------------------------ 1. the sweep
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


# ----------------------------------------------- 4. memory of the k = all classifier fit
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
        clf = exp.classifier(preset, k, fold)
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
    """Issue #13's accuracy rule for a bf16 encoder, on real weights: the embeddings of
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


def run_child(section: str, args, extra: list[str] = ()) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench", "--child", section] + child_args(args)
    cmd += list(extra)
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:  # its last line first: what a failed row's detail shows
        last = ([ln for ln in out.stderr.splitlines() if ln.strip()] or ["no message"])[-1]
        raise RuntimeError(f"{section} child failed: {last}\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def child_args(args) -> list[str]:
    a = ["--images", str(args.images), "--folds", str(args.folds), "--k", *map(str, args.k),
         "--sweep-backbone", args.sweep_backbone, "--sweep-batch", str(args.sweep_batch),
         "--workers", str(args.workers), "--preset", args.preset, "--seed", str(args.seed),
         "--memory-images", str(args.memory_images), "--memory-iter", str(args.memory_iter),
         "--memory-encode", str(args.memory_encode),
         "--memory-encoder-model", args.memory_encoder_model,
         "--variants", *args.variants,
         "--stages-backbone", args.stages_backbone, "--stages-k", str(args.stages_k),
         "--stages-preset", args.stages_preset, "--stages-test", str(args.stages_test),
         "--stages-images", str(args.stages_images)]
    if args.stages_bf16 is not None:
        a += ["--stages-bf16" if args.stages_bf16 else "--no-stages-bf16"]
    if args.data:
        a += ["--data", args.data]
    if args.memory_preset:
        a += ["--memory-preset", args.memory_preset]
    if not args.memory_backbone:
        a += ["--no-memory-backbone"]
    return a


# --------------------------------------------------------------- 2./3. speed and rate
def encoder_macs(backbone) -> float:
    """Multiply-adds of the image encoder for one input square (flops / 2): 1024 x 1024
    for SAM, 256 x 256 for LiteMedSAM."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 3, backbone.img_size, backbone.img_size, device=backbone.device)
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        backbone.sam.image_encoder(x)
    return fc.get_total_flops() / 2


def cpu_has_bf16() -> bool:
    """Whether the CPU has bf16 arithmetic units (AVX512-BF16 or AMX), per /proc/cpuinfo."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def synchronizer(device: torch.device):
    """What waits for a device's queued work before a clock is read (nothing on a CPU)."""
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def matmul_peak(dtype=torch.float32, n: int = 2048, reps: int = 5, device: str = "cpu") -> float:
    """Best multiply-adds per second of an ``n x n`` matrix product (all threads)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sync = synchronizer(a.device)
    best = float("inf")
    for _ in range(reps + 1):
        sync()
        t = time.perf_counter()
        torch.mm(a, b)
        sync()
        best = min(best, time.perf_counter() - t)
    return n ** 3 / best


class Speed(NamedTuple):
    """What :func:`encoder_speed` measured."""

    images_per_s: float
    embedding: torch.Tensor   # the first image's, for comparisons between rows
    gpu_bytes: int | None     # peak torch.cuda.max_memory_allocated (None on a CPU)
    first_s: float            # the first batch's seconds: set-up (compiling) included


def encoder_speed(backbone, batch: int, precision: str, reps: int, warmup: int,
                  fused: bool | None = None, channels_last: bool = False,
                  compile: bool = False) -> Speed:
    """Images/s of ``ImageEncoder.encode`` (best of ``reps`` timed batches, as the matmul
    peak is a best of several: both then say what the machine does when undisturbed),
    after ``warmup`` batches (at least one when ``compile``)."""
    from selfprompt.models.encoder import ImageEncoder

    enc = ImageEncoder(backbone, batch_size=batch, precision=precision,
                       channels_last=channels_last, fused=fused, compile=compile)
    g = torch.Generator().manual_seed(1)
    side = backbone.img_size
    prepared = [torch.randint(0, 256, (3, side, side), dtype=torch.uint8, generator=g)
                for _ in range(batch)]
    cuda = backbone.device.type == "cuda"
    sync = synchronizer(backbone.device)
    if cuda:
        torch.cuda.reset_peak_memory_stats(backbone.device)
    seconds = []
    for _ in range(max(warmup, 1 if compile else 0) + max(reps, 1)):
        t = time.perf_counter()
        out = enc.encode(prepared)
        sync()
        seconds.append(time.perf_counter() - t)
    return Speed(batch / min(seconds[-max(reps, 1):]), out[0],
                 torch.cuda.max_memory_allocated(backbone.device) if cuda else None,
                 seconds[0])


def backbone_or_row(model: str, device: str, rows: list, label: str):
    """``random_backbone(model, device)``, or None after an "n/a" row saying why, when
    the kit says the backbone cannot be built here (vit_t without its optional package).
    Any other error (out of memory on the way to a GPU, say) is the measurement's to
    report: a ``failed`` row (:func:`measuring`)."""
    from selfprompt.models.backbone import CheckpointError

    try:
        return random_backbone(model, device)
    except CheckpointError as err:
        rows.append(("2", label, "n/a", "", str(err).split(":")[0][:80]))
        return None


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


def compiled_rows(args, rows: list) -> None:
    """Section 2, ``torch.compile``, last (compiling takes minutes): on each device,
    ``ImageEncoder(compile=True)`` beside the same encoder uncompiled, measured just
    before it, with the first batch's seconds (the compiling) and the embeddings'
    difference. Whether compiling pays once shapes are fixed is what #13 leaves open
    for a GPU; on 2 CPU cores it did not."""
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


@contextlib.contextmanager
def masked_attention_route():
    """SAM's relative-position bias as an attention mask on every device (the CPU's
    route), for comparison with the GPU's default (the bias inside the products)."""
    import selfprompt.models.encoder as encoder_module

    kept = encoder_module.BIAS_IN_PRODUCTS
    encoder_module.BIAS_IN_PRODUCTS = ()
    try:
        yield
    finally:
        encoder_module.BIAS_IN_PRODUCTS = kept


def parse_entries(text: str) -> list[tuple[str, int, str]]:
    """``"vit_b:16:bf16;tiny:2"`` -> ``[("vit_b", 16, "bf16"), ("tiny", 2, "fp32")]``."""
    entries = []
    for part in filter(None, text.split(";")):
        model, batch, precision = (part.split(":") + ["fp32"])[:3]
        entries.append((model.strip(), int(batch), precision.strip()))
    return entries


def parse_grid(text: str) -> dict[str, list[int]]:
    """``"tiny:1,4,8;vit_b:1"`` -> ``{"tiny": [1, 4, 8], "vit_b": [1]}``."""
    grid = {}
    for part in filter(None, text.split(";")):
        name, _, batches = part.partition(":")
        grid[name.strip()] = [int(b) for b in batches.split(",") if b]
    return grid


def variant_rows(args, rows: list, backbone, name: str, variant: tuple, macs: float,
                 peak: float) -> torch.Tensor:
    """Sections 2-4 for one (batch, precision, encoder) of a backbone: images/s, the
    achieved rate against ``peak`` (on a CPU in fp32, against the peak measured around
    the row instead) and on a GPU the peak memory, each with its #13 target where it has
    one. Returns the first image's embedding."""
    b, p, fast = variant
    model, device = backbone.model_type, backbone.device.type
    warm = args.vit_b_warmup if (model == "vit_b" and device == "cpu") else args.warmup
    # on a CPU, fp32 rows are set against the peak measured just before and after them:
    # a shared machine's rate drifts between runs (measured here: 71-96 GMAC/s), and a
    # peak from another minute made the verdict flip
    adjacent = device == "cpu" and p == "fp32"
    before = matmul_peak(torch.float32, args.mm_size, reps=3) if adjacent else 0
    with masked_attention_route() if fast == "mask" else contextlib.nullcontext():
        ips, emb, gpu_bytes, _ = encoder_speed(
            backbone, b, p, args.reps, warm, None if fast == "mask" else fast,
            channels_last=device == "cuda" and p != "fp32")
    if adjacent:
        peak = max(before, matmul_peak(torch.float32, args.mm_size, reps=3))
    rows.append(("2", f"{name}: encoder speed", f"{ips:.3g}", "images/s",
                 f"best of {args.reps} after {warm} warm-up"))
    frac = macs * ips / peak
    target = ""
    if model == "vit_b" and device == "cpu" and p == "fp32" and fast is None:
        target = f"; target 70 %: {'met' if frac >= 0.7 else 'NOT met'}"
    if model == "medsam_lite" and device == "cpu" and p == "fp32":
        target = f"; target 60 %: {'met' if frac >= 0.6 else 'NOT met'}"
    goal = GPU_TARGETS.get(model) if device == "cuda" and p != "fp32" else None
    if goal and b >= 16:
        target = f"; target {goal} images/s: {'met' if ips >= goal else 'NOT met'}"
    rows.append(("3", f"{name}: achieved rate", f"{macs * ips / 1e9:.1f}", "GMAC/s",
                 f"{100 * frac:.0f} % of the {p if p != 'fp16' else 'bf16'} matmul peak"
                 + (f" ({peak / 1e9:.0f} GMAC/s, measured around this row)" if adjacent
                    else "") + target))
    if gpu_bytes is not None:
        limit = ""
        if model == "vit_b" and p != "fp32" and b == 32:
            limit = f"; target under 8 GiB: {'met' if gpu_bytes < 8 * 2**30 else 'NOT met'}"
        rows.append(("4", f"{name}: peak GPU memory", f"{gpu_bytes / 2**30:.2f}", "GiB",
                     f"torch.cuda.max_memory_allocated{limit}"))
    return emb


#: the detail of the GPU rows' "not measured" stand-ins
NO_GPU = ("no CUDA device here (or --no-gpu); on a GPU machine `make bench` fills these rows, or "
          "benchmarks/gpu.sh the GPU rows alone (benchmarks/README.md)")
#: images/s that the bf16 rows at batch 16 or more should reach on an H100/H200 (#13)
GPU_TARGETS = {"vit_b": 300, "vit_h": 80}


def speed_section(args, rows: list) -> None:
    from selfprompt.models.encoder import ImageEncoder, use_all_cores
    from selfprompt.models.tinyvit import has_tinyvit

    threads = use_all_cores()
    if not args.gpu_only:
        peak32 = matmul_peak(torch.float32, args.mm_size)
        peak16 = matmul_peak(torch.bfloat16, args.mm_size // 2, reps=2)
        rows.append(("3", "CPU fp32 matmul peak (torch.mm)", f"{peak32 / 1e9:.1f}", "GMAC/s",
                     f"{args.mm_size}^3, {threads} threads, best of 5"))
        rows.append(("3", "CPU bf16 matmul peak (torch.mm)", f"{peak16 / 1e9:.1f}", "GMAC/s",
                     f"{args.mm_size // 2}^3, {threads} threads"))
    devices = [] if args.gpu_only else [("cpu", parse_grid(args.speed), args.precisions)]
    if torch.cuda.is_available() and not args.no_gpu:
        devices.append(("cuda", parse_grid(args.gpu_speed), args.precisions))
    else:
        rows.append(("2", "cuda: encoder speed, rate, GPU memory, end to end, compiled",
                     "not measured", "", NO_GPU))
    for device, grid, precisions in devices:
        if device == "cuda":
            peak32 = matmul_peak(torch.float32, 8192, device="cuda")
            peak16 = matmul_peak(torch.bfloat16, 8192, device="cuda")
            rows.append(("3", "GPU fp32 / bf16 matmul peak", f"{peak32 / 1e12:.0f} / "
                         f"{peak16 / 1e12:.0f}", "TMAC/s", torch.cuda.get_device_name()))
        for model, batches in grid.items():
            backbone = macs = None  # the previous model's, freed before this one is built
            with measuring(rows, "3", f"{model} encoder ({device}): built, MACs counted"):
                backbone = backbone_or_row(model, device, rows, f"{model} encoder ({device})")
                if backbone is not None:
                    macs = encoder_macs(backbone)
                    rows.append(("3", f"{model} encoder MACs per image", f"{macs / 1e9:.1f}",
                                 "GMAC", f"FlopCounterMode, {backbone.img_size} x "
                                 f"{backbone.img_size}"))
            if macs is None:
                continue
            # (batch, precision, fused): None is the kit's default (SAM's ViTs fused,
            # TinyViT exact); False SAM's own attention; True TinyViT's fused copy
            variants = [(b, p, None) for p in precisions for b in batches]
            if args.exact_encoder and ImageEncoder(backbone).fused:
                variants.append((batches[0], "fp32", False))
            if has_tinyvit(backbone.sam.image_encoder):
                variants.append((batches[0], "fp32", True))
            elif device == "cuda" and any(b >= 16 for b in batches) and "bf16" in precisions:
                # SAM's ViTs on a GPU: their bias in the attention's products (the
                # default there) against the CPU's route, the bias as a mask
                variants.append((min(b for b in batches if b >= 16), "bf16", "mask"))
            ref = None
            for b, p, fast in variants:
                if p != "fp32" and device == "cpu" and model not in args.cpu_bf16_models:
                    continue  # no bf16 units on most CPUs: 10-100x slower than fp32
                name = f"{model} {device} batch {b} {p}" + {
                    None: "", False: " exact-encoder", True: " fused-encoder",
                    "mask": " bias-as-mask"}[fast]
                emb = None
                with measuring(rows, "2", f"{name}: encoder speed"):
                    emb = variant_rows(args, rows, backbone, name, (b, p, fast), macs,
                                       peak16 if p != "fp32" else peak32)
                if emb is None:
                    continue
                if b == batches[0] and p == "fp32" and fast is None:
                    ref = emb
                elif b == batches[0] and ref is not None:
                    d = (emb - ref).abs()
                    rows.append(("2", f"{name}: embedding vs fp32", f"{d.max().item():.3g}",
                                 "max abs",
                                 f"relative {d.max().item() / ref.abs().max().item():.2g}, "
                                 f"mean abs {d.mean().item():.2g}"))
            del backbone
        grid, images = (args.e2e, args.e2e_images) if device == "cpu" else \
            (args.gpu_e2e, args.gpu_e2e_images)
        with measuring(rows, "2", f"{device}: end to end (embed)"):
            end_to_end_rows(args, rows, device, grid, images)


# ----------------------------------------------------------------------------- main
#: the committed reference's provenance: the full sweep's seconds per stage
REFERENCE = REPO / "reports" / "reference" / "kvasir" / "medsam_lite" / "provenance.json"
#: test images scored in a full sweep: 2 presets x 4 k values x 1000 images
FULL_SWEEP_IMAGES = 2 * 4 * 1000


def reference_provenance() -> dict | None:
    """The committed reference's provenance (its seconds by stage), None if absent."""
    return json.loads(REFERENCE.read_text()) if REFERENCE.is_file() else None


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


def measured_sweep(runs: Path) -> dict | None:
    """A finished sweep's time, from what its folds recorded: each fold's JSON (seconds
    of fit, replay and segment) and its executed notebook (papermill's start and end).
    None when ``runs`` holds no executed fold."""
    from datetime import datetime

    folds = sorted(runs.glob("*/k*/fold*.json"))
    books = sorted((runs / "notebooks").glob("05_evaluate_*.ipynb"))
    books = [b for b in books if not b.name.endswith(".tmp.ipynb")]
    if not folds or not books:
        return None
    stage = {"fit": 0.0, "replay": 0.0, "segment": 0.0}
    threads = set()
    for f in folds:
        meta = json.loads(f.read_text())
        for key in stage:
            stage[key] += meta["seconds"].get(key, 0.0)
        threads.add(meta.get("environment", {}).get("torch_threads"))
    starts, ends, total = [], [], 0.0
    for b in books:
        pm = json.loads(b.read_text())["metadata"].get("papermill", {})
        if pm.get("start_time") and pm.get("end_time"):
            starts.append(datetime.fromisoformat(pm["start_time"]))
            ends.append(datetime.fromisoformat(pm["end_time"]))
            total += pm.get("duration") or 0.0
    if not starts:
        return None
    stage["notebook rest"] = max(0.0, total - sum(stage.values()))
    return {"folds": len(folds), "notebooks": len(starts), "stage": stage,
            "wall": (max(ends) - min(starts)).total_seconds(),
            "threads": sorted(t for t in threads if t)}


def sweep_rows(args, rows: list) -> None:
    """5: a whole sweep, measured (``--sweep-runs``), against the committed reference."""
    runs = Path(args.sweep_runs)
    m = measured_sweep(runs) if runs.is_dir() else None
    if m is None:
        rows.append(("5", "measured sweep after encoding (make reproduce)", "not measured",
                     "", f"no executed folds under {runs}; `make reproduce MODEL=medsam_lite "
                     "JOBS=2` writes them there"))
        return
    split = ", ".join(f"{k} {v:.0f} s" for k, v in m["stage"].items())
    rows += [
        ("5", "measured sweep: wall time of its folds", f"{m['wall']:.0f}", "s",
         f"{m['folds']} folds ({runs}), first notebook's start to last one's end; "
         f"{'/'.join(map(str, m['threads']))} thread(s) a fold"),
        ("5", "measured sweep: process-seconds by stage", f"{sum(m['stage'].values()):.0f}",
         "s", f"{split} (notebook rest: kernel, imports, figures)"),
    ]
    provenance = reference_provenance()
    if provenance:
        ref = provenance["seconds"]
        base = sum(ref[k] for k in ("fit", "replay", "segment", "report") if k in ref)
        rows.append(("5", "measured sweep vs the committed reference, after encoding",
                     f"{base / m['wall']:.2f}", "x",
                     f"reference fit + replay + segment + report {base:.0f} s (its notebooks' "
                     f"rest not recorded, so this understates) / this wall {m['wall']:.0f} s; "
                     f"target 3x: {'met' if base / m['wall'] >= 3 else 'NOT met'}"))


def render_row(row) -> str:
    return "| " + " | ".join(str(c) for c in row) + " |"


HEAD = [render_row(COLUMNS), "|" + "---|" * len(COLUMNS)]


def render(rows) -> str:
    return "\n".join(HEAD + [render_row(r) for r in rows])


class Table(list):
    """The bench's rows, each written out the moment it is measured: printed, and the
    whole table so far rewritten (atomically) to ``out``.

    A run cut short (a borrowed GPU's time limit, a machine taken back) leaves every
    row measured before it, and the file's header says the run did not finish.
    """

    def __init__(self, out: Path, started: float, argv: list[str] = ()) -> None:
        super().__init__()
        self.out, self.started, self.argv = out, started, list(argv)
        print("\n".join(HEAD), flush=True)

    def append(self, row: tuple) -> None:
        super().append(row)
        print(render_row(row), flush=True)
        self.write(done=False)

    def extend(self, rows) -> None:
        for row in rows:
            self.append(row)

    def __iadd__(self, rows) -> "Table":
        self.extend(rows)
        return self

    @property
    def failed(self) -> list[tuple]:
        return [r for r in self if r[2] == "failed"]

    def write(self, done: bool) -> None:
        """The table so far, under a header saying what made it: command, commit, machine."""
        import shlex

        from selfprompt.utils.io import atomic_write_text
        from selfprompt.utils.provenance import cpu_model, kit_commit

        seconds = time.perf_counter() - self.started
        state = (f"{seconds:.0f} s in all" if done else
                 f"NOT FINISHED: the rows measured in its first {seconds:.0f} s")
        if self.failed:
            state += f"; {len(self.failed)} failed (see their detail)"
        gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
        command = shlex.join(["python", "-m", "benchmarks.bench"] + self.argv)
        header = (f"# make bench\n\n`{command}`\n\n{time.strftime('%Y-%m-%d %H:%M')}, kit "
                  f"{kit_commit()}, torch {torch.__version__}, {cpu_model()} "
                  f"({os.cpu_count()} CPUs){gpu}; {state}. "
                  f"Sections: 1 passes and wall time of a sweep, 2 encoder speed, 3 arithmetic "
                  f"rate, 4 peak memory, 5 the sweep after encoding.\n\n")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.out, header + render(self) + "\n")


@contextlib.contextmanager
def measuring(rows: list, section: str, label: str):
    """Run one measurement; if it raises, add a ``failed`` row that names the error
    (its traceback goes to stderr) and go on with the next one.

    A borrowed GPU gives a few minutes for one prepared run: one model that runs out of
    memory, or one kernel a driver refuses, must not cost the rows after it. The bench
    still exits with status 1 when a row failed.
    """
    import traceback

    try:
        yield
    except Exception as err:  # noqa: BLE001 -- reported as a row, and in the exit status
        traceback.print_exc()
        first = (str(err).strip().splitlines() or [""])[0][:200]
        rows.append((section, label, "failed", "", f"{type(err).__name__}: {first}"))
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


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


def parse_args(argv=None) -> argparse.Namespace:
    """The bench's options (``--help``), with the CPU bf16 models chosen when not given."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", help="data set folder (default: ../shared/data/kvasir-seg if "
                   "present, else a synthetic one)")
    p.add_argument("--images", type=int, default=10, help="images in the measured sweep")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--k", nargs="+", default=["2", "all"])
    p.add_argument("--variants", nargs="+", default=["point_box"],
                   help="prompt variants decoded per test image (both flows)")
    p.add_argument("--full-images", type=int, default=1000, help="analytic counts: data size")
    p.add_argument("--full-k", nargs="+", default=["10", "20", "40", "all"])
    p.add_argument("--sweep-backbone", default="tiny")
    p.add_argument("--sweep-batch", type=int, default=4)
    p.add_argument("--workers", type=int, default=1, help="image decode/resize workers")
    p.add_argument("--preset", default="corrected",
                   help="per-image random draws make both flows draw the same prompts")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--speed", default="tiny:1,4,8;vit_t:1,2;medsam_lite:1,4;vit_b:1",
                   help="CPU speed grid: model:batch,batch;...")
    p.add_argument("--gpu-speed",
                   default="vit_b:1,16,32;vit_h:16;medsam_lite:1,16,64;vit_t:1,16,32;tiny:1,16",
                   help="GPU speed grid, the targets' models first: a run cut short keeps them")
    p.add_argument("--e2e", default="medsam_lite:1",
                   help="CPU end-to-end embedding rows (model:batch[:precision];...), each "
                   "beside its encoder-only rate")
    p.add_argument("--gpu-e2e", default="vit_b:16:bf16;vit_b:16;medsam_lite:64;tiny:16",
                   help="the same on a GPU (target: 80 %% of the encoder-only rate)")
    p.add_argument("--compile", default="",
                   help="CPU rows of ImageEncoder(compile=True) (model:batch[:precision];...), "
                   "each beside the same encoder uncompiled (none by default: on 2 cores it "
                   "gained nothing and compiling vit_b takes 24 s)")
    p.add_argument("--gpu-compile", default="vit_b:32:bf16",
                   help="the same on a GPU; the compiled rows come last")
    p.add_argument("--e2e-images", type=int, default=8,
                   help="images embedded per CPU end-to-end row (at least two batches)")
    p.add_argument("--gpu-e2e-images", type=int, default=512)
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    p.add_argument("--cpu-bf16-models", nargs="*", default=None,
                   help="models also timed in bf16/fp16 on the CPU (default: tiny, and every "
                   "model when the CPU has AVX512-BF16 or AMX; without them bf16 is 10-100x "
                   "slower than fp32: vit_b took ~8 min an image on such a CPU)")
    p.add_argument("--reps", type=int, default=2, help="timed batches per row (best kept)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--vit-b-warmup", type=int, default=1, help="vit_b on CPU: 7-18 s a pass")
    p.add_argument("--exact-encoder", action=argparse.BooleanOptionalAction, default=True,
                   help="also time SAM's own encoder code (ImageEncoder(fused=False), "
                   "bit-for-bit set_image) beside the kit's default fused path")
    p.add_argument("--mm-size", type=int, default=2048)
    p.add_argument("--no-gpu", action="store_true")
    p.add_argument("--gpu-only", action="store_true",
                   help="only the GPU rows: encoder speed, arithmetic rate, GPU memory, end "
                   "to end, and the sweep's stages on CUDA (a lent GPU's few minutes: see "
                   "benchmarks/gpu.sh)")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--memory-images", type=int, default=800,
                   help="k = all training images for the classifier memory probe (0: skip)")
    p.add_argument("--memory-iter", type=int, default=3)
    p.add_argument("--memory-preset", default=None,
                   help="k = all fit memory for this preset only (default: paper and corrected)")
    p.add_argument("--memory-backbone", action=argparse.BooleanOptionalAction, default=True,
                   help="hold a vit_b SAM in the memory probe's process, as a sweep does")
    p.add_argument("--memory-encode", type=int, default=1,
                   help="images encoded by vit_b in the encoding memory probe (0: skip)")
    p.add_argument("--memory-encoder-model", default="vit_b",
                   help="backbone of the encoding memory probe")
    p.add_argument("--memory-exact", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--memory-in-memory", action="store_true",
                   help="also measure scikit-learn's one-matrix fit at k = all")
    p.add_argument("--stages-backbone", default="medsam_lite",
                   help="section 5: the sweep's stages after encoding, on this backbone")
    p.add_argument("--stages-images", type=int, default=100,
                   help="first N images of the data set (their embeddings are cached first)")
    p.add_argument("--stages-k", default="20")
    p.add_argument("--stages-preset", default="corrected")
    p.add_argument("--stages-test", type=int, default=20, help="test images timed (0: skip)")
    p.add_argument("--stages-bf16", action=argparse.BooleanOptionalAction, default=None,
                   help="also embed section 5's images with a bf16 encoder and give the mean "
                   "Dice change of fold 0 on real weights (default: on a GPU only; on a CPU "
                   "it costs the encoding of every image again)")
    p.add_argument("--stages-device", default="cpu", help=argparse.SUPPRESS)
    p.add_argument("--sweep-runs", default=str(REPO / "reports" / "runs" / "kvasir"
                                               / "medsam_lite"),
                   help="a finished sweep's folder (make reproduce's RUNS/<data set>/<backbone>)")
    p.add_argument("--out", default=str(REPO / "reports" / "bench.md"))
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.cpu_bf16_models is None:
        args.cpu_bf16_models = ["tiny"] + (["vit_t", "vit_b"] if cpu_has_bf16() else [])
    if args.gpu_only and (args.no_gpu or not torch.cuda.is_available()):
        p.error("--gpu-only needs a CUDA device, and this machine has none visible "
                "to torch" if not args.no_gpu else "--gpu-only and --no-gpu exclude each other")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        result = {"sweep": sweep_child, "classifier": classifier_child,
                  "encode": encode_child, "stages": stages_child}[args.child](args)
        print(json.dumps(result))
        return 0

    rows = Table(Path(args.out), time.perf_counter(), sys.argv[1:] if argv is None else argv)
    if not args.gpu_only:
        with measuring(rows, "1", "sweep: kit flow against the authors'"):
            sweep_section(args, rows)
    if not args.skip_speed:
        speed_section(args, rows)
    vit_b = [r for r in rows if r[1] == "vit_b cpu batch 1 fp32: encoder speed"]
    if vit_b:
        t = 1 / float(vit_b[0][2])
        full = analytic_passes(args.full_images, 5, args.full_k)
        rows.append(("1", "full size, vit_b CPU encoder time: authors' / kit / warm",
                     f"{full * t / 3600:.1f} / {args.full_images * t / 3600:.1f} / 0", "hours",
                     f"passes x {t:.1f} s (measured vit_b batch 1 fp32 above)"))
    for exact in [False, True] if args.memory_encode and not args.gpu_only else []:
        label = (f"peak RSS: encoding, {args.memory_encoder_model} "
                 f"{'exact encoder' if exact else 'kit encoder'}")
        with measuring(rows, "4", label):
            m = run_child("encode", args, ["--memory-exact"] if exact else [])
            rows.append((
                "4", label, f"{m['rss_mib']:.0f}", "MiB",
                f"{m['n']} image(s) into the cache, {m['rss_before_mib']:.0f} MiB with the model "
                f"loaded; target 4096 MiB: {'met' if m['rss_mib'] < 4096 else 'NOT met'}"))
    if args.memory_images and not args.gpu_only:
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
    if args.stages_test:
        stages_section(args, rows)
    if not args.gpu_only:
        with measuring(rows, "5", "measured sweep after encoding (make reproduce)"):
            sweep_rows(args, rows)
    if not args.skip_speed:
        compiled_rows(args, rows)
    rows.write(done=True)
    if rows.failed:
        print(f"{len(rows.failed)} row(s) failed: {', '.join(r[1] for r in rows.failed)}",
              file=sys.stderr)
    return 1 if rows.failed else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
