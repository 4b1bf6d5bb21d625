"""SAM's padded 1024 x 1024 frame, and how masks map onto its 64 x 64 embedding grid.

SAM resizes an image so that its longest side is 1024 (aspect kept) and pads the
bottom and right edges to a 1024 x 1024 square. The image encoder sees that square,
so embedding cell ``(i, j)`` describes padded-frame pixels
``[16 i, 16 i + 16) x [16 j, 16 j + 16)``. For a non-square image some rows or
columns of cells hold only padding.

The authors' code instead stretches the whole mask to 64 x 64 (defect D4 in
METHOD.md), so its labels do not lie under the features they are paired with. This
module provides both mappings so that the two presets differ only in that choice.
"""
from __future__ import annotations

import cv2
import numpy as np

IMG_SIZE = 1024  #: side of SAM's padded input square
GRID = 64  #: side of the embedding grid
PATCH = IMG_SIZE // GRID  #: pixels of the padded frame per grid cell


def input_size(height: int, width: int, target: int = IMG_SIZE) -> tuple[int, int]:
    """Size ``(h, w)`` of the image after SAM's resize, before padding.

    Same arithmetic as ``ResizeLongestSide.get_preprocess_shape`` so that frame
    maths and the encoder always agree.
    """
    scale = target / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def content_fraction(height: int, width: int) -> np.ndarray:
    """Fraction of each of the 64 x 64 cells covered by image content (not padding)."""
    h, w = input_size(height, width)
    rows = np.clip(h - np.arange(GRID) * PATCH, 0, PATCH) / PATCH
    cols = np.clip(w - np.arange(GRID) * PATCH, 0, PATCH) / PATCH
    return np.outer(rows, cols)


def _to_frame(mask: np.ndarray) -> np.ndarray:
    """Mask resized like SAM resizes the image, as foreground fraction in [0, 1], padded."""
    h, w = input_size(*mask.shape[:2])
    resized = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    frame = np.zeros((IMG_SIZE, IMG_SIZE), np.float32)
    frame[:h, :w] = resized
    return frame


def labels_aligned(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell labels that lie under their embedding cells (the ``corrected`` preset).

    Returns ``(labels, valid)``, both ``(64, 64)``: ``labels`` is 1 where at least half
    of the cell's image content is foreground; ``valid`` marks cells that are at least
    half image content. Cells that are mostly padding describe no tissue and are left
    out of training.
    """
    fg = _to_frame(mask > 0).reshape(GRID, PATCH, GRID, PATCH).sum(axis=(1, 3))
    content = content_fraction(*mask.shape[:2]) * PATCH * PATCH
    valid = content >= 0.5 * PATCH * PATCH
    frac = np.divide(fg, content, out=np.zeros_like(fg), where=content > 0)
    return ((frac >= 0.5) & valid).astype(np.uint8), valid


def labels_stretched(mask: np.ndarray) -> np.ndarray:
    """The authors' labels: the whole mask squeezed to 64 x 64, nearest neighbour (D4)."""
    return cv2.resize((mask > 0).astype(np.uint8), (GRID, GRID), interpolation=cv2.INTER_NEAREST)


def grid_to_image(grid: np.ndarray, height: int, width: int, aligned: bool,
                  smooth: bool = False) -> np.ndarray:
    """Bring a 64 x 64 map (mask or probability) back to the original image size.

    ``aligned=True`` undoes SAM's frame (take the content part of the padded square,
    then resize); ``aligned=False`` stretches the grid over the whole image as the
    authors' code does. ``smooth`` uses bilinear interpolation (for probability maps);
    masks use nearest neighbour so that they stay binary.
    """
    interp = cv2.INTER_LINEAR if smooth else cv2.INTER_NEAREST
    if not aligned:
        return cv2.resize(grid, (width, height), interpolation=interp)
    h, w = input_size(height, width)
    if smooth:
        square = cv2.resize(grid.astype(np.float32), (IMG_SIZE, IMG_SIZE), interpolation=interp)
    else:
        square = np.repeat(np.repeat(grid, PATCH, axis=0), PATCH, axis=1)
    return cv2.resize(square[:h, :w], (width, height), interpolation=interp)
