"""k-shot, 5-fold cross-validation, reproducible to the draw, resumable to the fold.

One seed drives everything, as in the authors' code but seeded and sorted (D3):
``KFold(n_folds, shuffle=True, random_state=seed)`` over the name-sorted images;
Python's ``random.Random(seed)`` draws the k shots of each fold in fold order
(``sample(range(len(train)), k)``); box widening uses NumPy's legacy ``RandomState``
(``paper``: one stream per k, consumed over folds and test images in order) or a
generator seeded by ``(seed, fold, image)`` (``corrected``: independent of order).

Each (preset, k, fold) is written as one CSV, atomically, so a finished fold is
skipped on rerun and an interrupted one redone.
"""
from __future__ import annotations

import copy
import csv
import hashlib
import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import KFold

from ..decode import PromptDecoder
from ..utils.io import atomic_open, atomic_write_text, locked
from ..pipeline import coarse_mask, fit_classifier, segment
from ..presets import VARIANTS, Preset, get_preset
from ..prompts import make_prompts
from .results import COLUMNS, k_order

log = logging.getLogger(__name__)


def parse_k(k: str | int) -> str:
    """k as written in tables and paths: a positive integer, or ``all``."""
    k = str(k).strip()
    if k != "all" and not (k.isdigit() and int(k) > 0):
        raise ValueError(f"k must be a positive integer or 'all', not {k!r}")
    return k if k == "all" else str(int(k))  # "010" and "10" are one k


