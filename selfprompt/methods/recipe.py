"""``auto``: the prompt and the classifier's threshold, chosen on the k shots alone.

The ablations show that which prompt SAM makes most of (box, point and box, one box per
lesion, or no SAM at all: the classifier's own mask) and where the classifier's
probability is cut (0.5 is the paper's; 0.3 and 0.7 are the ``classifiers`` study's
other values) depend on the data set and the backbone. A user with k labelled images
cannot look at test results to decide; the k shots are all there is. ``auto`` chooses
by cross-validation inside them:

- **splits**: leave-one-out for k <= 10 (each shot held out once: every shot is scored,
  and k fits of k - 1 shots are cheap), 5-fold (shuffled, seeded) above it (k fits
  would cost minutes on a CPU at k = 40, and 4/5 of 20 shots is already close to the
  fold's classifier). With k = 1 there is nothing to hold out: the paper's recipe
  (point and box, the preset's threshold) is used and said so.
- **scores**: per split, the classifier is fitted on the other shots (the preset's own
  fit, threshold-independent), then each held-out shot is segmented at every
  threshold with every prompt (one embedding read, one coarse mask per threshold,
  SAM's decoder for the prompts) and scored against its own mask. The score of an
  option is its mean Dice over every held-out shot (a split whose training shots hold
  one class only is skipped).
- **the choice**: the highest mean Dice; ties go to the option listed first (prompts in
  :data:`AUTO_PROMPTS` order, the paper's first; thresholds in
  :data:`AUTO_THRESHOLDS` order, 0.5 first), so ``auto`` leaves the paper's recipe
  only when the shots say it should.

Then the fold's own classifier (fitted on all k shots) is cut at the chosen threshold
and the chosen prompt decodes every test image (:func:`apply_recipe`). No test image
or test mask is read to choose. Box widening draws from a generator seeded by (seed,
fold, image), as the ``corrected`` preset does, under either preset: the ``paper``
preset's sequential stream, which the other variants share, is left alone.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..embeddings import to_float32
from ..pipeline import fit_classifier, segment
from ..presets import Preset

#: the variant name in results tables
AUTO = "auto"
#: the prompts ``auto`` chooses among, the paper's first (ties go to the first)
AUTO_PROMPTS = ("point_box", "box", "box_cc", "linear")
#: the classifier thresholds it chooses among, the paper's first
AUTO_THRESHOLDS = (0.5, 0.3, 0.7)
#: up to this k, leave-one-out; above it, :data:`INNER_FOLDS`-fold
LOO_MAX_K = 10
INNER_FOLDS = 5


def option(prompt: str, threshold: float) -> str:
    """An option's name in score tables: ``box@0.3``."""
    return f"{prompt}@{threshold:g}"


@dataclass
class Recipe:
    """The chosen prompt and threshold, and how they were chosen."""

    prompt: str
    threshold: float
    #: "leave-one-out", "5-fold" or "none" (k = 1, or no split with both classes)
    cv: str
    #: option (:func:`option`) -> mean Dice over the held-out shots
    scores_: dict[str, float] = field(default_factory=dict)
    #: held-out shots scored per option
    n_scored_: int = 0
    seconds_: float = 0.0

    @property
    def name(self) -> str:
        return option(self.prompt, self.threshold)

    def as_dict(self) -> dict:
        """As a fold's JSON keeps it."""
        return {"prompt": self.prompt, "threshold": self.threshold, "cv": self.cv,
                "scores": self.scores_, "n_scored": self.n_scored_,
                "seconds": self.seconds_}


def inner_splits(n: int, seed: int = 42) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train, held out)`` positions among ``n`` shots: leave-one-out up to
    :data:`LOO_MAX_K`, else :data:`INNER_FOLDS`-fold shuffled by ``seed``; none for 1."""
    from sklearn.model_selection import KFold, LeaveOneOut

    if n < 2:
        return []
    splitter = (LeaveOneOut() if n <= LOO_MAX_K
                else KFold(n_splits=INNER_FOLDS, shuffle=True, random_state=seed))
    return list(splitter.split(np.arange(n)))


class _Subset(Sequence):
    """Some items of a lazily read sequence (embeddings read when asked for)."""

    def __init__(self, items, positions) -> None:
        self.items, self.positions = items, [int(j) for j in positions]

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, j):
        return self.items[self.positions[j]]


def with_threshold(clf, threshold: float):
    """The fitted classifier, cutting its probability at ``threshold`` (a shallow copy:
    the fitted model is shared, the original is left as it was)."""
    out = copy.copy(clf)
    out.threshold = threshold
    return out


def choose_recipe(embeddings, masks, preset: Preset, decoder,
                  prompts: Sequence[str] = AUTO_PROMPTS,
                  thresholds: Sequence[float] = AUTO_THRESHOLDS, seed: int = 42) -> Recipe:
    """Choose a prompt and a threshold by cross-validation inside the k shots.

    ``embeddings``: the shots' ``(256, 64, 64)`` embeddings (a sequence read lazily);
    ``masks``: their masks, in the same order; ``decoder``: a ``PromptDecoder`` (its
    backbone sets the frame). Nothing else is read.
    """
    start = time.perf_counter()
    masks = list(masks)
    if len(masks) != len(embeddings):
        raise ValueError(f"{len(embeddings)} embeddings but {len(masks)} masks")
    img_size = decoder.backbone.img_size
    splits = inner_splits(len(masks), seed)
    dice: dict[str, list[float]] = {option(p, t): [] for p in prompts for t in thresholds}
    for s, (train, held) in enumerate(splits):
        try:
            clf = fit_classifier(_Subset(embeddings, train), [masks[j] for j in train],
                                 preset, img_size=img_size)
        except ValueError:          # the other shots hold one class only: no classifier
            continue
        for j in map(int, held):
            features, truth = to_float32(embeddings[j]), masks[j]
            for t in thresholds:
                seg = segment(with_threshold(clf, t), decoder, features, truth.shape, preset,
                              np.random.default_rng([seed, s, j]), tuple(prompts),
                              seed=(seed, s, j))
                for p, (d, _) in seg.scores(truth).items():
                    dice[option(p, t)].append(d)
    n_scored = len(next(iter(dice.values()), []))
    if not n_scored:
        return Recipe("point_box", preset.threshold, "none", {}, 0,
                      round(time.perf_counter() - start, 3))
    scores = {name: round(float(np.mean(v)), 6) for name, v in dice.items()}
    best = max(((p, t) for p in prompts for t in thresholds),
               key=lambda pt: scores[option(*pt)])    # max keeps the first of equals
    cv = "leave-one-out" if len(masks) <= LOO_MAX_K else f"{INNER_FOLDS}-fold"
    return Recipe(best[0], float(best[1]), cv, scores, n_scored,
                  round(time.perf_counter() - start, 3))


def apply_recipe(recipe: Recipe, clf, decoder, features: np.ndarray, size: tuple[int, int],
                 preset: Preset, seed: tuple[int, ...]) -> np.ndarray:
    """One test image's ``auto`` mask: the fold's classifier cut at the recipe's
    threshold, its coarse mask's prompts, the recipe's prompt decoded. Box widening
    from ``np.random.default_rng(seed)`` (the protocol: (seed, fold, image))."""
    seg = segment(with_threshold(clf, recipe.threshold), decoder, features, size, preset,
                  np.random.default_rng(list(seed)), (recipe.prompt,), seed=seed)
    return seg.masks[recipe.prompt]
