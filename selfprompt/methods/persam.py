"""PerSAM and PerSAM-F (:mod:`selfprompt.persam`) as estimators on :class:`Shots`."""
from __future__ import annotations

import numpy as np

from .base import Method, Prediction, Shots


class PerSAMMethod(Method):
    """PerSAM (registry name ``persam``): the shots' target feature, its location prior,
    target-guided attention and cascaded refinement; no classifier.

    Parameters: as :class:`selfprompt.persam.PerSAM` (``bias_frame``, ``guidance``,
    ``refine``). Fitted: ``model_`` (the fitted PerSAM). The score is SAM's predicted
    IoU of the mask the last refinement step kept.
    """

    name = "persam"

    def __init__(self, bias_frame: str = "aligned", guidance: bool = True,
                 refine: bool = True) -> None:
        self.bias_frame = bias_frame
        self.guidance = guidance
        self.refine = refine

    def model(self):
        """The unfitted :mod:`selfprompt.persam` model with these settings."""
        from ..persam import PerSAM

        return PerSAM(**self.get_params())

    def fit(self, shots: Shots) -> "PerSAMMethod":
        self.model_ = self.model().fit(shots.embeddings, shots.masks, shots.img_size,
                                       shots.decoder)
        self.decoder_ = shots.decoder
        self.n_shots_ = self.model_.n_shots_
        return self

    def predict(self, features: np.ndarray, size: tuple[int, int], *,
                seed: tuple[int, ...] = (0,)) -> Prediction:
        self._check_fitted("model_")
        mask, score = self.model_.predict_scored(self.decoder_, features, tuple(size))
        return Prediction(np.asarray(mask, bool), score, self.name)


class PerSAMFMethod(PerSAMMethod):
    """PerSAM-F (registry name ``persam_f``): PerSAM's prior and two trained weights over
    SAM's three outputs, then refinement. Parameters as :class:`selfprompt.persam.PerSAMF`
    (``epochs``, ``lr``, ``refine``). Without refinement the score is the weights' mean
    of the three outputs' predicted IoUs."""

    name = "persam_f"

    def __init__(self, epochs: int = 1000, lr: float = 1e-3, refine: bool = True) -> None:
        self.epochs = epochs
        self.lr = lr
        self.refine = refine

    def model(self):
        from ..persam import PerSAMF

        return PerSAMF(**self.get_params())
