"""``auto``: the prompt and the classifier's threshold, chosen on the k shots alone.

Which prompt SAM makes most of, and where the classifier's probability is cut, may
depend on the data set and the backbone. A user with k labelled images cannot look at
test results to decide; the k shots are all there is. ``auto`` chooses by
cross-validation inside them, among candidates fixed before any result was seen:

- **candidate prompts** (:func:`candidate_prompts`): every self-prompt the kit has, by
  one rule on the registries: the paper's four variants
  (:data:`~selfprompt.presets.VARIANTS`), then every strategy of
  :data:`~selfprompt.strategies.STRATEGIES` in its order, except those that are not
  prompts from the classifier: the bounds from the true mask (``NEEDS_TRUTH``), the
  methods fitted apart (PerSAM: ``NEEDS_PERSAM``; the fine-tuned decoder: ``ft_*``)
  and SAM unprompted (:data:`UNPROMPTED`: ``no_prompt``). The registries give ``linear``,
  ``point``, ``box``, ``point_box``, ``peaks3``, ``peaks3_box``, ``points_cc``,
  ``box_cc``, ``box_neg``, ``mask``, ``box_mask``, ``box_refine``; a strategy
  registered with :func:`~selfprompt.strategies.register` joins at the next choice.
- **candidate thresholds** (:data:`AUTO_THRESHOLDS`): 0.5 (the paper's), 0.3 and 0.7:
  36 options in all. No candidate was picked by looking at a result on test images.
- **splits** (:func:`inner_splits`): leave-one-out for k <= 10 (every shot held out
  once, k fits of k - 1 shots), 5-fold above it (shuffled, seeded by the shots' seed:
  k fits would cost minutes on a CPU at k = 40, and 4/5 of 20 shots is already close
  to the fold's classifier).
- **scores**: per split, one classifier fitted on the other shots (the preset's own fit,
  which does not depend on the threshold); per held-out shot one probability map, cut
  at each threshold into a coarse mask and its prompts, the paper's prompts of every
  threshold decoded in one SAM call (:meth:`~selfprompt.decode.PromptDecoder.variants_of`),
  the other strategies decoded per threshold (``mask``, which reads only the
  classifier's log-odds, once: :data:`THRESHOLD_FREE`), each mask scored against the
  shot's own mask. An option's score is its mean Dice over every held-out shot; a split
  whose training shots hold one class only is skipped.
- **the choice**: the highest mean Dice (rounded to 1e-6); ties go to the first option
  in the order: the backbone's own prompt (below) first, then the other candidates in
  :func:`candidate_prompts` order, each at 0.5, 0.3, 0.7 in turn. So ``auto`` leaves
  the backbone's own recipe only when the shots say it should.
- **too few shots** (k = 1, or no split whose training shots hold both classes): no
  cross-validation; the prompt the backbone was trained with
  (:func:`backbone_prompt`: ``trained_with`` of :mod:`selfprompt.models.registry`,
  "boxes" -> ``box``, as LiteMedSAM; "points and boxes" -> ``point_box``, as SAM and
  MobileSAM) at threshold 0.5. The recipe says so: ``cv="none"`` and ``reason``.

Then the fold's own classifier (fitted on all k shots) is cut at the chosen threshold
and the chosen prompt decodes every test image (:func:`apply_recipe`). No test image
or test mask is read to choose. Box widening draws from a generator seeded by (seed,
split, shot) inside the shots and by (seed, fold, image) on test images, as the
``corrected`` preset does, under either preset: the ``paper`` preset's sequential
stream, which the other variants share, is left alone.
"""
from __future__ import annotations

import copy
import hashlib
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..embeddings import to_float32
from ..frame import GRID, grid_to_image
from ..metrics import dice
from ..pipeline import fit_classifier, segment
from ..presets import VARIANTS, Preset
from ..prompts import make_prompts

#: the variant name in results tables
AUTO = "auto"
#: strategies that are not prompts from the classifier: SAM with no prompt at all
UNPROMPTED = ("no_prompt",)
#: candidate strategies that read the classifier's log-odds alone, not its cut mask:
#: decoded once per held-out shot, their mask shared by every threshold
THRESHOLD_FREE = ("mask",)
#: the classifier thresholds it chooses among, the paper's first (ties go to the first)
AUTO_THRESHOLDS = (0.5, 0.3, 0.7)
#: the threshold of a recipe chosen without cross-validation (the paper's)
FALLBACK_THRESHOLD = 0.5
#: the prompt each backbone's ``trained_with`` names (the fallback, and first in ties)
TRAINED_PROMPT = {"boxes": "box", "points and boxes": "point_box"}
#: up to this k, leave-one-out; above it, :data:`INNER_FOLDS`-fold
LOO_MAX_K = 10
INNER_FOLDS = 5


