"""From a coarse mask to SAM prompts: clean-up, a point, a box.

Coordinates follow SAM: points are ``(x, y)`` (column, row), boxes ``XYXY``. OpenCV
does the pixel work (nearest neighbour, distance transform, morphology), because the
``paper`` preset must match the authors' OpenCV calls pixel for pixel.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .presets import Preset


@dataclass
class Prompts:
    """Prompts for one image. ``points`` is ``(N, 2)`` XY, ``labels`` ``(N,)`` (1 =
    lesion), ``box`` ``(4,)`` XYXY; each ``None`` when there is nothing to prompt with.
    ``empty`` is True when the cleaned coarse mask has no pixel; ``draws`` is how many
    numbers the box widening took from the random stream (the ``paper`` preset's
    sequential stream is replayed from these counts)."""

    points: np.ndarray | None
    labels: np.ndarray | None
    box: np.ndarray | None
    cleaned: np.ndarray
    empty: bool
    draws: int = 0


def clean(mask: np.ndarray, erode: int = 3, dilate: int = 5, kernel_size: int = 5) -> np.ndarray:
    """Remove specks and close gaps: ``erode`` erosions then ``dilate`` dilations."""
    kernel = np.ones((kernel_size, kernel_size), np.uint8)
    out = mask.astype(np.uint8)
    out = cv2.erode(out, kernel, iterations=erode) if erode else out
    return cv2.dilate(out, kernel, iterations=dilate) if dilate else out


def peak_points(mask: np.ndarray, n: int = 1) -> np.ndarray:
    """Up to ``n`` points deepest inside the mask: maxima of the distance transform.

    The first is the global maximum, first in row-major order on ties (as
    ``np.where(d == d.max())[..][0]``). Further points are the next maxima once a disc
    of the previous point's depth is removed, so they spread over separate lesions.
    An all-zero mask gives ``(0, 0)``, as the authors' code does; callers decide
    whether an empty mask should prompt at all.
    """
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    points = []
    for _ in range(n):
        flat = int(np.argmax(dist))  # first maximum in row-major order
        y, x = divmod(flat, dist.shape[1])
        if points and dist[y, x] <= 0:
            break
        points.append((x, y))
        cv2.circle(dist, (x, y), max(int(np.ceil(dist[y, x])), 1), 0, thickness=-1)
    return np.array(points, dtype=np.int64)


def bounding_box(mask: np.ndarray) -> np.ndarray | None:
    """Tight ``XYXY`` box of the foreground, inclusive pixel indices; None if empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], dtype=np.int64)


def widen(box: np.ndarray, height: int, width: int, rng, max_widen: int = 20) -> np.ndarray:
    """Widen each side by a random 0..max_widen-1 px, clipped to [0, W] x [0, H].

    Draw order x_min, x_max, y_min, y_max and the clip to W and H (not W-1) follow the
    authors' code, so a legacy ``RandomState`` gives their boxes. ``rng`` may be a
    ``RandomState`` or a ``Generator`` (both have ``randint``/``integers``).
    """
    draw = rng.randint if hasattr(rng, "randint") else rng.integers
    x0, y0, x1, y1 = (int(v) for v in box)
    if max_widen <= 0:
        return np.array([x0, y0, x1, y1], dtype=np.int64)
    x0 = max(0, x0 - int(draw(0, max_widen)))
    x1 = min(width, x1 + int(draw(0, max_widen)))
    y0 = max(0, y0 - int(draw(0, max_widen)))
    y1 = min(height, y1 + int(draw(0, max_widen)))
    return np.array([x0, y0, x1, y1], dtype=np.int64)


def make_prompts(coarse: np.ndarray, preset: Preset, rng) -> Prompts:
    """Prompts from a coarse mask at the image's resolution, the way ``preset`` says.

    Draws from ``rng`` only when the cleaned mask is non-empty (4 draws), as the
    authors' code does; the ``paper`` preset's sequential stream depends on it.
    """
    height, width = coarse.shape
    cleaned = clean(coarse, preset.erode_iterations, preset.dilate_iterations, preset.kernel_size)
    box = bounding_box(cleaned)
    empty = box is None
    source = coarse if preset.point_source == "raw" else cleaned
    if empty and preset.point_source == "cleaned":
        points = None
    else:
        points = peak_points(source, preset.n_points)
    if empty:
        # D7: the authors' fallback box is [0, 0, H, W], i.e. x and y swapped.
        box = np.array([0, 0, height, width], np.int64) if preset.empty_box == "swapped" else None
    else:
        box = widen(box, height, width, rng, preset.max_widen)
    labels = None if points is None else np.ones(len(points), dtype=np.int64)
    draws = 0 if empty or preset.max_widen <= 0 else 4  # widen(): one per side
    return Prompts(points, labels, box, cleaned, empty, draws)
