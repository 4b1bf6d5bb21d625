"""What every method the kit compares is fitted on, and what it answers.

Every method is a scikit-learn estimator: its settings are keyword parameters of
``__init__`` (``get_params``, ``set_params`` and ``sklearn.base.clone`` work), ``fit``
takes the k labelled images as :class:`Shots` and returns the estimator, what it
learned ends in ``_``, and ``predict`` answers one image from its cached embedding as a
:class:`Prediction`: the mask, its quality score and the prompt that made it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import BaseEstimator

if TYPE_CHECKING:  # annotations only: the decoder pulls in torch
    from ..decode import PromptDecoder


@dataclass
class Shots:
    """The k labelled images, as every method is fitted on them.

    ``embeddings``: their ``(256, 64, 64)`` embeddings, a sequence that may read each one
    when asked for (``DatasetEmbeddings.take``); ``masks``: their true masks, ``uint8
    (H, W)`` in {0, 1}, in the same order; ``decoder``: the backbone's SAM decoder (the
    backbone sets the frame); ``seed``: what a method's own randomness starts from.
    """

    embeddings: Sequence[np.ndarray]
    masks: list[np.ndarray]
    decoder: PromptDecoder
    seed: int = 42

    def __post_init__(self) -> None:
        self.masks = [np.asarray(m) for m in self.masks]
        if len(self.masks) != len(self.embeddings):
            raise ValueError(f"{len(self.embeddings)} embeddings but {len(self.masks)} masks: "
                             "give one mask per labelled image, in the same order")
        if not self.masks:
            raise ValueError("no labelled images: fit on at least one image and its mask")

    def __len__(self) -> int:
        return len(self.masks)

    @property
    def img_size(self) -> int:
        """The encoder's frame (``Backbone.img_size``)."""
        return self.decoder.backbone.img_size


@dataclass
class Prediction:
    """One image's answer.

    ``score`` is the mask's quality in [0, 1], higher meaning more trustworthy (each
    method says how it is computed; for a mask SAM decoded it is SAM's own predicted IoU
    of that mask, for the classifier's own mask the classifier's mean confidence). It
    ranks images for review; it is not a measured Dice.
    """

    mask: np.ndarray
    score: float
    prompt: str

    @property
    def area(self) -> int:
        """Lesion pixels."""
        return int(self.mask.sum())


class Method(BaseEstimator):
    """The shape every method shares (scikit-learn's ``BaseEstimator``: parameters are
    ``__init__``'s keyword arguments, stored as given, checked in ``fit``)."""

    def fit(self, shots: Shots) -> "Method":
        raise NotImplementedError

    def predict(self, features: np.ndarray, size: tuple[int, int], *,
                seed: tuple[int, ...] = (0,)) -> Prediction:
        raise NotImplementedError

    def _check_fitted(self, attribute: str) -> None:
        if not hasattr(self, attribute):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(shots) on the "
                               "labelled images first")
