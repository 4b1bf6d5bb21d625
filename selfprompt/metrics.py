"""Overlap metrics per image, at the image's original resolution.

Both are defined for empty masks: an empty prediction of an empty truth is a perfect
answer (1.0), never NaN. The authors' ``dice_coef`` returns NaN there, which is one
reason their means skip such images.
"""
from __future__ import annotations

import numpy as np


def _counts(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from truth shape {truth.shape}")
    p, t = pred > 0, truth > 0
    return int(np.count_nonzero(p & t)), int(np.count_nonzero(p)), int(np.count_nonzero(t))


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice = 2 |P and T| / (|P| + |T|); 1.0 when both masks are empty."""
    inter, n_pred, n_truth = _counts(pred, truth)
    total = n_pred + n_truth
    return 1.0 if total == 0 else 2.0 * inter / total


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union; 1.0 when both masks are empty."""
    inter, n_pred, n_truth = _counts(pred, truth)
    union = n_pred + n_truth - inter
    return 1.0 if union == 0 else inter / union
