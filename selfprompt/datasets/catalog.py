"""Known public segmentation sets, in the manner of torchvision's and MONAI's data-set
classes: each with its published layout, mask convention, licence, citation, and its
official download or, where a registration stands between the user and the files,
where to get them and how to point the kit at the extracted folder.

Why a registry: a data set is used *as it is published* (no renaming), so the kit
must know each set's shape; and whoever reports a number on it must know its terms
and whom to cite. Detection (:func:`detect`) looks at the given folder, then two
levels down (``Kvasir-SEG/``, ``CVC-ClinicDB/PNG/``, ``PH2Dataset/PH2 Dataset
images/``), so the folder a download extracts to can be given as it is.

A set the kit can download names its archives in the asset registry and what they
must extract to (:class:`Download`); :mod:`selfprompt.assets` fetches and checks them.
Each set's folder under ``data/`` is written here and nowhere else in the package.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..assets import AssetError, DatasetLayout, install_dataset, load_registry
from ..assets.registry import MANIFEST_DIR
from .layouts import DEFAULT_SUFFIXES, DatasetError, Layout


@dataclass(frozen=True)
class Download:
    """A set the kit downloads: its archives (``registry.txt`` names) and what they must
    extract to, checked before the folder gets its final name."""

    archives: tuple[str, ...]
    dirs: tuple[tuple[str, str, int], ...]  #: (sub-folder, file suffix, expected count)
    files: tuple[str, ...] = ()             #: single files that must be present
    manifest: str | None = None             #: sha256sum-style list under assets/manifests


@dataclass(frozen=True)
class PublicDataset:
    """One public data set: what it is, how it is laid out, its terms."""

    name: str            # registry name: command line, Makefile (DATASETS=), tables
    title: str
    modality: str
    size: str            # what the published set holds
    layout: Layout
    looks_like: Callable[[Path], bool]  # does this folder hold the set (its top)?
    folder: str          # its folder under the kit's data/
    masks: str           # mask convention as published
    licence: str
    citation: str
    homepage: str
    download: Download | None = None  # None: obtained by hand
    how_to_get: str = ""         # where to get it when there is no download

    @property
    def download_layout(self) -> DatasetLayout | None:
        """What a download of this set must extract to, under ``data/<folder>``."""
        d = self.download
        if d is None:
            return None
        return DatasetLayout(self.folder, d.dirs, d.files,
                             MANIFEST_DIR / d.manifest if d.manifest else None)

    def instructions(self, target: Path | None = None) -> str:
        """What to do when the set is not on this machine."""
        target = target or Path("data") / self.folder
        if self.download:
            return (f"fetch it with `python -m selfprompt fetch data --dataset {self.name}` "
                    f"(or `make data DATASET={self.name}`)")
        return (f"{self.title} cannot be downloaded by the kit: {self.how_to_get} Then "
                f"either extract it to {target}, or point the kit at the extracted folder "
                f"as it is: `python -m selfprompt check /path/to/it --dataset {self.name}`, "
                f"`make reproduce DATASETS={self.name} DATA_DIR_{self.name}=/path/to/it`.")


def _dirs(*names: str) -> Callable[[Path], bool]:
    return lambda base: all((base / n).is_dir() for n in names)


def _kvasir(base: Path) -> bool:
    # images/ + masks/ is Kvasir-SEG only where it says so; anything else is a folder of
    # pairs, named after itself in the results (not "kvasir")
    return _dirs("images", "masks")(base) and (
        (base / "kavsir_bboxes.json").exists() or base.name.lower() in ("kvasir-seg", "kvasir"))


def _ph2(base: Path) -> bool:
    return any(p.is_dir() for p in base.glob("*/*_Dermoscopic_Image"))


def _busi(base: Path) -> bool:
    return any(any((base / c).glob("*_mask.png")) for c in ("benign", "malignant")
               if (base / c).is_dir())


CATALOG: dict[str, PublicDataset] = {d.name: d for d in [
    PublicDataset(
        "isic2018", "ISIC-2018 task 1 (lesion boundary segmentation)", "dermoscopy",
        "2594 training images with masks",
        Layout("ISIC2018_Task1-2_Training_Input", "ISIC2018_Task1_Training_GroundTruth",
               "_segmentation", "isic2018"),
        _dirs("ISIC2018_Task1-2_Training_Input", "ISIC2018_Task1_Training_GroundTruth"),
        "isic2018", "PNG, 0/255, one per image (<id>_segmentation.png)",
        "CC BY-NC 4.0",
        "Codella N. et al., Skin Lesion Analysis Toward Melanoma Detection 2018: A Challenge "
        "Hosted by the International Skin Imaging Collaboration (ISIC), arXiv:1902.03368, "
        "2019; Tschandl P., Rosendahl C., Kittler H., The HAM10000 dataset, Sci. Data 5, "
        "180161, 2018",
        "https://challenge.isic-archive.com/data/#2018",
        download=Download(("isic2018-input", "isic2018-gt"),
                          (("ISIC2018_Task1-2_Training_Input", ".jpg", 2594),
                           ("ISIC2018_Task1_Training_GroundTruth", ".png", 2594)))),
    PublicDataset(
        "kvasir", "Kvasir-SEG", "colonoscopy (polyps)", "1000 images with masks",
        Layout("images", "masks", "", "kvasir"), _kvasir,
        "kvasir-seg", "JPEG, 0/255 up to compression noise, same names as the images",
        "free for research and education (terms on the homepage)",
        "Jha D. et al., Kvasir-SEG: A Segmented Polyp Dataset, MultiMedia Modeling (MMM) "
        "2020, LNCS 11962, pp. 451-462",
        "https://datasets.simula.no/kvasir-seg/",
        download=Download(("kvasir-seg",), (("images", ".jpg", 1000), ("masks", ".jpg", 1000)),
                          ("kavsir_bboxes.json",), "kvasir-seg.sha256")),
    PublicDataset(
        "cvc-clinicdb", "CVC-ClinicDB", "colonoscopy (polyps)", "612 images with masks",
        Layout("Original", "Ground Truth", "", "cvc-clinicdb"),
        _dirs("Original", "Ground Truth"),
        "cvc-clinicdb", "Ground Truth/<n>.tif (original release) or .png, same number as "
        "the image; RGB with anti-aliased grey edges (thresholded at > 127)",
        "research use only; cite the paper (terms on the homepage)",
        "Bernal J. et al., WM-DOVA maps for accurate polyp highlighting in colonoscopy: "
        "Validation vs. saliency maps from physicians, Comput. Med. Imaging Graph. 43, "
        "99-111, 2015",
        "https://polyp.grand-challenge.org/CVCClinicDB/",
        how_to_get="request it through https://polyp.grand-challenge.org/CVCClinicDB/ "
                   "(a registration); copies laid out as PNG/ and TIF/ are accepted too."),
    PublicDataset(
        "ph2", "PH2", "dermoscopy", "200 images with lesion masks",
        Layout("*/*_Dermoscopic_Image/*.bmp", "*/*_lesion/*.bmp",
               r"(?P<key>[^/]+)_lesion$", "ph2"),
        _ph2,
        "ph2", "IMDxxx/IMDxxx_lesion/IMDxxx_lesion.bmp, 1-bit BMP (the IMDxxx_roi/ "
        "colour-class masks are not the lesion and are not read)",
        "free for research and benchmarking (terms on the homepage); cite the paper",
        "Mendonca T. et al., PH2 - A dermoscopic image database for research and "
        "benchmarking, 35th IEEE EMBC, 2013, pp. 5437-5440",
        "https://www.fc.up.pt/addi/ph2%20database.html",
        how_to_get="request it through the form on https://www.fc.up.pt/addi/ph2%20"
                   "database.html (the archive holds `PH2 Dataset images/`)."),
    PublicDataset(
        "busi", "BUSI (breast ultrasound images)", "ultrasound (breast)",
        "780 images (437 benign, 210 malignant, 133 normal) with masks",
        Layout("*/*.png", "*/*_mask*.png", "_mask", "busi"),
        _busi,
        "busi", "<class>/<name>_mask.png beside the image, <name>_mask_1.png for a second "
        "lesion (united with the first; the count is recorded); normal images have an "
        "empty mask",
        "CC0 1.0 (as listed by its public mirrors); cite the paper",
        "Al-Dhabyani W., Gomaa M., Khaled H., Fahmy A., Dataset of breast ultrasound "
        "images, Data in Brief 28, 104863, 2020",
        "https://scholar.cu.edu.eg/?q=afahmy/pages/dataset",
        how_to_get="download Dataset_BUSI.zip from https://scholar.cu.edu.eg/?q=afahmy/"
                   "pages/dataset (it extracts to `Dataset_BUSI_with_GT/`)."),
]}

#: The generic layout: ``images/<stem>.<ext>`` with ``masks/<stem>[_segmentation|_mask].<ext>``.
FOLDER = Layout("images", "masks", DEFAULT_SUFFIXES, "folder")


def get(name: str) -> PublicDataset:
    if name not in CATALOG:
        raise DatasetError(f"unknown data set {name!r}: known are {', '.join(CATALOG)}; for "
                           "another set give its folder with --images/--masks (and --pair)")
    return CATALOG[name]


def _candidates(root: Path, depth: int = 2):
    """``root``, then its sub-folders, then theirs (sorted; hidden ones skipped); lazily,
    so that a set found at the top costs no listing of its (large) folders."""
    level = [root]
    for d in range(depth + 1):
        yield from level
        if d < depth:
            level = [c for p in level for c in sorted(p.iterdir())
                     if c.is_dir() and not c.name.startswith((".", "__MACOSX"))]


def detect(root: Path, only: str | None = None) -> tuple[Path, Layout]:
    """The folder under ``root`` (itself or up to two levels down) holding a known set,
    and that set's layout; ``only`` restricts the search to one registry name."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    entries = [get(only)] if only else list(CATALOG.values())
    for base in _candidates(root):
        for entry in entries:
            if entry.looks_like(base):
                return base, entry.layout
        if only is None and _dirs("images", "masks")(base):
            return base, FOLDER
    if only:
        raise DatasetError(f"{root}: does not look like {get(only).title} "
                           f"({get(only).layout.describe()}), nor does any folder up to two "
                           "levels below it")
    raise DatasetError(
        f"{root}: no known data-set layout found. Known: images/ + masks/ (Kvasir-SEG or any "
        f"folder of pairs), {', '.join(CATALOG)} (`python -m selfprompt datasets`). For "
        "another layout give --images and --masks (folders or patterns) and --pair. Fetch "
        "one with `make data DATASET=kvasir`.")


