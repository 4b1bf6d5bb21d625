"""Other ways to prompt SAM, and the baselines that bracket self-prompting.

The paper prompts with one point and one box taken from the classifier's mask. The
questions a reader asks next are variants in the same results table, decoded from
the same cached embedding, on the same folds and shots:

- **baselines**: how good could SAM be with perfect prompts (``gt_*``: point and box
  from the true mask, by the same rules), and how good is it with none (``no_prompt``)?
- **prompt strategies**: several points (``peaks3``, ``points_cc``), negative points
  (``box_neg``), one box per lesion (``box_cc``), the classifier's own map as SAM's
  mask prompt (``mask``, ``box_mask``) and SAM's output fed back (``box_refine``).
- **a fine-tuned decoder** (``ft_*``): the same prompts on a mask decoder trained on
  the k shots (:mod:`selfprompt.methods.finetune`); the protocol supplies that decoder.
- **a training-free peer**: PerSAM and PerSAM-F (``persam``, ``persam_f``: the authors'
  form; ``persam_aligned``, ``persam_f_aligned``: the kit's aligned form;
  ``persam_noguide``: without target guidance; :mod:`selfprompt.methods.persam`), fitted
  on the same k shots; the protocol supplies them.

Each variant is one small function ``(decoder, inputs) -> bool (H, W)``. Random draws
(box widening) come from a generator of the variant's own, seeded by (seed, fold,
image, variant): adding a variant never changes another's numbers, and the
``paper`` preset's sequential stream is untouched.
"""
from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from .decode import PromptDecoder
from .frame import grid_to_lowres
from .presets import VARIANTS, Preset
from .prompts import Prompts, bounding_box, peak_points, widen


@dataclass
class Inputs:
    """What a variant may look at for one image (the decoder already holds its embedding)."""

    prompts: Prompts            #: the preset's own point, box and cleaned coarse mask
    preset: Preset
    logits: np.ndarray | None   #: the classifier's ``(64, 64)`` log-odds (``logit_map``)
    truth: np.ndarray | None    #: the true mask (the ``gt_*`` baselines only)
    seed: tuple[int, ...]       #: (seed, fold, image): each variant's draws start from it
    img_size: int = 1024        #: the encoder's frame (``Backbone.img_size``)
    #: the fold's fitted :mod:`selfprompt.methods.persam` models by variant (``persam``, ...)
    persam: dict | None = None

    def rng(self, variant: str) -> np.random.Generator:
        return np.random.default_rng([*self.seed, zlib.crc32(variant.encode())])

    @property
    def size(self) -> tuple[int, int]:
        return self.prompts.cleaned.shape


def _empty(x: Inputs) -> np.ndarray:
    return np.zeros(x.size, dtype=bool)


def _box(mask: np.ndarray, x: Inputs, variant: str) -> np.ndarray | None:
    """The preset's box rule on any mask: tight box, each side widened at random."""
    box = bounding_box(mask)
    if box is None:
        return None
    return widen(box, *mask.shape, x.rng(variant), x.preset.max_widen)


