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

import csv
import hashlib
import json
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sklearn.model_selection import KFold

from ..decode import PromptDecoder
from ..pipeline import Segmentation, widening_draws
from ..presets import VARIANTS, Preset, get_preset
from ..shots import DRAW_STRIDE, SHOT_STRATEGIES, parse_k, select_shots
from ..utils.io import atomic_open, atomic_write_text, locked
from .results import COLUMNS, SHOTS_COLUMN, k_order

if TYPE_CHECKING:  # annotations only: importing them here would pull torch in at import
    from ..classifier import LinearPixelClassifier
    from ..datasets.reader import Dataset
    from ..embeddings import DatasetEmbeddings
    from ..methods.base import Shots
    from ..methods.variants import Variants
    from ..models.backbone import Backbone
    from ..methods.finetune import DecoderFineTuner

log = logging.getLogger(__name__)


def make_folds(n: int, n_folds: int = 5, seed: int = 42) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train, test)`` index arrays, sorted within each; disjoint tests covering 0..n-1."""
    if n < n_folds:
        raise ValueError(f"{n} images cannot be split into {n_folds} folds")
    kf = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return list(kf.split(np.arange(n)))


def draw_shots(folds: list[tuple[np.ndarray, np.ndarray]], k: str | int, seed: int = 42,
               draw: int = 0) -> list[list[int]]:
    """The k training images of each fold (data-set indices, in the order drawn).

    ``draw`` > 0 repeats the draw with another seed (``seed + draw * DRAW_STRIDE``) on
    the same folds: how much a result owes to which k images were labelled.
    """
    if draw < 0:
        raise ValueError(f"draw must be 0 or more, not {draw}")
    rnd = random.Random(seed + draw * DRAW_STRIDE)   # one stream, consumed in fold order
    return [select_shots(None, train, k, "random", stream=rnd) for train, _ in folds]


def fold_plan(names: list[str], k_values: Iterable[str | int], n_folds: int = 5,
              seed: int = 42) -> dict:
    """Every fold and every draw, as JSON-able data (written beside the results)."""
    folds = make_folds(len(names), n_folds, seed)
    return {
        "seed": seed, "n_folds": n_folds, "n_images": len(names), "names": list(names),
        "folds": [{"fold": f, "train": tr.tolist(), "test": te.tolist()}
                  for f, (tr, te) in enumerate(folds)],
        "shots": {parse_k(k): draw_shots(folds, k, seed) for k in k_values},
    }


@dataclass(frozen=True)
class RunFolder:
    """Where a run's folds live on disk, and which of them are finished.

    Kept apart from the computation: a fold counts as finished only when its CSV and
    its JSON both exist and the JSON's identity (what the result depends on) matches the
    identity asked for; the CSV is written first and the JSON last, each atomically, so
    an interrupted fold has no JSON and is computed again.
    """

    root: Path
    #: which repeated draw of the shots; draws after the first are kept in a subfolder
    draw: int = 0
    #: how the shots were chosen (:mod:`selfprompt.shots`); other than the paper's random
    #: draw, in a subfolder of their own (``k20/kcenter/fold0.csv``)
    shots: str = "random"

    def fold_path(self, preset: str, k: str, fold: int) -> Path:
        shots = f"{self.shots}/" if self.shots != "random" else ""
        draw = f"draw{self.draw}/" if self.draw else ""
        return self.root / preset / f"k{k}" / f"{shots}{draw}fold{fold}.csv"

    def finished(self, path: Path, identity: dict) -> dict | None:
        """The stored fold's metadata if it is complete and its identity matches."""
        meta_path = path.with_suffix(".json")
        if not (path.exists() and meta_path.exists()):
            return None
        meta = json.loads(meta_path.read_text())
        changed = [key for key, v in identity.items() if meta.get(key) != v]
        if changed:
            log.warning("%s was computed with another %s: computing it again",
                        path, ", ".join(changed))
            return None
        return meta

    def write_fold(self, path: Path, rows: list[dict], meta: dict) -> Path:
        # a fold of chosen (not drawn) shots says so in a last column of its own
        extra = [c for c in (SHOTS_COLUMN,) if any(c in r for r in rows)]
        with atomic_open(path, "w") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS + extra)
            writer.writeheader()
            writer.writerows(rows)
        # the JSON is written last: together with the CSV it marks the fold as finished
        atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=1))
        return path

    def write_plan(self, names: list[str], seed: int, n_folds: int,
                   k_values: Iterable[str | int]) -> Path:
        """Write ``folds.json``, keeping the draws of k values written by earlier runs
        into the same folder (folds and draws depend only on names, seed and k). Folds
        run side by side (``make reproduce JOBS=n``) each write it: under a lock."""
        path = self.root / "folds.json"
        ks = {parse_k(k) for k in k_values}
        with locked(path):
            if path.exists():
                old = json.loads(path.read_text())
                if old.get("names") == names and old.get("seed") == seed:
                    ks |= set(old.get("shots", {}))
            plan = fold_plan(names, sorted(ks, key=k_order), n_folds, seed)
            atomic_write_text(path, json.dumps(plan, indent=1))
        return path


