"""One image through the method: classifier -> coarse mask -> prompts -> SAM's masks.

These functions are the method itself; the protocol, the notebooks and the explorer
all call them, so what a student sees step by step is what ``make reproduce`` runs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .classifier import LinearPixelClassifier, cells
from .decode import PromptDecoder
from .frame import GRID, grid_to_image, labels_aligned, labels_stretched
from .metrics import dice, iou
from .presets import VARIANTS, Preset
from .prompts import Prompts, make_prompts


def training_labels(mask: np.ndarray, preset: Preset) -> tuple[np.ndarray, np.ndarray | None]:
    """Labels ``(n,)`` of one training image's cells, and which cells they belong to.

    ``stretched`` labels pair every cell with the squeezed mask (the authors', D4):
    all 4096 cells, ``keep`` is None. ``aligned`` labels pair each cell with the mask
    under it in SAM's padded frame and leave out cells that are mostly padding.
    """
    if preset.labels == "stretched":
        return labels_stretched(mask).ravel(), None
    labels, valid = labels_aligned(mask)
    keep = valid.ravel()
    return labels.ravel()[keep], keep


def fit_classifier(embeddings, masks, preset: Preset) -> LinearPixelClassifier:
    """Fit on the k shots, cells concatenated in the order given (the paper's order).

    ``embeddings`` and ``masks`` are iterables of the same length (generators are
    fine). Labels (64 x 64 each) are made first; then one float32 matrix is allocated
    and filled one embedding at a time, so memory is the matrix itself (k = all on
    Kvasir-SEG: 800 x 4096 x 256 x 4 B = 3.4 GB), never a second copy of it.
    """
    labels = [training_labels(m, preset) for m in masks]
    n = sum(len(y) for y, _ in labels)
    X, y, at = None, np.empty(n, dtype=np.uint8), 0
    for features, (yi, keep) in zip(embeddings, labels, strict=True):
        Xi = cells(features)
        if X is None:
            X = np.empty((n, Xi.shape[1]), dtype=np.float32)
        X[at:at + len(yi)] = Xi if keep is None else Xi[keep]
        y[at:at + len(yi)] = yi
        at += len(yi)
    if len(np.unique(y)) < 2:
        raise ValueError("the k training masks hold only one class: draw other shots or a "
                         "larger k (a linear classifier needs lesion and background cells)")
    return LinearPixelClassifier(threshold=preset.threshold).fit(X, y)


def coarse_mask(clf: LinearPixelClassifier, features: np.ndarray, size: tuple[int, int],
                preset: Preset) -> np.ndarray:
    """The classifier's mask at the image's resolution, ``uint8 (H, W)`` in {0, 1}."""
    grid = clf.predict_map(features)
    return grid_to_image(grid, size[0], size[1], aligned=preset.labels == "aligned")


def probability_map(clf: LinearPixelClassifier, features: np.ndarray, size: tuple[int, int],
                    preset: Preset) -> np.ndarray:
    """Lesion probability at the image's resolution (smoothly upsampled), for display."""
    grid = clf.probability_map(features).astype(np.float32)
    return grid_to_image(grid, size[0], size[1], aligned=preset.labels == "aligned", smooth=True)


@dataclass
class Segmentation:
    """Everything computed for one test image, kept for display and for the table."""

    coarse: np.ndarray
    prompts: Prompts
    masks: dict[str, np.ndarray]

    def scores(self, truth: np.ndarray) -> dict[str, tuple[float, float]]:
        return {v: (dice(m, truth), iou(m, truth)) for v, m in self.masks.items()}


def segment(clf: LinearPixelClassifier, decoder: PromptDecoder, features: np.ndarray,
            size: tuple[int, int], preset: Preset, rng, variants=VARIANTS) -> Segmentation:
    """Self-prompt SAM on one image from its cached embedding."""
    assert features.shape[-1] == GRID
    coarse = coarse_mask(clf, features, size, preset)
    prompts = make_prompts(coarse, preset, rng)
    decoder.set_embedding(features, size)
    return Segmentation(coarse, prompts, decoder.variants(prompts, variants))
