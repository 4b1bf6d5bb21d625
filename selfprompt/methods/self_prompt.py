"""The paper's method as an estimator: a linear classifier on the k shots' embeddings,
its coarse mask's prompt decoded by SAM (:func:`~selfprompt.pipeline.segment`)."""
from __future__ import annotations

import numpy as np

from ..pipeline import fit_classifier, segment
from ..presets import VARIANTS, Preset, get_preset
from .recipe import with_threshold
from .base import Method, Prediction, Shots


def check_prompt(prompt: str) -> None:
    """A prompt this estimator can use: the paper's four, or a strategy that reads
    neither the truth nor another decoder (:mod:`selfprompt.strategies`)."""
    from ..strategies import NEEDS_PERSAM, NEEDS_TRUTH, STRATEGIES

    usable = [v for v in (*VARIANTS, *STRATEGIES) if v not in NEEDS_TRUTH
              and v not in NEEDS_PERSAM and not v.startswith("ft_")]
    if prompt not in usable:
        raise ValueError(f"unknown prompt {prompt!r}; choose from {', '.join(usable)}")


class SelfPrompting(Method):
    """Self-prompted SAM with one prompt (registry name ``self_prompt``).

    Parameters
    ----------
    preset : str or Preset, default="corrected"
        How the method computes (:mod:`selfprompt.presets`).
    prompt : str, default="point_box"
        The paper's ``linear``, ``point``, ``box``, ``point_box``, or a strategy that
        needs no truth (``box_cc``, ``peaks3``, ...).
    threshold : float or None, default=None
        Where the classifier's probability is cut (None: the preset's).

    Box widening draws from ``np.random.default_rng(seed)`` (``predict``'s ``seed``; the
    protocol passes (seed, fold, image)), under either preset. The score is SAM's
    predicted IoU of the returned mask (one box per lesion: the area-weighted mean over
    the lesions; an empty mask nothing decoded: 0), for ``linear`` the classifier's mean
    confidence (:func:`~selfprompt.pipeline.classifier_confidence`).
    """

    def __init__(self, preset: str | Preset = "corrected", prompt: str = "point_box",
                 threshold: float | None = None) -> None:
        self.preset = preset
        self.prompt = prompt
        self.threshold = threshold

    def fit(self, shots: Shots) -> "SelfPrompting":
        check_prompt(self.prompt)
        self.preset_ = get_preset(self.preset)
        clf = fit_classifier(shots.embeddings, shots.masks, self.preset_,
                             img_size=shots.img_size)
        self.classifier_ = clf if self.threshold is None else with_threshold(clf, self.threshold)
        self.decoder_ = shots.decoder
        self.n_shots_ = len(shots)
        return self

    def predict(self, features: np.ndarray, size: tuple[int, int], *,
                seed: tuple[int, ...] = (0,)) -> Prediction:
        self._check_fitted("classifier_")
        seg = segment(self.classifier_, self.decoder_, np.asarray(features, np.float32),
                      tuple(size), self.preset_, np.random.default_rng(list(seed)),
                      (self.prompt,), seed=tuple(seed))
        return Prediction(seg.masks[self.prompt], seg.quality[self.prompt], self.prompt)