class _Stopwatch:
    """Seconds by stage, rounded to the millisecond as the fold's JSON keeps them."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = round(now - self._t, 3)
        self._t = now


@dataclass
class Experiment:
    """Runs (preset, k, fold) cells of a sweep over one data set and backbone.

    :meth:`score` is the method on one fold, in its order (the fold's shots, the
    methods fitted on them: a clone of :class:`~selfprompt.methods.Variants`, then per
    test image coarse mask, prompts, SAM's decoder and scores); around it the protocol
    keeps the folds and draws, the ``paper`` preset's random stream, and the run folder
    (:class:`RunFolder`) that makes a sweep resumable. Presets and k are resolved once,
    at the public entries (:meth:`run_fold`, :meth:`case`); below them they are a
    :class:`~selfprompt.presets.Preset` and a k as :func:`parse_k` writes it.
    """

    dataset: Dataset
    embeddings: DatasetEmbeddings
    backbone: Backbone
    out_dir: Path
    dataset_name: str = "kvasir"
    seed: int = 42
    n_folds: int = 5
    variants: tuple[str, ...] = VARIANTS
    progress: bool = True
    #: which repeated draw of the k shots (0: the paper's draw; see :func:`draw_shots`)
    draw: int = 0
    #: settings of the mask-decoder fine-tuning the ``ft_*`` variants decode with
    #: (its defaults when None and a variant needs it)
    finetune: DecoderFineTuner | None = None
    #: score only the first ``test_per_fold`` test images of each fold (in test order),
    #: or all: the ablations' budget on a CPU; the folds and shots stay the protocol's
    test_per_fold: int | None = None
    #: how SAM's decoder runs: "batched", an image's prompts in one call
    #: (:mod:`selfprompt.models.batchdecode`: equal up to float rounding, and faster), or
    #: "sam", SAM's own calls one prompt at a time, bit for bit. Recorded in each
    #: fold's JSON; not part of its identity (folds written either way stay finished)
    decoding: str = "batched"
    #: how each fold's k shots are chosen from its training images (:mod:`selfprompt.shots`):
    #: "random" (the paper's draw), "kcenter" or "medoids" (from the embeddings alone)
    shot_strategy: str = "random"

    def __post_init__(self) -> None:
        from ..methods.recipe import AUTO
        from ..strategies import STRATEGIES, needs_finetuned

        self.out_dir = Path(self.out_dir)
        known = VARIANTS + tuple(STRATEGIES) + (AUTO,)
        unknown = [v for v in self.variants if v not in known]
        if unknown:
            raise ValueError(f"unknown variants {unknown}; choose from {', '.join(known)}")
        if self.shot_strategy not in SHOT_STRATEGIES:
            raise ValueError(f"unknown shot strategy {self.shot_strategy!r}; choose from "
                             f"{', '.join(SHOT_STRATEGIES)}")
        if needs_finetuned(self.variants) and self.finetune is None:
            from ..methods.finetune import DecoderFineTuner

            self.finetune = DecoderFineTuner(seed=self.seed)
        if self.decoding not in ("batched", "sam"):
            raise ValueError(f"decoding must be 'batched' or 'sam', not {self.decoding!r}")
        self.decoder = PromptDecoder(self.backbone, batched=self.decoding == "batched")
        self.folds = make_folds(len(self.dataset), self.n_folds, self.seed)
        # fitted once per (preset, k, fold): the stream replay, case() and notebooks reuse them
        self._fitted: dict[tuple, Variants] = {}
        self._pooled: dict[int, np.ndarray] = {}   # pooled embeddings the shot strategies read

    @property
    def _auto(self) -> bool:
        from ..methods.recipe import AUTO

        return AUTO in self.variants

    @property
    def _needs_finetuned(self) -> bool:
        from ..strategies import needs_finetuned

        return needs_finetuned(self.variants)

    def method(self, preset: Preset) -> Variants:
        """The unfitted estimator of the run's variants under ``preset``
        (:class:`~selfprompt.methods.Variants`); :meth:`fitted` fits a clone of it."""
        from ..methods.variants import Variants

        finetune = None
        if self._needs_finetuned:
            finetune = {**self.finetune.get_params(),
                        "progress": self.finetune.progress or self.progress}
        return Variants(preset, tuple(self.variants), finetune)

    def fitted(self, preset: str | Preset, k: str | int, fold: int) -> Variants:
        """The run's methods fitted on the fold's k shots, once per (preset, k, fold)."""
        from sklearn.base import clone

        preset, k = get_preset(preset), parse_k(k)
        key = (preset, k, fold)
        if key not in self._fitted:
            self._fitted[key] = clone(self.method(preset)).fit(self.fold_shots(preset, k, fold))
        return self._fitted[key]

    def fold_shots(self, preset: Preset, k: str, fold: int) -> Shots:
        """The fold's k shots as the methods are fitted on them: embeddings read from the
        cache when needed, masks at the preset's threshold."""
        from ..methods.base import Shots

        shots = self.shots(k, fold)
        return Shots(self.embeddings.take(shots),
                     [self.mask(i, preset.mask_threshold) for i in shots], self.decoder,
                     seed=self.seed)

    # ---------------------------------------------------------------- entries
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
        rows, draws, clf, seconds = self.score(preset, k, fold)
        return self.store.write_fold(path, rows, self._fold_meta(
            preset, k, fold, rows, draws, clf, seconds))

    def case(self, preset: str | Preset, k: str | int, fold: int,
             name: str) -> tuple[np.ndarray, np.ndarray, Segmentation]:
        """Recompute one test image of a fold for display: ``(image, truth, segmentation)``.

        The box widening is redrawn from the image's own seed, so under the ``paper``
        preset (one stream per k) the box can differ by a few pixels from the fold's run.
        """
        preset, k = get_preset(preset), parse_k(k)
        i = self.dataset.names.index(name)
        truth = self.mask(i, preset.mask_threshold)
        seg = self._segment(self.fitted(preset, k, fold), fold, i, truth,
                            np.random.default_rng([self.seed, fold, i]))
        return self.dataset.image(i), truth, seg

    # ---------------------------------------------------------------- one fold
    def score(self, preset: Preset, k: str, fold: int, n_images: int | None = None
              ) -> tuple[list[dict], int, LinearPixelClassifier, dict[str, float]]:
        """Segment and score the fold's test images (the first ``n_images`` of them in
        test order, or all): ``(rows, box draws, classifier, seconds by stage)``.

        The first images of a fold get exactly the draws they get in the whole fold (the
        ``paper`` preset's stream is consumed in test order), so a slice of a committed
        fold can be recomputed and compared image by image (``selfprompt.evaluation.reference``).
        Seconds: ``fit`` (0 when an earlier call fitted it), ``replay`` (re-deriving the
        ``paper`` preset's stream past earlier folds), ``segment``, and ``per_image``:
        the mean seconds an image took by part (:attr:`Segmentation.seconds`, and
        ``auto``'s recipe applied), what each variant costs beyond the paper's.
        """
        from tqdm.auto import tqdm

        clock = _Stopwatch()
        # every method on the fold's k shots; each one's fit time is in the fold's JSON
        # (seconds.fit: the classifier, 0 when an earlier call fitted it; .finetune,
        # .auto, .<persam variant>_fit)
        fresh = (preset, k, fold) not in self._fitted
        fitted = self.fitted(preset, k, fold)
        clock.lap("fit")
        if fresh:
            clock.seconds["fit"] = fitted.seconds_["fit"]
        widening = self._widening(preset, k, fold)    # each test image's box randomness
        clock.lap("replay")
        rows, draws, per_image = [], 0, defaultdict(float)
        test = self.folds[fold][1][:n_images or self.test_per_fold]
        for i in tqdm(test, desc=f"{preset.name} k={k} fold {fold}", unit="img",
                      disable=not self.progress, leave=False):
            i = int(i)
            truth = self.mask(i, preset.mask_threshold)
            # coarse mask -> prompts -> SAM's decoder, for every variant
            seg = self._segment(fitted, fold, i, truth, widening(i))
            draws += seg.prompts.draws
            rows += self._rows(preset, k, fold, i, seg, truth)
            for part, seconds in seg.seconds.items():
                per_image[part] += seconds
        clock.lap("segment")
        per_image = {part: round(s / max(len(test), 1), 4) for part, s in per_image.items()}
        return rows, draws, fitted.classifier_, {**clock.seconds, "per_image": per_image}

    def _segment(self, fitted: Variants, fold: int, i: int, truth: np.ndarray,
                 rng) -> Segmentation:
        """Test image ``i`` through the fold's fitted methods
        (:meth:`Variants.segment <selfprompt.methods.Variants.segment>`); its own draws
        seeded by (seed, fold, image), the ``gt_*`` bounds given its true mask."""
        features = np.asarray(self.embeddings[i], np.float32)
        return fitted.segment(features, truth.shape, rng, (self.seed, fold, i), truth)

    def _rows(self, preset: Preset, k: str, fold: int, i: int, seg: Segmentation,
              truth: np.ndarray) -> list[dict]:
        """One table row per variant of test image ``i`` (columns: ``results.COLUMNS``)."""
        return [{"dataset": self.dataset_name, "image": self.dataset.samples[i].name,
                 "fold": fold, "k": k, "seed": self.seed, "preset": preset.name,
                 "backbone": self.backbone.model_type, "variant": variant,
                 "dice": round(d, 6), "iou": round(j, 6),
                 "empty_prediction": seg.prompts.empty,
                 "counted": not (preset.drop_empty and seg.prompts.empty),
                 "draw": self.draw, **self._shots_column}
                for variant, (d, j) in seg.scores(truth).items()]

    @property
    def _shots_column(self) -> dict:
        """Rows of chosen shots carry the strategy (the paper's random draw: no column)."""
        return {} if self.shot_strategy == "random" else {SHOTS_COLUMN: self.shot_strategy}

    # ---------------------------------------------------------------- folds and draws
    def shots(self, k: str, fold: int) -> list[int]:
        """The fold's k training images (data-set indices, in the order chosen):
        :attr:`shot_strategy`'s, chosen from the embeddings of its training images alone
        (:func:`~selfprompt.shots.select_shots`); ``random`` is the paper's draw, all
        folds from one stream (:func:`draw_shots`)."""
        if self.shot_strategy == "random":
            return draw_shots(self.folds, k, self.seed, self.draw)[fold]
        return select_shots(self.embeddings, self.folds[fold][0], k, self.shot_strategy,
                            self.seed, self.draw, cache=self._pooled)

    def mask(self, i: int, threshold: int) -> np.ndarray:
        """Read when needed, never kept: decoding a mask costs ~2 ms, keeping all of a
        large data set's masks at full resolution would cost gigabytes."""
        return self.dataset.mask(i, threshold)

    def _widening(self, preset: Preset, k: str, fold: int) -> Callable[[int], object]:
        """The random numbers that widen test image ``i``'s box: ``corrected``, a generator
        of its own seeded by (seed, fold, image); ``paper``, the authors' one NumPy stream
        per k, shared by the fold's images in test order and advanced past earlier folds."""
        if preset.rng != "sequential":
            return lambda i: np.random.default_rng([self.seed, fold, i])
        stream = np.random.RandomState(self.seed)
        for earlier in range(fold):
            for _ in range(self._box_draws(preset, k, earlier)):
                stream.randint(0, preset.max_widen)
        return lambda i: stream

    def _box_draws(self, preset: Preset, k: str, fold: int) -> int:
        """Numbers fold ``fold`` took from the sequential stream (stored, or recounted
        from the coarse masks alone: no SAM decoding needed)."""
        meta = self.finished(preset, k, fold)
        if meta is not None:
            return meta["box_draws"]
        clf = self._classifier(preset, k, fold)
        return sum(widening_draws(clf, self.embeddings[i], self.mask(i, preset.mask_threshold)
                                  .shape, preset, self.backbone.img_size)
                   for i in map(int, self.folds[fold][1]))

    def _classifier(self, preset: Preset, k: str, fold: int) -> LinearPixelClassifier:
        """The fold's classifier alone (what replaying the stream needs): the fitted
        methods' when fitted already, else fitted on its own, not kept."""
        from ..methods.self_prompt import SelfPrompting

        if (preset, k, fold) in self._fitted:
            return self._fitted[preset, k, fold].classifier_
        return SelfPrompting(preset).fit(self.fold_shots(preset, k, fold)).classifier_

    # ---------------------------------------------------------------- the run folder
    @property
    def store(self) -> RunFolder:
        return RunFolder(self.out_dir, self.draw, self.shot_strategy)

    def fold_path(self, preset: str, k: str, fold: int) -> Path:
        return self.store.fold_path(preset, k, fold)

    def write_plan(self, k_values: Iterable[str | int]) -> Path:
        """``folds.json`` of this run folder (see :meth:`RunFolder.write_plan`)."""
        return self.store.write_plan(self.dataset.names, self.seed, self.n_folds, k_values)

    def finished(self, preset: Preset, k: str, fold: int) -> dict | None:
        """The stored fold's metadata when it is complete and was computed from the same
        preset, k, seed, checkpoint, variants and test images; else None (redo it)."""
        return self.store.finished(self.fold_path(preset.name, k, fold),
                                   self.identity(preset, k, fold))

    def identity(self, preset: Preset, k: str, fold: int) -> dict:
        """What a fold's result depends on; a stored fold counts only if all match."""
        test = [self.dataset.samples[int(i)].name for i in self.folds[fold][1]]
        out = {"preset": preset.as_dict(), "k": k, "fold": fold, "seed": self.seed,
               "model_hash": self.backbone.model_hash, "variants": list(self.variants),
               "test_images": hashlib.sha256("\n".join(test).encode()).hexdigest()}
        if self.draw:  # only when not the default: folds of draw 0 keep their identity
            out["draw"] = self.draw
        if self.shot_strategy != "random":  # likewise: the paper's draw keeps its identity
            out["shot_strategy"] = self.shot_strategy
        if self._auto:
            from ..methods.recipe import AUTO_THRESHOLDS, candidate_prompts

            out["auto"] = {"prompts": list(candidate_prompts()),
                           "thresholds": list(AUTO_THRESHOLDS)}
        if self.test_per_fold is not None:
            out["test_per_fold"] = self.test_per_fold
        if self._needs_finetuned:
            out["finetune"] = self.finetune.get_params()
        from ..methods.registry import METHODS
        from ..strategies import needs_persam
        if needs_persam(self.variants):
            out["persam"] = {n: METHODS[n]().get_params() for n in needs_persam(self.variants)}
        return out

    def _fold_meta(self, preset: Preset, k: str, fold: int, rows: list[dict], draws: int,
                   clf: LinearPixelClassifier, seconds: dict[str, float]) -> dict:
        """The fold's JSON: its identity, then what the run found and how long it took
        (``seconds`` by stage, ``seconds_per_image`` by part of the segmentation)."""
        from ..utils.provenance import environment

        seconds = dict(seconds)
        per_image = seconds.pop("per_image", {})

        meta = {**self.identity(preset, k, fold), "backbone": self.backbone.model_type,
                "n_test": len(self.folds[fold][1][:self.test_per_fold]), "box_draws": draws,
                "classifier_fit": clf.fit_route_, "lbfgs_iterations": int(clf.n_iter_[0]),
                "decoding": self.decoding,
                "n_empty": sum(r["empty_prediction"] for r in rows) // max(len(self.variants), 1),
                "seconds": seconds, "seconds_per_image": per_image,
                "environment": environment()}
        if self.shot_strategy != "random":
            meta["shots"] = [self.dataset.samples[i].name for i in self.shots(k, fold)]
        fitted = self.fitted(preset, k, fold)
        if self._auto:
            meta["auto"] = fitted.auto_.recipe_.as_dict()
            meta["seconds"]["auto"] = fitted.auto_.recipe_.seconds_
        if self._needs_finetuned:
            tuner = fitted.finetuned_.tuner_
            meta["finetune_losses"] = tuner.losses_
            meta["seconds"]["finetune"] = tuner.seconds_
        for name, method in fitted.persam_.items():
            model = method.model_
            meta["seconds"][f"{name}_fit"] = model.seconds_
            if hasattr(model, "weights_"):
                meta[f"{name}_weights"] = [round(float(w), 5) for w in model.weights_]
        return meta
