"""The encoder's padded square frame, and how masks map onto its 64 x 64 embedding grid.

SAM resizes an image so that its longest side is 1024 (aspect kept) and pads the
bottom and right edges to a 1024 x 1024 square. The image encoder sees that square,
so embedding cell ``(i, j)`` describes padded-frame pixels
``[16 i, 16 i + 16) x [16 j, 16 j + 16)``. For a non-square image some rows or
columns of cells hold only padding. LiteMedSAM does the same at 256 x 256 (4 x 4
pixels a cell): every function here takes the frame's side as ``img_size``
(``Backbone.img_size``), SAM's 1024 by default.

The authors' code instead stretches the whole mask to 64 x 64 (the authors' defect
D4, docs/method.md), so its labels do not lie under the features they are paired with.
This module provides both mappings so that the two presets differ only in that choice.
"""
from __future__ import annotations

import cv2
import numpy as np

IMG_SIZE = 1024  #: side of SAM's padded input square (LiteMedSAM's: 256)
GRID = 64  #: side of the embedding grid, whatever the frame's size


def patch(img_size: int = IMG_SIZE) -> int:
    """Pixels of the padded frame per grid cell, along one side (16 for SAM, 4 at 256)."""
    if img_size % GRID:
        raise ValueError(f"frame side {img_size} is not a multiple of the {GRID}-cell grid")
    return img_size // GRID


def input_size(height: int, width: int, target: int = IMG_SIZE) -> tuple[int, int]:
    """Size ``(h, w)`` of the image after SAM's resize, before padding.

    Same arithmetic as ``ResizeLongestSide.get_preprocess_shape`` so that frame
    maths and the encoder always agree.
    """
    scale = target / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def content_fraction(height: int, width: int, img_size: int = IMG_SIZE) -> np.ndarray:
    """Fraction of each of the 64 x 64 cells covered by image content (not padding)."""
    h, w = input_size(height, width, img_size)
    p = patch(img_size)
    rows = np.clip(h - np.arange(GRID) * p, 0, p) / p
    cols = np.clip(w - np.arange(GRID) * p, 0, p) / p
    return np.outer(rows, cols)


def _to_frame(mask: np.ndarray, img_size: int) -> np.ndarray:
    """Mask resized like the encoder's image, as foreground fraction in [0, 1], padded."""
    h, w = input_size(*mask.shape[:2], img_size)
    resized = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    frame = np.zeros((img_size, img_size), np.float32)
    frame[:h, :w] = resized
    return frame


def labels_aligned(mask: np.ndarray, img_size: int = IMG_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell labels that lie under their embedding cells (the ``corrected`` preset).

    Returns ``(labels, valid)``, both ``(64, 64)``: ``labels`` is 1 where at least half
    of the cell's image content is foreground; ``valid`` marks cells that are at least
    half image content. Cells that are mostly padding describe no tissue and are left
    out of training.
    """
    p = patch(img_size)
    fg = _to_frame(mask > 0, img_size).reshape(GRID, p, GRID, p).sum(axis=(1, 3))
    content = content_fraction(*mask.shape[:2], img_size) * p * p
    valid = content >= 0.5 * p * p
    frac = np.divide(fg, content, out=np.zeros_like(fg), where=content > 0)
    return ((frac >= 0.5) & valid).astype(np.uint8), valid


def labels_stretched(mask: np.ndarray) -> np.ndarray:
    """The authors' labels: the whole mask squeezed to 64 x 64, nearest neighbour (D4).

    The frame's size plays no part: that is the defect.
    """
    return cv2.resize((mask > 0).astype(np.uint8), (GRID, GRID), interpolation=cv2.INTER_NEAREST)


def grid_to_image(grid: np.ndarray, height: int, width: int, aligned: bool,
                  smooth: bool = False, img_size: int = IMG_SIZE) -> np.ndarray:
    """Bring a 64 x 64 map (mask or probability) back to the original image size.

    ``aligned=True`` undoes SAM's frame (take the content part of the padded square,
    then resize); ``aligned=False`` stretches the grid over the whole image as the
    authors' code does. ``smooth`` uses bilinear interpolation (for probability maps);
    masks use nearest neighbour so that they stay binary.
    """
    interp = cv2.INTER_LINEAR if smooth else cv2.INTER_NEAREST
    if not aligned:
        return cv2.resize(grid, (width, height), interpolation=interp)
    h, w = input_size(height, width, img_size)
    if smooth:
        square = cv2.resize(grid.astype(np.float32), (img_size, img_size), interpolation=interp)
    else:
        p = patch(img_size)
        square = np.repeat(np.repeat(grid, p, axis=0), p, axis=1)
    return cv2.resize(square[:h, :w], (width, height), interpolation=interp)


#: side of SAM's low-resolution mask (its mask prompt and its raw output): the padded
#: frame at a quarter of SAM's 1024, i.e. 4 pixels per grid cell, whatever ``img_size``
LOWRES = 4 * GRID


def grid_to_lowres(grid: np.ndarray, height: int, width: int, aligned: bool,
                   img_size: int = IMG_SIZE, fill: float = -20.0) -> np.ndarray:
    """A 64 x 64 map (the classifier's logits) as SAM's mask prompt: ``(256, 256)``
    float32 over the padded frame, bilinear, ``fill`` on the padding.

    ``aligned`` grids already lie on the padded frame; stretched ones (the ``paper``
    preset) cover the image only, so they are resized onto its part of the frame.
    """
    h, w = input_size(height, width, LOWRES)
    out = np.full((LOWRES, LOWRES), fill, np.float32)
    grid = grid.astype(np.float32)
    if aligned:
        out[:h, :w] = cv2.resize(grid, (LOWRES, LOWRES), interpolation=cv2.INTER_LINEAR)[:h, :w]
    else:
        out[:h, :w] = cv2.resize(grid, (w, h), interpolation=cv2.INTER_LINEAR)
    return out