def make_folds(n: int, n_folds: int = 5, seed: int = 42) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train, test)`` index arrays, sorted within each; disjoint tests covering 0..n-1."""
    if n < n_folds:
        raise ValueError(f"{n} images cannot be split into {n_folds} folds")
    kf = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return list(kf.split(np.arange(n)))


#: stride between the seeds of repeated draws of the shots (draw 0 uses ``seed``)
DRAW_STRIDE = 1_000_003


def draw_shots(folds, k: str | int, seed: int = 42, draw: int = 0) -> list[list[int]]:
    """The k training images of each fold (data-set indices, in the order drawn).

    ``draw`` > 0 repeats the draw with another seed (``seed + draw * DRAW_STRIDE``) on
    the same folds: how much a result owes to which k images were labelled.
    """
    k = parse_k(k)
    if draw < 0:
        raise ValueError(f"draw must be 0 or more, not {draw}")
    rnd = random.Random(seed + draw * DRAW_STRIDE)
    shots = []
    for train, _ in folds:
        n = len(train) if k == "all" else int(k)
        if n > len(train):
            raise ValueError(f"k={k} exceeds the {len(train)} training images of a fold")
        shots.append([int(train[j]) for j in rnd.sample(range(len(train)), n)])
    return shots


def fold_plan(names: list[str], k_values, n_folds: int = 5, seed: int = 42) -> dict:
    """Every fold and every draw, as JSON-able data (written beside the results)."""
    folds = make_folds(len(names), n_folds, seed)
    return {
        "seed": seed, "n_folds": n_folds, "n_images": len(names), "names": list(names),
        "folds": [{"fold": f, "train": tr.tolist(), "test": te.tolist()}
                  for f, (tr, te) in enumerate(folds)],
        "shots": {parse_k(k): draw_shots(folds, k, seed) for k in k_values},
    }


@dataclass
class Experiment:
    """Runs (preset, k, fold) cells of a sweep over one data set and backbone."""

    dataset: object          # datasets.Dataset
    embeddings: object       # embeddings.DatasetEmbeddings
    backbone: object         # backbone.Backbone
    out_dir: Path
    dataset_name: str = "kvasir"
    seed: int = 42
    n_folds: int = 5
    variants: tuple[str, ...] = VARIANTS
    progress: bool = True
    #: which repeated draw of the k shots (0: the paper's draw; see :func:`draw_shots`)
    draw: int = 0
    #: settings of the mask-decoder fine-tuning the ``ft_*`` variants decode with
    #: (:class:`~selfprompt.evaluation.finetune.DecoderFineTuner`; its defaults when None)
    finetune: object = None
    #: score only the first ``test_per_fold`` test images of each fold (in test order),
    #: or all: the ablations' budget on a CPU; the folds and shots stay the protocol's
    test_per_fold: int | None = None
    #: how SAM's decoder runs: "batched", an image's prompts in one call
    #: (:mod:`selfprompt.models.batchdecode`, equal up to float rounding, ~1.8x faster), or
    #: "sam", SAM's own calls one prompt at a time, bit for bit. Recorded in each
    #: fold's JSON; not part of its identity (folds written either way stay finished)
    decoding: str = "batched"

    def __post_init__(self) -> None:
        from ..strategies import STRATEGIES, needs_finetuned

        self.out_dir = Path(self.out_dir)
        unknown = [v for v in self.variants if v not in VARIANTS and v not in STRATEGIES]
        if unknown:
            raise ValueError(f"unknown variants {unknown}; choose from "
                             f"{', '.join(VARIANTS + tuple(STRATEGIES))}")
        if needs_finetuned(self.variants) and self.finetune is None:
            from .finetune import DecoderFineTuner

            self.finetune = DecoderFineTuner(seed=self.seed)
        if self.decoding not in ("batched", "sam"):
            raise ValueError(f"decoding must be 'batched' or 'sam', not {self.decoding!r}")
        self.decoder = PromptDecoder(self.backbone, batched=self.decoding == "batched")
        self.folds = make_folds(len(self.dataset), self.n_folds, self.seed)
        self._classifiers: dict[tuple, object] = {}  # tiny (257 numbers each): keep them
        self._finetuned: dict[tuple, object] = {}

    # ---------------------------------------------------------------- paths and plan
    def fold_path(self, preset: str, k: str, fold: int) -> Path:
        draw = f"draw{self.draw}/" if self.draw else ""
        return self.out_dir / preset / f"k{k}" / f"{draw}fold{fold}.csv"

    def shots(self, k: str, fold: int) -> list[int]:
        """The fold's k training images (data-set indices, as drawn)."""
        return draw_shots(self.folds, k, self.seed, self.draw)[fold]

    def write_plan(self, k_values) -> Path:
        """Write ``folds.json``, keeping the draws of k values written by earlier runs
        into the same folder (folds and draws depend only on names, seed and k). Folds
        run side by side (``make reproduce JOBS=n``) each write it: under a lock."""
        path = self.out_dir / "folds.json"
        ks = {parse_k(k) for k in k_values}
        with locked(path):
            if path.exists():
                old = json.loads(path.read_text())
                if old.get("names") == self.dataset.names and old.get("seed") == self.seed:
                    ks |= set(old.get("shots", {}))
            plan = fold_plan(self.dataset.names, sorted(ks, key=k_order), self.n_folds,
                             self.seed)
            atomic_write_text(path, json.dumps(plan, indent=1))
        return path

    def mask(self, i: int, threshold: int) -> np.ndarray:
        """Read when needed, never kept: decoding a mask costs ~2 ms, keeping all of a
        large data set's masks at full resolution would cost gigabytes."""
        return self.dataset.mask(i, threshold)

    def classifier(self, preset: Preset, k: str, fold: int):
        """Fitted on the fold's k shots (embeddings read from the cache one at a time),
        once per (preset, k, fold): the random-stream replay and the notebooks reuse it."""
        key = (preset, parse_k(k), fold)
        if key not in self._classifiers:
            shots = self.shots(k, fold)
            self._classifiers[key] = fit_classifier(
                self.embeddings.take(shots),
                (self.mask(i, preset.mask_threshold) for i in shots), preset,
                img_size=self.backbone.img_size)
        return self._classifiers[key]

    def finetuned(self, preset: Preset, k: str, fold: int):
        """The fold's fine-tuned decoder (trained once per (k, fold, mask threshold) on
        the same k shots as the classifier), and its fitted tuner."""
        key = (parse_k(k), fold, preset.mask_threshold)
        if key not in self._finetuned:
            shots = self.shots(k, fold)
            tuner = copy.deepcopy(self.finetune)
            tuner.progress = tuner.progress or self.progress  # minutes on a CPU: show them
            tuner.fit(
                self.backbone, self.embeddings.take(shots),
                [self.mask(i, preset.mask_threshold) for i in shots])
            self._finetuned[key] = (tuner.decoder(self.backbone), tuner)
        return self._finetuned[key]

    # ---------------------------------------------------------------- random streams
    def _identity(self, preset: Preset, k: str, fold: int) -> dict:
        """What a fold's result depends on; a stored fold counts only if all match."""
        from ..strategies import needs_finetuned

        test = [self.dataset.samples[int(i)].name for i in self.folds[fold][1]]
        out = {"preset": preset.as_dict(), "k": k, "fold": fold, "seed": self.seed,
               "model_hash": self.backbone.model_hash, "variants": list(self.variants),
               "test_images": hashlib.sha256("\n".join(test).encode()).hexdigest()}
        if self.draw:  # only when not the default: folds written before stay finished
            out["draw"] = self.draw
        if self.test_per_fold is not None:
            out["test_per_fold"] = self.test_per_fold
        if needs_finetuned(self.variants):
            out["finetune"] = self.finetune.get_params()
        return out

    def finished(self, preset: Preset, k: str, fold: int) -> dict | None:
        """The stored fold's metadata when it is complete and was computed from the same
        preset, k, seed, checkpoint, variants and test images; else None (redo it)."""
        path = self.fold_path(preset.name, k, fold)
        meta_path = path.with_suffix(".json")
        if not (path.exists() and meta_path.exists()):
            return None
        meta = json.loads(meta_path.read_text())
        changed = [key for key, v in self._identity(preset, k, fold).items() if meta.get(key) != v]
        if changed:
            log.warning("%s was computed with another %s: computing it again",
                        path, ", ".join(changed))
            return None
        return meta

    # ---------------------------------------------------------------- random streams
    def _box_draws(self, preset: Preset, k: str, fold: int) -> int:
        """Numbers fold ``fold`` took from the sequential stream (stored, or recounted
        from the coarse masks alone: no SAM decoding needed)."""
        meta = self.finished(preset, k, fold)
        if meta is not None:
            return meta["box_draws"]
        clf = self.classifier(preset, k, fold)
        n = 0
        for i in map(int, self.folds[fold][1]):
            m = self.mask(i, preset.mask_threshold)
            coarse = coarse_mask(clf, self.embeddings[i], m.shape, preset, self.backbone.img_size)
            n += make_prompts(coarse, preset, np.random.RandomState(0)).draws
        return n

    def _stream(self, preset: Preset, k: str, fold: int) -> np.random.RandomState:
        """The authors' NumPy stream for one k, advanced past the folds before ``fold``."""
        rng = np.random.RandomState(self.seed)
        for earlier in range(fold):
            for _ in range(self._box_draws(preset, k, earlier)):
                rng.randint(0, preset.max_widen)
        return rng

    # ---------------------------------------------------------------- one fold
    def case(self, preset: str | Preset, k: str | int, fold: int, name: str):
        """Recompute one test image of a fold for display: ``(image, truth, segmentation)``.

        The box widening is redrawn from the image's own seed, so under the ``paper``
        preset (one stream per k) the box can differ by a few pixels from the fold's run.
        """
        preset = get_preset(preset)
        i = self.dataset.names.index(name)
        truth = self.dataset.mask(i, preset.mask_threshold)
        clf = self.classifier(preset, str(k), fold)  # fitted once per (preset, k, fold)
        rng = np.random.default_rng([self.seed, fold, i])
        seg = segment(clf, self.decoder, np.asarray(self.embeddings[i], np.float32), truth.shape,
                      preset, rng, self.variants)
        return self.dataset.image(i), truth, seg

    def score(self, preset: Preset, k: str, fold: int,
              n_images: int | None = None) -> tuple[list[dict], int, object, dict]:
        """Segment and score the fold's test images (the first ``n_images`` of them in
        test order, or all): ``(rows, box draws, classifier, seconds by stage)``.

        The first images of a fold get exactly the draws they get in the whole fold (the
        ``paper`` preset's stream is consumed in test order), so a slice of a committed
        fold can be recomputed and compared image by image (``selfprompt.evaluation.reference``).
        Seconds: ``fit`` (0 when an earlier call fitted it), ``replay`` (re-deriving the
        ``paper`` preset's stream past earlier folds) and ``segment``.
        """
        from tqdm.auto import tqdm

        from ..strategies import needs_finetuned

        finetuned = (self.finetuned(preset, k, fold)[0] if needs_finetuned(self.variants)
                     else None)  # timed on its own (the fold's JSON: seconds.finetune)
        t0 = time.perf_counter()
        clf = self.classifier(preset, k, fold)
        t1 = time.perf_counter()
        stream = self._stream(preset, k, fold) if preset.rng == "sequential" else None
        t2 = time.perf_counter()
        rows, draws = [], 0
        test = self.folds[fold][1][:n_images or self.test_per_fold]
        for i in tqdm(test, desc=f"{preset.name} k={k} fold {fold}", unit="img",
                      disable=not self.progress, leave=False):
            i = int(i)
            truth = self.mask(i, preset.mask_threshold)
            rng = stream if stream is not None else np.random.default_rng([self.seed, fold, i])
            seg = segment(clf, self.decoder, np.asarray(self.embeddings[i], np.float32),
                          truth.shape, preset, rng, self.variants, truth=truth,
                          seed=(self.seed, fold, i), finetuned=finetuned)
            draws += seg.prompts.draws
            for variant, (d, j) in seg.scores(truth).items():
                rows.append({
                    "dataset": self.dataset_name, "image": self.dataset.samples[i].name,
                    "fold": fold, "k": k, "seed": self.seed, "preset": preset.name,
                    "backbone": self.backbone.model_type, "variant": variant,
                    "dice": round(d, 6), "iou": round(j, 6),
                    "empty_prediction": seg.prompts.empty,
                    "counted": not (preset.drop_empty and seg.prompts.empty),
                    "draw": self.draw})
        seconds = {"fit": round(t1 - t0, 3), "replay": round(t2 - t1, 3),
                   "segment": round(time.perf_counter() - t2, 3)}
        return rows, draws, clf, seconds

    def run_fold(self, preset: str | Preset, k: str | int, fold: int,
                 force: bool = False) -> Path:
        """Evaluate one (preset, k, fold); returns its CSV. Skips a finished one."""
        preset, k = get_preset(preset), parse_k(k)
        if not 0 <= fold < self.n_folds:
            raise ValueError(f"fold {fold} does not exist: folds are 0..{self.n_folds - 1}")
        path = self.fold_path(preset.name, k, fold)
        if not force and self.finished(preset, k, fold) is not None:
            log.info("skip %s: already done", path)
            return path
        from ..utils.provenance import environment
        from ..strategies import needs_finetuned

        rows, draws, clf, seconds = self.score(preset, k, fold)
        test = self.folds[fold][1][:self.test_per_fold]
        with atomic_open(path, "w") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        meta = {**self._identity(preset, k, fold), "backbone": self.backbone.model_type,
                "n_test": len(test), "box_draws": draws, "classifier_fit": clf.fit_route_,
                "lbfgs_iterations": int(clf.n_iter_[0]), "decoding": self.decoding,
                "n_empty": sum(r["empty_prediction"] for r in rows) // max(len(self.variants), 1),
                "seconds": seconds, "environment": environment()}
        if needs_finetuned(self.variants):
            tuner = self.finetuned(preset, k, fold)[1]
            meta["finetune_losses"] = tuner.losses_
            meta["seconds"]["finetune"] = tuner.seconds_
        # the JSON is written last: together with the CSV it marks the fold as finished
        atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=1))
        return path
