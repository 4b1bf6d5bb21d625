"""Paired image/mask data sets: Kvasir-SEG, ISIC-2018 task 1, or any folder of pairs.

A data set is a sorted list of :class:`Sample` (name, image path, mask path). Sorting
by name makes every fold and every draw reproducible (the authors used unsorted
``os.listdir``, defect D3).

Name-matching rule for a generic folder: ``<root>/images/<stem>.<ext>`` pairs with
``<root>/masks/<stem><suffix>.<ext>`` where ``<suffix>`` is one of ``""``,
``"_segmentation"``, ``"_mask"`` and ``<ext>`` any of :data:`IMAGE_EXTENSIONS`.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
MASK_SUFFIXES = ("", "_segmentation", "_mask")
#: Known layouts: (image folder, mask folder, mask suffix).
LAYOUTS = {
    "kvasir": ("images", "masks", ""),
    "isic2018": ("ISIC2018_Task1-2_Training_Input", "ISIC2018_Task1_Training_GroundTruth",
                 "_segmentation"),
}


class DatasetError(ValueError):
    """A data set that cannot be used as it is; the message lists every offending file."""


@dataclass(frozen=True)
class Sample:
    name: str
    image_path: Path
    mask_path: Path


@dataclass
class Dataset:
    """A validated-on-demand list of image/mask pairs."""

    root: Path
    layout: str
    samples: list[Sample] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.samples]

    def subset(self, n: int | None) -> "Dataset":
        """The first ``n`` samples in name order (CI-sized runs); ``None`` keeps all."""
        if n is None or n >= len(self.samples):
            return self
        return Dataset(self.root, self.layout, self.samples[:n])

    def image(self, i: int) -> np.ndarray:
        return read_image(self.samples[i].image_path)

    def mask(self, i: int, threshold: int = 127) -> np.ndarray:
        return read_mask(self.samples[i].mask_path, threshold)


# --------------------------------------------------------------------------- reading
def _decode(data: bytes, path: Path, flags: int) -> np.ndarray:
    array = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if array is None:
        raise DatasetError(f"{path}: not a readable image")
    return array


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """16-bit (or other integer depth) to 8-bit by scaling the full range, not clipping."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return (array.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        return np.clip(array * (255.0 if array.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    raise DatasetError(f"unsupported pixel type {array.dtype}")