def candidate_prompts() -> tuple[str, ...]:
    """Every self-prompt the kit has now, by the module's rule: the paper's variants,
    then the strategies that prompt from the classifier (not ``NEEDS_TRUTH``,
    ``NEEDS_PERSAM``, ``ft_*`` or :data:`UNPROMPTED`), in registry order."""
    from ..strategies import NEEDS_PERSAM, NEEDS_TRUTH, STRATEGIES

    return VARIANTS + tuple(s for s in STRATEGIES
                            if s not in NEEDS_TRUTH and s not in NEEDS_PERSAM
                            and not s.startswith("ft_") and s not in UNPROMPTED)


#: the candidate prompts of the kit's own strategies (:func:`candidate_prompts` at import)
AUTO_PROMPTS = candidate_prompts()


def backbone_prompt(trained_with: str) -> str:
    """The prompt a backbone was trained with (:data:`TRAINED_PROMPT`)."""
    try:
        return TRAINED_PROMPT[trained_with]
    except KeyError:
        raise ValueError(f"trained_with {trained_with!r}: expected one of "
                         f"{', '.join(TRAINED_PROMPT)}") from None


def _trained_with(decoder) -> str:
    from ..models.registry import get_spec

    return get_spec(decoder.backbone.model_type).trained_with


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
    #: why there was no cross-validation (``cv="none"``), else ""
    reason: str = ""

    @property
    def name(self) -> str:
        return option(self.prompt, self.threshold)

    def as_dict(self) -> dict:
        """As a fold's JSON keeps it."""
        return {"prompt": self.prompt, "threshold": self.threshold, "cv": self.cv,
                "reason": self.reason, "scores": self.scores_, "n_scored": self.n_scored_,
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


class _Cut:
    """One image's classifier output computed once and cut at any threshold: the
    ``(64, 64)`` coarse mask ``clf.predict_map`` gives at that threshold (the linear
    classifier compares its decision value with the threshold's log-odds, the others
    their probability with the threshold), without a second pass over the cells."""

    def __init__(self, clf, features: np.ndarray) -> None:
        from ..classifier import LinearPixelClassifier, cells

        self.linear = isinstance(clf, LinearPixelClassifier)
        x = cells(features)
        self.score = clf.decision_function(x) if self.linear else clf.predict_proba(x)[:, 1]
        self.classes = clf.classes_

    def __call__(self, threshold: float) -> np.ndarray:
        edge = np.log(threshold / (1.0 - threshold)) if self.linear else threshold
        grid = self.classes[(self.score > edge).astype(int)]
        return grid.reshape(GRID, GRID).astype(np.uint8)

    def logits(self, clip: float = 20.0) -> np.ndarray:
        """``clf.logit_map``: the linear model's decision values, or the probability's
        log-odds, clipped to ``+-clip``."""
        if self.linear:
            d = self.score
        else:
            p = np.clip(self.score.astype(np.float64), 1e-9, 1 - 1e-9)
            d = np.log(p / (1 - p))
        return np.clip(d.reshape(GRID, GRID), -clip, clip).astype(np.float32)


def score_options(clf, decoder, features: np.ndarray, truth: np.ndarray, preset: Preset,
                  prompts: Sequence[str], thresholds: Sequence[float],
                  seed: tuple[int, ...]) -> dict[str, float]:
    """Dice of every option (:func:`option`) on one held-out shot against its own mask
    ``truth``: one probability map, a coarse mask and prompts per threshold (box widening
    from ``np.random.default_rng(seed)``, afresh for each), the paper's prompts of all
    thresholds in one decoder call, the other strategies per threshold
    (:data:`THRESHOLD_FREE` ones once). Equal to :func:`segment` per threshold (up to
    the batched decoder's float rounding)."""
    from ..strategies import NEEDS_LOGITS, Inputs, run_strategies

    img_size = decoder.backbone.img_size
    size = truth.shape
    cut = _Cut(clf, features)
    sets = [make_prompts(grid_to_image(cut(t), size[0], size[1],
                                       aligned=preset.labels == "aligned", img_size=img_size),
                         preset, np.random.default_rng(list(seed))) for t in thresholds]
    decoder.set_embedding(features, size)
    paper = [p for p in prompts if p in VARIANTS]
    others = [p for p in prompts if p not in VARIANTS]
    masks = decoder.variants_of(sets, paper)
    logits = cut.logits() if set(others) & set(NEEDS_LOGITS) else None
    once = [p for p in others if p in THRESHOLD_FREE]
    each = [p for p in others if p not in THRESHOLD_FREE]
    shared = {}
    if once:
        shared = run_strategies(once, decoder, Inputs(sets[0], preset, logits, None,
                                                      tuple(seed), img_size))
    out = {}
    for t, prompts_t, masks_t in zip(thresholds, sets, masks):
        if each:
            masks_t.update(run_strategies(each, decoder, Inputs(prompts_t, preset, logits,
                                                                None, tuple(seed), img_size)))
        masks_t.update(shared)
        out.update({option(p, t): dice(masks_t[p], truth) for p in prompts})
    return out


def _order(prompts: Sequence[str], first: str) -> list[str]:
    """The tie order: the backbone's own prompt first, then the others as listed."""
    return [first] * (first in prompts) + [p for p in prompts if p != first]


def choose_recipe(embeddings, masks, preset: Preset, decoder,
                  prompts: Sequence[str] | None = None,
                  thresholds: Sequence[float] = AUTO_THRESHOLDS, seed: int = 42) -> Recipe:
    """Choose a prompt and a threshold by cross-validation inside the k shots.

    ``embeddings``: the shots' ``(256, 64, 64)`` embeddings (a sequence read lazily);
    ``masks``: their masks, in the same order; ``decoder``: a ``PromptDecoder`` (its
    backbone sets the frame and the fallback prompt); ``prompts``: the candidates
    (None: :func:`candidate_prompts`). Nothing else is read.
    """
    start = time.perf_counter()
    masks = list(masks)
    if len(masks) != len(embeddings):
        raise ValueError(f"{len(embeddings)} embeddings but {len(masks)} masks")
    prompts = tuple(candidate_prompts() if prompts is None else prompts)
    thresholds = tuple(thresholds)
    key = _memo_key(embeddings, masks, preset, decoder, prompts, thresholds, seed)
    if key in _CHOSEN:
        return copy.deepcopy(_CHOSEN[key])
    recipe = _choose(embeddings, masks, preset, decoder, prompts, thresholds, seed, start)
    _CHOSEN[key] = copy.deepcopy(recipe)
    while len(_CHOSEN) > MEMO_SIZE:
        _CHOSEN.popitem(last=False)
    return recipe


#: recipes chosen in this process, by everything a choice depends on (:func:`_memo_key`)
_CHOSEN: OrderedDict = OrderedDict()
MEMO_SIZE = 128


def _memo_key(embeddings, masks, preset: Preset, decoder, prompts, thresholds,
              seed: int) -> tuple:
    """What a choice depends on: the shots' embeddings and masks (hashed), the preset
    but for its threshold (the inner CV tries its own thresholds, the fit does not
    depend on it: a study of several threshold presets chooses once), the backbone,
    how it decodes, the candidates (and the strategy functions behind them), the seed."""
    from ..strategies import STRATEGIES

    h = hashlib.sha1()
    for j in range(len(masks)):
        h.update(np.ascontiguousarray(embeddings[j]).tobytes())
        m = np.ascontiguousarray(masks[j])
        h.update(repr(m.shape).encode() + m.tobytes())
    fields = {n: v for n, v in preset.as_dict().items() if n not in ("threshold", "name")}
    return (h.hexdigest(), repr(sorted(fields.items())), decoder.backbone.model_hash,
            decoder.backbone.model_type, bool(getattr(decoder, "batched", True)), prompts,
            tuple(id(STRATEGIES[p][1]) if p in STRATEGIES else p for p in prompts),
            thresholds, seed)


def _choose(embeddings, masks, preset: Preset, decoder, prompts, thresholds, seed: int,
            start: float) -> Recipe:
    own = backbone_prompt(_trained_with(decoder))
    img_size = decoder.backbone.img_size
    splits = inner_splits(len(masks), seed)
    dice_: dict[str, list[float]] = {option(p, t): [] for p in prompts for t in thresholds}
    for s, (train, held) in enumerate(splits):
        try:
            clf = fit_classifier(_Subset(embeddings, train), [masks[j] for j in train],
                                 preset, img_size=img_size)
        except ValueError:          # the other shots hold one class only: no classifier
            continue
        for j in map(int, held):
            got = score_options(clf, decoder, to_float32(embeddings[j]), masks[j], preset,
                                prompts, thresholds, (seed, s, j))
            for name, d in got.items():
                dice_[name].append(d)
    n_scored = len(next(iter(dice_.values()), []))
    if not n_scored:
        reason = ("k = 1: no shot to hold out" if len(masks) < 2 else
                  "no split whose training shots hold both lesion and background")
        return Recipe(own, FALLBACK_THRESHOLD, "none", {}, 0,
                      round(time.perf_counter() - start, 3), reason)
    scores = {name: round(float(np.mean(v)), 6) for name, v in dice_.items()}
    best = max(((p, t) for p in _order(prompts, own) for t in thresholds),
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
