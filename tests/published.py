"""Small copies of public data sets *as they are published*, written into a temporary
folder: CVC-ClinicDB, PH2, BUSI (and ISIC/Kvasir-like). No real file of those sets is
needed: the images are a few Kvasir-SEG images when ``../shared`` has them, otherwise
synthetic ones; the masks are drawn here, so every pixel count is known.

Each mask: a 20 x 30 rectangle (600 lesion pixels) at a place that depends on the
case, plus, for CVC-ClinicDB, a row of 30 pixels at grey 128 (counted as lesion: it
is above the threshold 127) and a row of 30 at grey 100 (not lesion) as anti-aliased
edges: 630 lesion pixels, 60 grey ones.
"""
from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

H, W = 60, 80
KVASIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kvasir-seg"


def photo(i: int) -> np.ndarray:
    """An RGB image ``(H, W, 3)``: Kvasir-SEG image ``i`` (resized) or a synthetic one."""
    files = sorted((KVASIR / "images").glob("*.jpg")) if (KVASIR / "images").is_dir() else []
    if files:
        bgr = cv2.imread(str(files[i % len(files)]))
        return cv2.resize(bgr, (W, H), interpolation=cv2.INTER_AREA)[..., ::-1].copy()
    from selfprompt.datasets.synthetic import make_pair

    image, _ = make_pair(np.random.default_rng(i), 240, 320)
    return cv2.resize(image, (W, H), interpolation=cv2.INTER_AREA)


def rectangle(i: int, value: int = 255, dtype=np.uint8) -> np.ndarray:
    mask = np.zeros((H, W), dtype)
    top, left = 10 + 3 * (i % 5), 10 + 4 * (i % 5)
    mask[top:top + 20, left:left + 30] = value
    return mask


def save_rgb(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))
    return path


def save_grey(path: Path, grey: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), grey)
    return path


def write_bmp_1bit(path: Path, mask: np.ndarray) -> Path:
    """A 1-bit BMP (black/white palette), as PH2's lesion masks are stored; OpenCV
    cannot write one, so it is written here byte by byte."""
    h, w = mask.shape
    row_bytes = (w + 31) // 32 * 4
    rows = [np.packbits(mask[y] > 0).tobytes().ljust(row_bytes, b"\0")
            for y in range(h - 1, -1, -1)]                      # bottom-up rows
    pixels = b"".join(rows)
    offset = 14 + 40 + 8
    header = struct.pack("<2sIHHI", b"BM", offset + len(pixels), 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 1, 0, len(pixels), 2835, 2835, 2, 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + info + b"\0\0\0\0\xff\xff\xff\0" + pixels)
    return path


def make_cvc(root: Path, n: int = 4, tif: tuple[int, ...] = (2,)) -> Path:
    """``CVC-ClinicDB/Original/<n>.png`` + ``Ground Truth/<n>.png`` (``.tif`` for the
    numbers in ``tif``): RGB masks with grey anti-aliased edges."""
    top = root / "CVC-ClinicDB"
    for i in range(1, n + 1):
        ext = ".tif" if i in tif else ".png"
        save_rgb(top / "Original" / f"{i}{ext}", photo(i))
        grey = rectangle(i)
        top_row, left = 10 + 3 * (i % 5), 10 + 4 * (i % 5)
        grey[top_row - 1, left:left + 30] = 128                 # anti-aliased: lesion
        grey[top_row + 20, left:left + 30] = 100                # anti-aliased: background
        save_rgb(top / "Ground Truth" / f"{i}{ext}", np.repeat(grey[..., None], 3, axis=2))
    return top


def make_ph2(root: Path, n: int = 3) -> Path:
    """``PH2Dataset/PH2 Dataset images/IMDxxx/...``: per-case folders, 1-bit BMP lesion
    masks, and ``IMDxxx_roi/`` colour-class masks that are not the lesion."""
    top = root / "PH2Dataset"
    cases = top / "PH2 Dataset images"
    for i in range(n):
        case = f"IMD{2 + i:03d}"
        save_rgb(cases / case / f"{case}_Dermoscopic_Image" / f"{case}.bmp", photo(10 + i))
        write_bmp_1bit(cases / case / f"{case}_lesion" / f"{case}_lesion.bmp", rectangle(i))
        save_grey(cases / case / f"{case}_roi" / f"{case}_R1_Label4.bmp",
                  np.full((H, W), 255, np.uint8))
    return top


def make_busi(root: Path) -> Path:
    """``Dataset_BUSI_with_GT/<class>/<name>.png`` beside ``<name>_mask.png``;
    ``benign (2)`` has a second lesion in ``_mask_1.png``; ``normal (1)``'s mask is
    empty. Returns the top folder."""
    top = root / "Dataset_BUSI_with_GT"
    for k, (cls, name) in enumerate([("benign", "benign (1)"), ("benign", "benign (2)"),
                                     ("malignant", "malignant (1)"), ("normal", "normal (1)")]):
        grey_image = cv2.cvtColor(photo(20 + k), cv2.COLOR_RGB2GRAY)  # ultrasound: grey
        save_grey(top / cls / f"{name}.png", grey_image)
        save_grey(top / cls / f"{name}_mask.png",
                  rectangle(k) if cls != "normal" else np.zeros((H, W), np.uint8))
    second = np.zeros((H, W), np.uint8)
    second[45:55, 60:75] = 255                                  # 150 pixels, apart from the first
    save_grey(top / "benign" / "benign (2)_mask_1.png", second)
    return top