def _one_point(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return peak_points(mask, 1), np.ones(1, dtype=np.int64)


# ------------------------------------------------------------------ baselines
def no_prompt(d: PromptDecoder, x: Inputs) -> np.ndarray:
    """SAM with no point, box or mask: what it segments on its own."""
    return d.predict()


def gt_point(d: PromptDecoder, x: Inputs) -> np.ndarray:
    """The deepest point of the true mask (the preset's point rule on the truth)."""
    if x.truth is None or not x.truth.any():
        return _empty(x)
    return d.predict(*_one_point(x.truth))


def gt_box(d: PromptDecoder, x: Inputs) -> np.ndarray:
    """The true mask's box, widened as the preset widens self-prompted boxes."""
    box = None if x.truth is None else _box(x.truth, x, "gt_box")
    return _empty(x) if box is None else d.predict(box=box)


def gt_point_box(d: PromptDecoder, x: Inputs) -> np.ndarray:
    """Both, from the truth: the upper bound of the paper's point + box prompt."""
    box = None if x.truth is None else _box(x.truth, x, "gt_point_box")
    return _empty(x) if box is None else d.predict(*_one_point(x.truth), box=box)


# ------------------------------------------------------------------ prompt strategies
def _components(mask: np.ndarray, min_share: float = 0.1) -> list[np.ndarray]:
    """8-connected components of ``mask`` with at least ``min_share`` of the largest's
    area (specks the clean-up left would otherwise each get a prompt), largest first."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if n <= 1:
        return []
    order = np.argsort(-areas, kind="stable")
    return [labels == j + 1 for j in order if areas[j] >= min_share * areas.max()]


def peaks3(d: PromptDecoder, x: Inputs) -> np.ndarray:
    """Up to three positive points: the coarse mask's three deepest, spread apart."""
    if x.prompts.empty:
        return _empty(x)
    pts = peak_points(x.prompts.cleaned, 3)
    return d.predict(pts, np.ones(len(pts), np.int64))


def peaks3_box(d: PromptDecoder, x: Inputs) -> np.ndarray:
    """The three points with the preset's box."""
    if x.prompts.empty:
        return _empty(x)
    pts = peak_points(x.prompts.cleaned, 3)
    return d.predict(pts, np.ones(len(pts), np.int64), box=x.prompts.box)


def points_cc(d: PromptDecoder, x: Inputs) -> np.ndarray:
    """One positive point per connected component (its deepest point)."""
    parts = _components(x.prompts.cleaned)
    if not parts:
        return _empty(x)
    pts = np.concatenate([peak_points(p, 1) for p in parts])
    return d.predict(pts, np.ones(len(pts), np.int64))


def box_cc(d: PromptDecoder, x: Inputs) -> np.ndarray:
    """One box per connected component, each decoded on its own, masks united: one box
    around two distant polyps also covers the mucosa between them."""
    parts = _components(x.prompts.cleaned)
    out = _empty(x)
    for j, part in enumerate(parts):
        out |= d.predict(box=_box(part, x, f"box_cc{j}"))
    return out


def negative_points(cleaned: np.ndarray, box: np.ndarray, n: int = 2) -> np.ndarray:
    """Up to ``n`` points inside ``box`` farthest from both the coarse mask and the box's
    edge (maxima of the distance transform of the box's lesion-free part): the middle
    of where the box holds most non-lesion."""
    x0, y0, x1, y1 = (int(v) for v in box)
    inside = np.zeros_like(cleaned, dtype=np.uint8)
    inside[y0:y1 + 1, x0:x1 + 1] = 1
    background = (inside & (cleaned == 0)).astype(np.uint8)
    if not background.any():
        return np.zeros((0, 2), np.int64)
    return peak_points(background, n)


def box_neg(d: PromptDecoder, x: Inputs) -> np.ndarray:
    """The box, the positive point, and two negative points in the box's background."""
    p = x.prompts
    if p.empty:
        return _empty(x)
    neg = negative_points(p.cleaned, p.box)
    pos = peak_points(p.cleaned, 1)
    pts = np.concatenate([pos, neg])
    labels = np.array([1] + [0] * len(neg), dtype=np.int64)
    return d.predict(pts, labels, box=p.box)


def _mask_prompt(x: Inputs) -> np.ndarray:
    h, w = x.size
    return grid_to_lowres(x.logits, h, w, aligned=x.preset.labels == "aligned",
                          img_size=x.img_size)


def mask(d: PromptDecoder, x: Inputs) -> np.ndarray:
    """The classifier's log-odds map as SAM's dense mask prompt, nothing else."""
    return d.predict(mask_input=_mask_prompt(x))


def box_mask(d: PromptDecoder, x: Inputs) -> np.ndarray:
    """The box and the classifier's map together."""
    if x.prompts.empty:
        return _empty(x)
    return d.predict(box=x.prompts.box, mask_input=_mask_prompt(x))


#: rounds of :func:`box_refine` (the first is the plain box prompt)
REFINE_ROUNDS = 3


def box_refine(d: PromptDecoder, x: Inputs) -> np.ndarray:
    """The box, then SAM's own low-resolution logits fed back with the same box, for
    :data:`REFINE_ROUNDS` rounds in all (the refinement loop of SAM's interactive use)."""
    if x.prompts.empty:
        return _empty(x)
    out, low = d.predict(box=x.prompts.box, return_logits=True)
    for _ in range(REFINE_ROUNDS - 1):
        out, low = d.predict(box=x.prompts.box, mask_input=low, return_logits=True)
    return out


# ------------------------------------------------------------------ a training-free peer
def _persam(name: str) -> Callable[[PromptDecoder, Inputs], np.ndarray]:
    """PerSAM's own prompts (its location prior, guidance and refinement), from the
    model the protocol fitted on the fold's shots; the coarse mask plays no part."""
    def run(d: PromptDecoder, x: Inputs) -> np.ndarray:
        model = (x.persam or {}).get(name)
        if model is None:
            raise ValueError(f"variant {name!r} needs a fitted {name} model (selfprompt."
                             "methods.persam; the protocol fits it on the shots); none was given")
        out, score = model.predict_scored(d)
        d.scores.append((score, int(out.sum())))
        return out
    run.__doc__ = f"{name} (selfprompt.methods.persam) fitted on the fold's shots."
    return run


def _base(name: str) -> Callable[[PromptDecoder, Inputs], np.ndarray]:
    """The paper's own prompts, for the fine-tuned decoder (``ft_box``, ...)."""
    def run(d: PromptDecoder, x: Inputs) -> np.ndarray:
        masks, scores = d.variants(x.prompts, (name,), return_scores=True)
        if masks[name].any():
            d.scores.append((scores[name], int(masks[name].sum())))
        return masks[name]
    run.__doc__ = f"The preset's {name} prompt."
    return run


#: variant -> (what it asks, function); ``ft_*`` run on the fine-tuned decoder
STRATEGIES: dict[str, tuple[str, Callable[[PromptDecoder, Inputs], np.ndarray]]] = {
    "no_prompt": ("SAM with no prompt", no_prompt),
    "gt_point": ("one point from the true mask", gt_point),
    "gt_box": ("the true mask's box, widened", gt_box),
    "gt_point_box": ("point and box from the true mask (upper bound)", gt_point_box),
    "peaks3": ("three deepest points of the coarse mask", peaks3),
    "peaks3_box": ("three points and the box", peaks3_box),
    "points_cc": ("one point per connected component", points_cc),
    "box_cc": ("one box per connected component, masks united", box_cc),
    "box_neg": ("box, a positive and two negative points", box_neg),
    "mask": ("the classifier's logits as SAM's mask prompt", mask),
    "box_mask": ("box and the classifier's logits", box_mask),
    "box_refine": (f"box, SAM's logits fed back ({REFINE_ROUNDS} rounds)", box_refine),
    "ft_no_prompt": ("fine-tuned decoder, no prompt", no_prompt),
    "ft_box": ("fine-tuned decoder, the self-prompted box", _base("box")),
    "ft_point_box": ("fine-tuned decoder, self-prompted point and box", _base("point_box")),
    "persam": ("PerSAM: target prior, guided decoder, refinement", _persam("persam")),
    "persam_aligned": ("PerSAM, the kit's aligned cells and attention bias",
                       _persam("persam_aligned")),
    "persam_noguide": ("PerSAM without target guidance (prior points, refinement)",
                       _persam("persam_noguide")),
    "persam_f": ("PerSAM-F: PerSAM with trained multimask weights", _persam("persam_f")),
    "persam_f_aligned": ("PerSAM-F, the kit's aligned cells", _persam("persam_f_aligned")),
}
#: variants that need the true mask (never available at test time: bounds only)
NEEDS_TRUTH = ("gt_point", "gt_box", "gt_point_box")
#: variants that need the classifier's logits
NEEDS_LOGITS = ("mask", "box_mask")


def register(name: str, fn: Callable[[PromptDecoder, Inputs], np.ndarray],
             what: str = "", replace: bool = False) -> None:
    """Add a prompt strategy of your own under ``name``: ``Experiment(variants=(...,
    name))`` and the ablations then score it beside the others, on the same folds,
    shots and images. ``fn(decoder, inputs)`` returns the image's mask; it must draw
    random numbers only from ``inputs.rng(name)`` (so it is reproducible and leaves
    every other variant's numbers alone) and must not read ``inputs.truth`` (that is
    for the ``gt_*`` bounds). Its name is what tables and result files carry.
    """
    if not name.isidentifier() or name.startswith("ft_"):
        raise ValueError(f"strategy name {name!r}: use letters, digits and _ "
                         "(not starting with ft_, which the fine-tuned variants use)")
    if name in VARIANTS or name == "auto" or (name in STRATEGIES and not replace):
        raise ValueError(f"a variant called {name!r} exists already; choose another name "
                         "(or replace=True for one you registered yourself)")
    if not callable(fn):
        raise TypeError(f"strategy {name!r} must be a function (decoder, inputs) -> mask")
    STRATEGIES[name] = (what or (fn.__doc__ or name).strip().splitlines()[0], fn)


def needs_finetuned(variants) -> bool:
    return any(v.startswith("ft_") for v in variants)


#: variants that decode with a fitted :mod:`selfprompt.methods.persam` model of that name
NEEDS_PERSAM = ("persam", "persam_aligned", "persam_noguide", "persam_f",
                "persam_f_aligned")


def needs_persam(variants) -> tuple[str, ...]:
    """The PerSAM models the variants need, in :data:`NEEDS_PERSAM`'s order."""
    return tuple(v for v in NEEDS_PERSAM if v in variants)


#: variants whose mask unites several decoded masks: their quality is the mean of SAM's
#: predicted IoUs weighted by each decoded mask's area (the others: the last decode's)
AREA_WEIGHTED = ("box_cc",)


def quality(variant: str, decoded: list[tuple[float, int]]) -> float:
    """A strategy's quality score from its decoder calls ``(SAM's predicted IoU, mask
    area)``, in order: the last call's IoU (the mask it returned: refinement's last
    round), or for :data:`AREA_WEIGHTED` variants the area-weighted mean; 0 when nothing
    was decoded (no prompt: an empty mask)."""
    if not decoded:
        return 0.0
    if variant in AREA_WEIGHTED:
        area = sum(a for _, a in decoded)
        return (float(sum(s * a for s, a in decoded) / area) if area
                else float(np.mean([s for s, _ in decoded])))
    return float(decoded[-1][0])


def run_strategies(variants, decoder: PromptDecoder, x: Inputs,
                   finetuned: PromptDecoder | None = None,
                   seconds: dict[str, float] | None = None,
                   scores: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """Masks of the strategy variants, in the order given. The decoders must hold the
    image's embedding (``set_embedding``) already. ``seconds``, when given, receives each
    variant's own time (what it costs an image beyond the shared coarse mask);
    ``scores`` each variant's quality (:func:`quality`)."""
    out = {}
    for v in variants:
        start = time.perf_counter()
        if v not in STRATEGIES:
            raise ValueError(f"unknown variant {v!r}; strategies: {', '.join(STRATEGIES)}")
        d = decoder
        if v.startswith("ft_"):
            if finetuned is None:
                raise ValueError(f"variant {v!r} needs a fine-tuned decoder "
                                 "(selfprompt.methods.finetune); none was given")
            d = finetuned
        log = getattr(d, "scores", [])    # a decoder of one's own may keep none
        before = len(log)
        out[v] = np.asarray(STRATEGIES[v][1](d, x), dtype=bool)
        if seconds is not None:
            seconds[v] = time.perf_counter() - start
        if scores is not None:
            scores[v] = quality(v, log[before:])
    return out
