"""Paired image/mask data sets: Kvasir-SEG, ISIC-2018, CVC-ClinicDB, PH2, BUSI, or any
folder of pairs, read as published.

A data set is a sorted list of :class:`Sample` (name, image path, mask path(s)). Sorting
makes every fold and every draw reproducible (the authors used unsorted ``os.listdir``,
defect D3). Where images and masks are and which mask is whose is a
:class:`~selfprompt.datasets.layouts.Layout` (folders or glob patterns, a pairing rule); the
public sets' layouts are in :mod:`selfprompt.datasets.catalog` and are detected.

Default rule for a generic folder: ``<root>/images/<stem>.<ext>`` pairs with
``<root>/masks/<stem><suffix>.<ext>`` where ``<suffix>`` is one of ``""``,
``"_segmentation"``, ``"_mask"`` and ``<ext>`` any of :data:`IMAGE_EXTENSIONS`.

Mask conventions (:func:`mask_grey`, then ``grey > threshold``), so that a mask is read
the same whatever tool wrote it:

* 0/255 grey (Kvasir-SEG, ISIC): as is. JPEG noise and anti-aliased grey edges are
  cut at :data:`MASK_THRESHOLD` (127, the midpoint: an edge pixel more than half
  covered is lesion); ``check`` counts the grey pixels (:data:`GREY_BAND`).
* a mask with only 0 and one other value (0/1 labels, 0/38, 0/128 ...): that value
  is lesion, whatever it is (it becomes 255).
* RGB: grey as OpenCV computes it (``BGR2GRAY``, as the authors read masks), except
  for colour-coded masks (channels differing by more than :data:`COLOUR_SPREAD`
  somewhere, e.g. red on black), where the brightest channel is taken, since grey
  would put pure red (76) below the threshold.
* palette PNG and 1-bit BMP: expanded to their colours by the decoder, then as above.
* 16-bit (or deeper) masks: scaled by their *own* maximum, not by 65535, because
  16-bit label files hold 0/1, 0/255 or 0/65535 alike (an empty one stays empty).
* several masks of one image (BUSI's ``_mask_1``): united; ``check`` records the count.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .layouts import (  # noqa: F401  (re-exported: the data-set API in one place)
    DEFAULT_SUFFIXES, IMAGE_EXTENSIONS, STEM_PREFIX, DatasetError, Layout, PairRule, parse_pair)

log = logging.getLogger(__name__)

MASK_SUFFIXES = DEFAULT_SUFFIXES
#: Lesion where the 8-bit grey mask value exceeds this (the default of ``Dataset.mask``).
MASK_THRESHOLD = 127
#: Grey mask values ``lo <= v <= hi`` are neither background nor lesion as stored:
#: anti-aliased edges or compression noise; counted by ``check``, cut at the threshold.
GREY_BAND = (16, 239)
#: A colour mask is colour-coded where some pixel's channels differ by more than this.
COLOUR_SPREAD = 64


@dataclass(frozen=True)
class Sample:
    """One image and its mask file(s); ``extra_masks``: further lesions (united)."""

    name: str
    image_path: Path
    mask_path: Path
    extra_masks: tuple[Path, ...] = ()

    @property
    def mask_paths(self) -> tuple[Path, ...]:
        return (self.mask_path,) + tuple(self.extra_masks)


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

    def mask(self, i: int, threshold: int = MASK_THRESHOLD) -> np.ndarray:
        """Binary ``uint8 (H, W)`` in {0, 1}; several mask files are united."""
        sample = self.samples[i]
        mask = read_mask(sample.mask_path, threshold)
        for path in sample.extra_masks:
            other = read_mask(path, threshold)
            if other.shape != mask.shape:
                raise DatasetError(f"{path}: size {other.shape[1]}x{other.shape[0]} differs "
                                   f"from {sample.mask_path.name}'s {mask.shape[1]}x"
                                   f"{mask.shape[0]}")
            mask |= other
        return mask


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
    """Mask as 8-bit grey, 255 = lesion as stored; the conventions are in the module
    docstring. For 8-bit grey masks (Kvasir-SEG) this is exactly the authors' reading
    (colour -> BGR2GRAY)."""
    raw = _decode(data, path, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    if raw.dtype != np.uint8 and np.issubdtype(raw.dtype, np.integer):
        top = int(raw.max())  # 16-bit labels: 0/1, 0/255, 0/65535 alike
        bgr = ((raw.astype(np.uint64) * 255) // top).astype(np.uint8) if top else \
            np.zeros(raw.shape, np.uint8)
    else:
        bgr = _to_uint8(raw)
    # per-pixel channel extremes: OpenCV's element-wise max/min over the three planes is
    # an order of magnitude faster than NumPy's reduction along a length-3 last axis
    # (same values)
    planes = cv2.split(bgr)
    top = cv2.max(cv2.max(planes[0], planes[1]), planes[2])
    spread = cv2.subtract(top, cv2.min(cv2.min(planes[0], planes[1]), planes[2]))
    if int(spread.max()) > COLOUR_SPREAD:  # colour-coded (red on black): brightest channel
        grey = top
    else:
        grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    if grey.max() == 1:
        grey = grey * np.uint8(255)
    else:
        lesion = grey[grey > 0]
        if lesion.size and lesion.min() == lesion.max() != 255:  # 0 and one label value
            grey = np.where(grey > 0, np.uint8(255), np.uint8(0))
    return grey


def read_mask(path: Path, threshold: int = MASK_THRESHOLD) -> np.ndarray:
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
def detect_layout(root: Path) -> tuple[Path, str]:
    """Find the layout of ``root``; also looks two levels down (``Kvasir-SEG/``,
    ``CVC-ClinicDB/PNG/``). Returns (folder, layout name)."""
    from .catalog import detect

    base, layout = detect(Path(root))
    return base, layout.name


def open_dataset(root: str | Path, layout: str | Layout = "auto", *, images: str | None = None,
                 masks: str | None = None, pair: PairRule | None = None) -> Dataset:
    """Pair images with masks under ``root`` and return them sorted by name.

    ``layout``: ``"auto"`` (detected), ``"folder"`` (``images/`` + ``masks/``), a name of
    :data:`selfprompt.datasets.catalog.CATALOG` (``kvasir``, ``isic2018``, ``cvc-clinicdb``,
    ``ph2``, ``busi``; its folder may be up to two levels below ``root``) or a
    :class:`~selfprompt.datasets.layouts.Layout`. ``images``/``masks``/``pair`` declare a layout
    instead (folders or glob patterns relative to ``root``; a suffix, a regular
    expression with ``(?P<key>...)`` or a callable); ``images`` and ``masks`` without
    ``pair`` pair each mask with the image whose file stem begins its own
    (:data:`~selfprompt.datasets.layouts.STEM_PREFIX`). A registry ``layout`` given with
    them names the result and supplies what is not given.

    Only pairing is checked here (cheap); :func:`validate` reads every file. Unpaired
    files are an error listing all of them, not a silent skip, because a renamed mask
    silently dropped changes every fold.
    """
    from . import catalog

    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"{root}: data folder does not exist. Fetch one with "
                           "`make data DATASET=kvasir`, or set SELFPROMPT_DATA_DIR.")
    declared = any(x is not None for x in (images, masks, pair))
    if isinstance(layout, Layout):
        spec = layout
    elif declared:
        named = layout not in ("auto", "folder")
        base = catalog.get(layout).layout if named else catalog.FOLDER
        if pair is None:  # both places given and no rule: names pair by their stems
            pair = STEM_PREFIX if images and masks and not named else base.pair
        spec = Layout(images if images is not None else base.images,
                      masks if masks is not None else base.masks, pair, base.name)
    elif layout == "auto":
        root, spec = catalog.detect(root)
    elif layout == "folder":
        spec = catalog.FOLDER
    else:
        try:
            entry = catalog.get(layout)
        except DatasetError:
            raise DatasetError(f"unknown layout {layout!r}; use auto, folder, "
                               f"{', '.join(catalog.CATALOG)}") from None
        try:
            root = catalog.detect(root, only=layout)[0]
        except DatasetError:
            pass  # the layout's own errors (which folder is missing) say more
        spec = entry.layout
    pairs = spec.find(root)
    samples = [Sample(p.name, p.image, p.masks[0], p.masks[1:]) for p in pairs]
    return Dataset(root, spec.name, samples)


# --------------------------------------------------------------------------- validation
def _report(root: Path, problems: list[str]) -> str:
    head = f"{root}: {len(problems)} problem(s) must be fixed before any work:"
    return "\n  ".join([head] + problems)


def _read_checked(path: Path, problems: list[str]) -> bytes | None:
    try:
        data = path.read_bytes()
    except OSError as err:
        problems.append(f"{path}: cannot be read ({err.strerror})")
        return None
    if not data:
        problems.append(f"{path}: empty file")
        return None
    if is_truncated(data, path):
        problems.append(f"{path}: truncated (file ends before the image does)")
        return None
    return data


def check_sample(sample: Sample, max_grey_fraction: float = 0.05) -> tuple[list[str], dict]:
    """Read one pair fully; return (problems, facts). Facts feed the data notebook and
    ``check``'s summary: size, foreground fraction (of the united masks), number of
    mask files, and grey pixels (:data:`GREY_BAND`: anti-aliased edges, JPEG noise)."""
    problems: list[str] = []
    size, union, grey_pixels = None, None, 0
    data = _read_checked(sample.image_path, problems)
    if data is not None:
        try:
            size = decode_image(data, sample.image_path).shape[:2]
        except DatasetError as err:
            problems.append(str(err))
    for path in sample.mask_paths:
        data = _read_checked(path, problems)
        if data is None:
            continue
        try:
            grey = mask_grey(data, path)
        except DatasetError as err:
            problems.append(str(err))
            continue
        # Masks are two-valued up to JPEG noise near edges: many mid-grey pixels means
        # this is not a binary mask (a photo, a soft map, a label image).
        mid = np.count_nonzero((grey > 63) & (grey < 192)) / grey.size
        if mid > max_grey_fraction:
            problems.append(f"{path}: not a two-valued mask ({mid:.0%} of pixels are "
                            "mid-grey; expected 0 = background, 255 = lesion)")
        grey_pixels += int(np.count_nonzero((grey >= GREY_BAND[0]) & (grey <= GREY_BAND[1])))
        if size is not None and grey.shape != size:
            problems.append(f"{path}: mask size {grey.shape[1]}x{grey.shape[0]} differs from "
                            f"its image's {size[1]}x{size[0]}")
        elif union is None:
            union = grey > MASK_THRESHOLD
        elif union.shape == grey.shape:
            union |= grey > MASK_THRESHOLD
    facts = {"name": sample.name, "height": size[0] if size else 0,
             "width": size[1] if size else 0,
             "foreground": None if union is None else float(np.count_nonzero(union) / union.size),
             "masks": len(sample.mask_paths), "grey": grey_pixels}
    return problems, facts


def _listing_key(dataset: Dataset) -> str:
    """Hash of paths, sizes and modification times: changes whenever any file does."""
    h = hashlib.sha256()
    for s in dataset.samples:
        for p in (s.image_path,) + s.mask_paths:
            st = p.stat()
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def summarise_check(facts: list[dict]) -> list[str]:
    """What ``check`` says beyond OK: united masks, grey edge pixels, empty masks."""
    lines = []
    several = [f for f in facts if f.get("masks", 1) > 1]
    if several:
        lines.append(f"{len(several)} image(s) have several lesion masks, united into one "
                     f"({sum(f['masks'] for f in several)} mask files): "
                     + ", ".join(f["name"] for f in several[:5])
                     + (" ..." if len(several) > 5 else ""))
    grey = [f for f in facts if f.get("grey", 0)]
    if grey:
        total = sum(f["height"] * f["width"] for f in facts) or 1
        lines.append(f"{sum(f['grey'] for f in grey)} grey mask pixels (values "
                     f"{GREY_BAND[0]}-{GREY_BAND[1]}: anti-aliased edges or compression noise; "
                     f"{sum(f['grey'] for f in grey) / total:.2%} of all) in {len(grey)} "
                     f"mask(s), cut at > {MASK_THRESHOLD}")
    empty = [f["name"] for f in facts if f["foreground"] == 0]
    if empty:
        lines.append(f"{len(empty)} mask(s) are empty (no lesion): "
                     + ", ".join(empty[:5]) + (" ..." if len(empty) > 5 else ""))
    return lines


def validate(dataset: Dataset, record_dir: Path | None = None, progress: bool = True) -> list[dict]:
    """Read every file; raise one :class:`DatasetError` listing every problem.

    Returns per-image facts (size, foreground fraction, mask files, grey pixels). With
    ``record_dir`` a passing check is remembered (keyed by the listing's paths, sizes and
    times) so a rerun over unchanged files is instant; the data folder itself is never
    written to.
    """
    record = None
    if record_dir is not None:
        # v2: facts gained "masks" and "grey"; older records are checked again
        record = Path(record_dir) / f"check-v2-{_listing_key(dataset)[:20]}.json"
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
        from ..utils.io import atomic_write_text

        atomic_write_text(record, json.dumps(facts))
    return facts