def decode_image(data: bytes, path: Path = Path("<bytes>")) -> np.ndarray:
    """Decode image bytes to RGB ``uint8 (H, W, 3)``. Grey is repeated, alpha dropped,
    16-bit scaled to 8-bit. Same pixels as the authors' ``cv2.imread`` + BGR->RGB for
    ordinary 8-bit colour files."""
    bgr = _decode(data, path, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    return cv2.cvtColor(_to_uint8(bgr), cv2.COLOR_BGR2RGB)


def read_image(path: Path) -> np.ndarray:
    return decode_image(Path(path).read_bytes(), Path(path))


def mask_grey(data: bytes, path: Path = Path("<bytes>")) -> np.ndarray:
    """Mask as 8-bit grey, as the authors read it (colour -> BGR2GRAY). A mask stored as
    0/1 labels is scaled to 0/255 so that it survives thresholding."""
    bgr = _to_uint8(_decode(data, path, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH))
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    if grey.max() == 1:
        grey = grey * np.uint8(255)
    return grey


def read_mask(path: Path, threshold: int = 127) -> np.ndarray:
    """Binary mask ``uint8 (H, W)`` in {0, 1}: 1 where grey > ``threshold``."""
    grey = mask_grey(Path(path).read_bytes(), Path(path))
    return (grey > threshold).astype(np.uint8)


def is_truncated(data: bytes, path: Path | None = None) -> bool:
    """True for a JPEG without its end marker or a PNG without its IEND chunk.

    OpenCV decodes a truncated JPEG without raising (it prints a warning and fills the
    rest with grey), so the bytes themselves must be checked.
    """
    if data.startswith(b"\xff\xd8"):  # JPEG, whatever the file is named
        return not data.rstrip(b"\x00").endswith(b"\xff\xd9")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return b"IEND" not in data[-16:]
    return False  # other formats (or not an image at all): left to the decoder


# --------------------------------------------------------------------------- finding pairs
def _images_in(folder: Path, problems: list[str]) -> dict[str, Path]:
    """Image files by stem; two files with one stem (``x.jpg``, ``x.png``) are a problem."""
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."):
            if p.stem in found:
                problems.append(f"{p}: same name as {found[p.stem].name}; keep one of them")
            found.setdefault(p.stem, p)
    return found


def detect_layout(root: Path) -> tuple[Path, str]:
    """Find the layout of ``root``; also looks one level down (``Kvasir-SEG/``, ``isic2018/``)."""
    candidates = [root] + sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for base in candidates:
        for name, (img, msk, _) in LAYOUTS.items():
            if (base / img).is_dir() and (base / msk).is_dir():
                # images/ + masks/ is Kvasir-SEG only where it says so; anything else is
                # a folder of pairs, named after itself in the results (not "kvasir")
                is_kvasir = ((base / "kavsir_bboxes.json").exists()
                             or base.name.lower() in ("kvasir-seg", "kvasir"))
                return base, ("folder" if name == "kvasir" and not is_kvasir else name)
    raise DatasetError(
        f"{root}: no known data-set layout found. Expected either images/ + masks/ "
        f"(Kvasir-SEG or any folder of pairs) or {LAYOUTS['isic2018'][0]}/ + "
        f"{LAYOUTS['isic2018'][1]}/ (ISIC-2018). Fetch one with `make data DATASET=kvasir`.")


def open_dataset(root: str | Path, layout: str = "auto") -> Dataset:
    """Pair images with masks under ``root`` and return them sorted by name.

    Only pairing is checked here (cheap); :func:`validate` reads every file. Unpaired
    files are an error listing all of them, not a silent skip, because a renamed mask
    silently dropped changes every fold.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"{root}: data folder does not exist. Fetch one with "
                           "`make data DATASET=kvasir`, or set SELFPROMPT_DATA_DIR.")
    if layout == "auto":
        root, layout = detect_layout(root)
    if layout == "folder":
        img_dir, msk_dir, suffixes = root / "images", root / "masks", MASK_SUFFIXES
    elif layout in LAYOUTS:
        img, msk, suffix = LAYOUTS[layout]
        img_dir, msk_dir, suffixes = root / img, root / msk, (suffix,)
    else:
        raise DatasetError(f"unknown layout {layout!r}; use auto, folder, {', '.join(LAYOUTS)}")
    for folder in (img_dir, msk_dir):
        if not folder.is_dir():
            raise DatasetError(f"{folder}: folder missing for layout {layout!r}")
    problems: list[str] = []
    images, masks = _images_in(img_dir, problems), _images_in(msk_dir, problems)
    if not images and not masks:
        raise DatasetError(f"{root}: empty data set (no image files in {img_dir} or {msk_dir})")

    samples, used = [], set()
    for stem, img_path in images.items():
        match = next((stem + s for s in suffixes if stem + s in masks), None)
        if match is None:
            problems.append(f"{img_path}: no mask (looked for {msk_dir}/{stem}"
                            f"{{{','.join(suffixes)}}}.<ext>)")
            continue
        used.add(match)
        samples.append(Sample(stem, img_path, masks[match]))
    problems += [f"{path}: mask with no matching image in {img_dir}"
                 for stem, path in masks.items() if stem not in used]
    if problems:
        raise DatasetError(_report(root, problems))
    return Dataset(root, layout, samples)


# --------------------------------------------------------------------------- validation
def _report(root: Path, problems: list[str]) -> str:
    head = f"{root}: {len(problems)} problem(s) must be fixed before any work:"
    return "\n  ".join([head] + problems)


def check_sample(sample: Sample, max_grey_fraction: float = 0.05) -> tuple[list[str], dict]:
    """Read one pair fully; return (problems, facts). Facts feed the data notebook."""
    problems: list[str] = []
    shapes = {}
    for kind, path in (("image", sample.image_path), ("mask", sample.mask_path)):
        try:
            data = path.read_bytes()
        except OSError as err:
            problems.append(f"{path}: cannot be read ({err.strerror})")
            continue
        if not data:
            problems.append(f"{path}: empty file")
            continue
        if is_truncated(data, path):
            problems.append(f"{path}: truncated (file ends before the image does)")
            continue
        try:
            if kind == "image":
                shapes[kind] = decode_image(data, path).shape[:2]
            else:
                grey = mask_grey(data, path)
                shapes[kind] = grey.shape
                # Masks are two-valued up to JPEG noise near edges: many mid-grey pixels
                # means this is not a binary mask (a photo, a soft map, a label image).
                mid = np.count_nonzero((grey > 63) & (grey < 192)) / grey.size
                if mid > max_grey_fraction:
                    problems.append(f"{path}: not a two-valued mask ({mid:.0%} of pixels are "
                                    "mid-grey; expected 0 = background, 255 = lesion)")
                shapes["foreground"] = float(np.count_nonzero(grey > 127) / grey.size)
        except DatasetError as err:
            problems.append(str(err))
    if "image" in shapes and "mask" in shapes and shapes["image"] != shapes["mask"]:
        problems.append(f"{sample.mask_path}: mask size {shapes['mask'][1]}x{shapes['mask'][0]} "
                        f"differs from its image's {shapes['image'][1]}x{shapes['image'][0]}")
    facts = {"name": sample.name, "height": shapes.get("image", (0, 0))[0],
             "width": shapes.get("image", (0, 0))[1], "foreground": shapes.get("foreground")}
    return problems, facts


def _listing_key(dataset: Dataset) -> str:
    """Hash of paths, sizes and modification times: changes whenever any file does."""
    h = hashlib.sha256()
    for s in dataset.samples:
        for p in (s.image_path, s.mask_path):
            st = p.stat()
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def validate(dataset: Dataset, record_dir: Path | None = None, progress: bool = True) -> list[dict]:
    """Read every file; raise one :class:`DatasetError` listing every problem.

    Returns per-image facts (size, foreground fraction). With ``record_dir`` a passing
    check is remembered (keyed by the listing's paths, sizes and times) so a rerun over
    unchanged files is instant; the data folder itself is never written to.
    """
    record = None
    if record_dir is not None:
        record = Path(record_dir) / f"check-{_listing_key(dataset)[:20]}.json"
        if record.exists():
            return json.loads(record.read_text())
    from tqdm.auto import tqdm

    problems, facts = [], []
    for sample in tqdm(dataset.samples, desc="checking data", disable=not progress, unit="pair"):
        p, f = check_sample(sample)
        problems += p
        facts.append(f)
    if problems:
        raise DatasetError(_report(dataset.root, problems))
    empty = [f["name"] for f in facts if f["foreground"] == 0]
    if empty:
        log.warning("%d mask(s) are empty (no lesion): %s", len(empty), ", ".join(empty[:5]))
    if record is not None:
        from .io import atomic_write_text

        atomic_write_text(record, json.dumps(facts))
    return facts
