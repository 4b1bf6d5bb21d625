"""A small synthetic data set in the Kvasir-SEG layout, for runs without any download.

Textured pink "mucosa" with one or two smoother, redder elliptical "lesions", at
non-square sizes (so that the padded-frame geometry matters, as with real data).
Deterministic in ``seed``.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def _texture(rng: np.random.Generator, h: int, w: int, scale: int) -> np.ndarray:
    coarse = rng.normal(0, 1, (max(h // scale, 2), max(w // scale, 2))).astype(np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def make_pair(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """One RGB image and its 0/255 mask."""
    base = np.array([200, 120, 110], np.float32)  # pinkish background (RGB)
    image = base + 25 * _texture(rng, height, width, 24)[..., None] \
        + 8 * rng.normal(0, 1, (height, width, 1)).astype(np.float32)
    mask = np.zeros((height, width), np.uint8)
    for _ in range(rng.integers(1, 3)):
        centre = (int(rng.integers(width // 5, 4 * width // 5)),
                  int(rng.integers(height // 5, 4 * height // 5)))
        axes = (int(rng.integers(width // 12, width // 5)),
                int(rng.integers(height // 12, height // 5)))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    lesion = np.array([170, 60, 60], np.float32) + 10 * _texture(rng, height, width, 8)[..., None]
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), 2)[..., None]
    image = np.clip((1 - alpha) * image + alpha * lesion, 0, 255).astype(np.uint8)
    return image, mask


def make_synthetic(root: str | Path, n: int = 12, seed: int = 0) -> Path:
    """Write ``n`` pairs to ``root/images`` and ``root/masks`` (JPEG, same names)."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        h = int(rng.integers(240, 400))
        w = int(rng.integers(h + 40, h + 200))
        image, mask = make_pair(rng, h, w)
        name = f"synthetic_{i:03d}.jpg"
        cv2.imwrite(str(root / "images" / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(str(root / "masks" / name), mask, [cv2.IMWRITE_JPEG_QUALITY, 100])
    return root