def fetch(name: str, data_dir: Path = Path("data"), mirror: str | None = None) -> Path:
    """Make data set ``name`` present under ``data_dir``: downloaded and checked where it
    has a download, else found where the instructions say to put it (AssetError if not)."""
    try:
        entry = get(name)
    except DatasetError as err:
        raise AssetError(str(err)) from None
    if entry.download:
        registry = load_registry()
        return install_dataset(entry.download_layout,
                               [registry[a] for a in entry.download.archives],
                               Path(data_dir), mirror)
    target = Path(data_dir) / entry.folder
    if target.is_dir():
        try:
            return detect(target, only=name)[0]
        except DatasetError as err:
            raise AssetError(f"{err}\n{entry.instructions(target)}") from None
    raise AssetError(f"{target}: missing. {entry.instructions(target)}")


def describe(entry: PublicDataset) -> str:
    """Several lines: what ``python -m selfprompt datasets NAME`` prints."""
    how = (f"download: python -m selfprompt fetch data --dataset {entry.name}"
           if entry.download else f"obtain: {entry.how_to_get}")
    return "\n".join([
        f"{entry.name}: {entry.title} ({entry.modality}; {entry.size})",
        f"  layout:   {entry.layout.describe()}",
        f"  masks:    {entry.masks}",
        f"  licence:  {entry.licence}",
        f"  cite:     {entry.citation}",
        f"  homepage: {entry.homepage}",
        f"  {how}",
        f"  folder:   data/{entry.folder} (or any folder: --dataset {entry.name}, "
        f"DATA_DIR_{entry.name}=...)"])


def downloads() -> dict[str, PublicDataset]:
    """The sets the kit can download, by name."""
    return {name: entry for name, entry in CATALOG.items() if entry.download}


def download_layouts() -> dict[str, DatasetLayout]:
    """Each data-set archive's registry name -> the layout it extracts to."""
    return {archive: entry.download_layout for entry in downloads().values()
            for archive in entry.download.archives}
