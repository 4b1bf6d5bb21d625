"""What the notebooks share: CI-sized defaults, one-call setup, and a fast asset pre-check.

Why a module: every notebook opens with the same few steps (find a data set, load a
backbone, make sure the embeddings are cached). Written once here they stay identical
across notebooks and testable; the notebooks keep to explaining and plotting.

Data root, in order: the ``data_root`` parameter; a synthetic set when
``SELFPROMPT_NBVAL`` is set (so that nbval's checked outputs are the same on every
machine, with or without ``../shared``); ``$SELFPROMPT_DATA_DIR``; the kit's
``data/<data set>``; ``../shared/data/<data set>`` beside the clone; otherwise a small
synthetic set in the Kvasir layout, generated once into ``.cache/``.

``python -m selfprompt preflight`` is what ``make reproduce`` runs first: it stops at
once, naming the missing file, its official URL and the offline route, when an asset is
missing and its server cannot be reached (instead of retrying downloads).
"""
from __future__ import annotations

import os
import socket
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..utils.paths import KIT_ROOT as REPO
from ..utils.paths import cache_folder

if TYPE_CHECKING:  # annotations only: the notebook helpers import these lazily
    from ..datasets.reader import Dataset
    from ..embeddings import DatasetEmbeddings, EmbeddingStats
    from ..models.backbone import Backbone

#: Set (to anything but "" or "0") by the nbval run: synthetic data, fresh output folders.
NBVAL_ENV = "SELFPROMPT_NBVAL"
#: A declared layout for the notebooks when their parameters give none: ``make reproduce
#: IMAGES=... MASKS=... PAIR=...`` sets these for notebook 05, whose parameters it keeps.
LAYOUT_ENV = {"images": "SELFPROMPT_IMAGES", "masks": "SELFPROMPT_MASKS",
              "pair": "SELFPROMPT_PAIR"}
SYNTHETIC_N = 20


def nbval_mode() -> bool:
    """True under the notebook tests: every default must then be machine-independent.

    Set explicitly with ``SELFPROMPT_NBVAL=1``; also detected from pytest's own
    ``PYTEST_CURRENT_TEST``, which nbval's kernel inherits (``<file>.ipynb::Cell n``), so
    that ``pytest notebooks`` needs no extra set-up.
    """
    if os.environ.get(NBVAL_ENV, "") not in ("", "0"):
        return True
    return ".ipynb::" in os.environ.get("PYTEST_CURRENT_TEST", "")


def synthetic_root(n: int = SYNTHETIC_N, seed: int = 0) -> Path:
    """A synthetic data set in the Kvasir layout, generated on first use (deterministic)."""
    from ..datasets.synthetic import make_synthetic

    root = REPO / ".cache" / f"synthetic-n{n}-seed{seed}"
    if not (root / "masks" / f"synthetic_{n - 1:03d}.jpg").exists():
        make_synthetic(root, n=n, seed=seed)
    return root


def resolve_data_root(data_root: str | Path | None = None, dataset: str = "kvasir") -> Path:
    """The folder a notebook reads (see the module docstring for the order)."""
    if data_root not in (None, "", "auto"):
        return Path(data_root).expanduser()
    if nbval_mode():
        return synthetic_root()
    if os.environ.get("SELFPROMPT_DATA_DIR"):
        return Path(os.environ["SELFPROMPT_DATA_DIR"]).expanduser()
    from ..datasets.catalog import CATALOG

    folder = CATALOG[dataset].folder if dataset in CATALOG else dataset
    for candidate in (REPO / "data" / folder, REPO.parent / "shared" / "data" / folder):
        if candidate.is_dir():
            return candidate
    return synthetic_root()


def resolve_out_dir(out_dir: str | Path | None, dataset: str, backbone: str,
                    kind: str = "runs") -> Path:
    """Where fold results go: ``reports/runs/notebooks/<data set>/<backbone>`` beside
    ``make reproduce``'s (``kind="ablations"``: ``reports/ablations/runs/notebooks/...``,
    beside ``make ablations``', out of the main report).

    Under nbval a fresh temporary folder, so that a stale result is never skipped into
    a checked output.
    """
    if out_dir not in (None, "", "auto"):
        return Path(out_dir)
    if nbval_mode():
        return Path(tempfile.mkdtemp(prefix="selfprompt-nb-"))
    base = REPO / "reports" / ("runs" if kind == "runs" else f"{kind}/runs")
    return base / "notebooks" / dataset / backbone


@dataclass
class Setup:
    """What a notebook works with, built by :func:`setup`."""

    dataset: Dataset
    backbone: Backbone
    embeddings: DatasetEmbeddings
    #: what the embedding pass did: images encoded, and reused from the cache
    stats: EmbeddingStats
    #: the data set's name in tables
    name: str
    synthetic: bool


def declared_layout(images=None, masks=None, pair=None) -> dict:
    """``images``/``masks``/``pair`` as given, else from ``$SELFPROMPT_IMAGES`` ... (not
    under the notebook tests); ``pair`` as text is read like the command line's
    ``--pair``. Empty when nothing is declared: the layout is then detected."""
    from ..datasets.layouts import parse_pair

    given = {"images": images, "masks": masks, "pair": pair}
    if not nbval_mode():
        given = {k: v if v not in (None, "") else (os.environ.get(LAYOUT_ENV[k]) or None)
                 for k, v in given.items()}
    if isinstance(given["pair"], str):
        given["pair"] = parse_pair(given["pair"])
    return {k: v for k, v in given.items() if v is not None}


def open_data(data_root=None, dataset: str = "kvasir", limit: int | None = None,
              images=None, masks=None, pair=None):
    """Open and validate the data set (first ``limit`` images in name order).

    The layout is detected unless ``images``/``masks``/``pair`` declare it (see
    :func:`declared_layout`); with a declared layout a registry ``dataset`` supplies
    what is not given and names the layout."""
    from ..datasets.catalog import CATALOG
    from ..datasets.reader import open_dataset, validate

    root = resolve_data_root(data_root, dataset)
    declared = declared_layout(images, masks, pair)
    if declared:
        data = open_dataset(root, dataset if dataset in CATALOG else "auto", **declared)
    else:
        data = open_dataset(root)
    data = data.subset(limit)
    # the command line's record folder: a check passed once is not read again
    facts = validate(data, record_dir=cache_folder() / "checks", progress=False)
    return data, facts


def setup(data_root=None, dataset: str = "kvasir", backbone: str = "tiny", checkpoint=None,
          device=None, limit: int | None = None, cache=None, images=None, masks=None,
          pair=None) -> Setup:
    """Data set, backbone and cached embeddings in one call (each image encoded once);
    ``images``/``masks``/``pair``: a declared layout (:func:`open_data`). A downloadable
    checkpoint that is not here yet (``backbone = "vit_t"``) is fetched and checked first,
    so a notebook switches backbone in one parameter."""
    import warnings

    from ..embeddings import embed_dataset
    from ..models.backbone import load_backbone
    from ..models.registry import get_spec
    from ..models.weights import default_checkpoint, fetch_checkpoint

    data, _ = open_data(data_root, dataset, limit, images, masks, pair)
    spec = get_spec(backbone)
    if (checkpoint is None and spec.weights and not spec.bundled
            and not default_checkpoint(backbone, REPO / "checkpoints").is_file()):
        fetch_checkpoint(backbone, REPO / "checkpoints")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny warning is said in the notebook's text
        model = load_backbone(backbone, checkpoint, device, checkpoints_dir=REPO / "checkpoints")
    embeddings, stats = embed_dataset(data, model, cache_folder(cache), progress=False)
    synthetic = bool(len(data)) and data.samples[0].name.startswith("synthetic_")
    return Setup(data, model, embeddings, stats, "synthetic" if synthetic else dataset, synthetic)


def check_close(what: str, value: float, expected: float | None, tol: float) -> None:
    """Print a fitted number; under the notebook tests, check it against its expectation.

    Why: a fitted number (a Dice, a mean) depends in its last digits on the CPU's
    arithmetic (BLAS kernels, SIMD width, threads: measured on OpenBLAS Prescott, Haswell
    and SkylakeX, torch's default and AVX-512 kernels, single images moved by up to 0.08
    Dice under the ``paper`` preset's ill-posed fit, means of a few images by up to
    0.03), so a cell whose output nbval compares must not print it raw. Under the tests
    (synthetic data, :func:`nbval_mode`) the cell prints only the expectation with an
    explicit tolerance, the same text on every machine, and fails with the actual value
    when it is off. Everywhere else it prints the value and nothing of the tests: the
    expectation belongs to the tests' synthetic set, not to what a student is looking at.
    Checked cells are tagged ``nbval-check-output`` and their source starts hidden.

    ``expected=None`` records: the value is printed as ``RECORD what = value`` so that
    ``make notebook-outputs`` shows what to write in; a committed notebook has none
    (``tests/test_notebooks.py`` holds this).
    """
    if expected is None:
        print(f"RECORD {what} = {value:.4f}")
        return
    if not nbval_mode():
        print(f"{what}: {value:.3f}")
        return
    if not abs(float(value) - expected) <= tol:  # NaN fails too
        raise AssertionError(f"{what} is {value:.4f}, expected {expected} ± {tol}: the method "
                             "computes something else than when this was recorded")
    print(f"{what}: {expected} ± {tol} ok")


def show_table(markdown: str) -> None:
    """Show a Markdown table (``to_markdown``'s) as a table in a notebook.

    Why: printed, a table is pipe text to decipher. Displayed with the ``text/markdown``
    type, JupyterLab, VS Code, nbconvert (``make book``) and GitHub draw it as a table;
    its ``text/plain`` copy is the same Markdown, which a console or a plain-text reader
    shows as before. Outside IPython it is printed.
    """
    try:
        from IPython.display import display
    except ImportError:  # a plain Python: the text is the table
        print(markdown)
        return
    display({"text/markdown": markdown, "text/plain": markdown}, raw=True)


def compare_settings(exp, fold: int, name: str, settings) -> dict:
    """One test image under several ``(preset, k)`` settings, for a side-by-side lesson:
    ``{"preset, k = k": (truth, segmentation, {variant: Dice})}``, each fitted on the
    fold's own k shots (:meth:`~selfprompt.evaluation.protocol.Experiment.case`)."""
    from ..metrics import dice

    out = {}
    for preset, k in settings:
        _, truth, seg = exp.case(preset, k, fold, name)
        out[f"{preset}, k = {k}"] = (truth, seg, {v: dice(m, truth)
                                                  for v, m in seg.masks.items()})
    return out


def lesion_counts(dataset, threshold: int = 127, images=None) -> dict[str, int]:
    """True lesions per image (8-connected components of the mask): a point prompt
    can only point at one of them. ``images``: only these names (a fold's test images
    rather than every mask of the data set: notebook 05 runs once per fold)."""
    import cv2

    wanted = None if images is None else set(images)
    return {s.name: cv2.connectedComponents(dataset.mask(i, threshold), connectivity=8)[0] - 1
            for i, s in enumerate(dataset.samples) if wanted is None or s.name in wanted}


def describe(s: Setup) -> str:
    """One line saying what the notebook runs on (data, size, backbone)."""
    kind = "SYNTHETIC stand-in" if s.synthetic else "real"
    return (f"{s.name}: {len(s.dataset)} images ({kind}) | backbone {s.backbone.model_type}"
            f" | embeddings {s.stats.encoded} encoded, {s.stats.reused} from cache")


def data_summary(facts: list[dict], lesions: dict[str, int] | None = None) -> dict:
    """Sizes and mask statistics of a checked data set, rounded for printing."""
    import numpy as np

    w = np.array([f["width"] for f in facts])
    h = np.array([f["height"] for f in facts])
    fg = np.array([f["foreground"] or 0.0 for f in facts])
    out = {"images": len(facts), "width": (int(w.min()), int(w.max())),
           "height": (int(h.min()), int(h.max())), "square": int(np.sum(w == h)),
           "lesion_area_mean": round(float(fg.mean()), 3),
           "lesion_area_range": (round(float(fg.min()), 3), round(float(fg.max()), 3)),
           "empty_masks": int(np.sum(fg == 0))}
    if lesions is not None:
        out["several_lesions"] = sum(1 for n in lesions.values() if n > 1)
    return out


def damaged_copy(dataset, folder: str | Path, n: int = 3) -> Path:
    """A copy of ``n`` pairs with one image cut short and one mask removed: what the
    data-set check is for (it must name both files, not fail on the first)."""
    import shutil

    folder = Path(folder)
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for s in dataset.samples[:n]:
        shutil.copy(s.image_path, folder / "images" / s.image_path.name)
        shutil.copy(s.mask_path, folder / "masks" / s.mask_path.name)
    first = folder / "images" / dataset.samples[0].image_path.name
    first.write_bytes(first.read_bytes()[: first.stat().st_size // 2])
    (folder / "masks" / dataset.samples[n - 1].mask_path.name).unlink()
    return folder


def demo_sweep(s: Setup, out_dir: str | Path, ks=("2", "4"), folds=(0, 1),
               presets=("paper", "corrected"), seed: int = 42,
               variants=("linear", "point_box")) -> Path:
    """A few folds on the notebook's small data set, for a report without ``make reproduce``.

    Only ``linear`` and ``point_box`` by default: one SAM decode per image instead of three
    keeps the notebook tests within CI's time.
    """
    from ..evaluation.protocol import Experiment

    exp = Experiment(s.dataset, s.embeddings, s.backbone, Path(out_dir), dataset_name=s.name,
                     seed=seed, variants=tuple(variants), progress=False)
    for preset in presets:
        for k in ks:
            for fold in folds:
                exp.run_fold(preset, k, fold)
    return Path(out_dir)


# --------------------------------------------------------------------------- preflight
def _reachable(url: str, timeout: float = 3.0) -> bool:
    """Can a TCP connection to the URL's host be opened (DNS + connect, seconds)?"""
    parts = urllib.parse.urlparse(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _on_index(asset: str, timeout: float = 3.0) -> bool:
    """Does a package index this machine reaches list the archive that carries ``asset``
    (``registry.txt``'s ``index`` lines), so that fetching it will work all the same?"""
    from ..assets import AssetError
    from ..assets.index import find_archive, index_urls
    from ..assets.registry import index_sources

    source = index_sources().get(asset)
    if source is None:
        return False
    try:
        find_archive(source.project, source.archive.filename, index_urls(), timeout)
        return True
    except AssetError:
        return False


def _offline_message(filename: str, url: str, target: Path, extra: str = "") -> str:
    return (f"missing: {filename} (needed at {target}), and its official source {url} cannot "
            f"be reached from here.\nOffline route: download {filename} on a machine with "
            f"network, put it in a folder and run `make reproduce MIRROR=/path/to/folder` (or "
            f"set SELFPROMPT_MIRROR=/path/to/folder); what comes from it is checked all the same."
            f"{extra}")


def missing_assets(model: str, dataset: str, data_dir: Path | None = None,
                   checkpoints_dir: Path = REPO / "checkpoints", mirror: str | None = None,
                   timeout: float = 3.0) -> list[str]:
    """Messages for assets that are neither present nor obtainable; empty: go ahead.

    Present means: the checkpoint file exists, and the data folder opens as a data set.
    With a mirror the fetch step decides (it checks what the mirror holds).
    """
    from ..assets import CheckpointError, load_registry
    from ..datasets.catalog import CATALOG, downloads
    from ..models.registry import with_weights
    from ..models.weights import default_checkpoint

    mirror = mirror if mirror is not None else (os.environ.get("SELFPROMPT_MIRROR") or None)
    registry, problems = load_registry(), []
    checkpoints, fetched = with_weights(), downloads()
    if model in checkpoints and registry[checkpoints[model]].packaged:
        try:  # bundled with an installed package: present, or the package is missing
            default_checkpoint(model)
        except CheckpointError as err:
            problems.append(str(err))
    elif model in checkpoints:
        asset = registry[checkpoints[model]]
        target = Path(checkpoints_dir) / asset.filename
        if (not target.is_file() and mirror is None and not _reachable(asset.url, timeout)
                and not _on_index(asset.name, timeout)):
            problems.append(_offline_message(asset.filename, asset.url, target))
    if dataset in fetched:
        entry = fetched[dataset]
        folder = Path(data_dir) if data_dir else REPO / "data" / entry.folder
        if not folder.is_dir() and mirror is None:
            for asset in (registry[a] for a in entry.download.archives):
                if not _reachable(asset.url, timeout):
                    problems.append(_offline_message(
                        asset.filename, asset.url, folder,
                        "\nAn already extracted copy: SELFPROMPT_DATA_DIR=/path/to/"
                        f"{entry.folder} make reproduce."))
    elif dataset in CATALOG:  # obtained by hand (a registration): only present or not
        entry = CATALOG[dataset]
        folder = Path(data_dir) if data_dir else REPO / "data" / entry.folder
        if not folder.is_dir():
            problems.append(f"{dataset}: {folder} is missing. {entry.instructions(folder)}")
    elif data_dir is not None and not Path(data_dir).is_dir():
        problems.append(f"{dataset}: not a known data set ({', '.join(CATALOG)}) and "
                        f"{data_dir} is not a folder: give its folder "
                        f"(make reproduce DATASETS={dataset} DATA_DIR_{dataset}=/path/to/it, "
                        f"with IMAGES_{dataset}=... MASKS_{dataset}=... PAIR_{dataset}=... "
                        "when its layout is not detected)")
    return problems


# --------------------------------------------------------------- notebook 10: own images
def unlabelled_copy(dataset, folder: str | Path) -> Path:
    """The data set's images alone, copied into ``folder``: what a user starts with (a
    folder of images, no mask). The masks stay where they are, unread, until
    :func:`label_from_truth` plays the part of the person labelling. The folder is made
    afresh: images of an earlier run with another ``limit`` must not stay in it."""
    import shutil

    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for s in dataset.samples:
        shutil.copy(s.image_path, folder / s.image_path.name)
    return folder


def label_from_truth(dataset, chosen: list[str | Path], folder: str | Path) -> Path:
    """Stand-in for "label them in any tool": the ``chosen`` images (paths, as
    ``suggest`` lists them) with the data set's own masks, in ``folder/images`` and
    ``folder/masks`` (the layout ``predict --labelled`` reads). Only these masks are
    copied; the model sees no other."""
    import shutil

    folder = Path(folder)
    by_file = {s.image_path.name: s for s in dataset.samples}
    for sub in ("images", "masks"):  # a fresh folder: an earlier run's picks must not stay
        shutil.rmtree(folder / sub, ignore_errors=True)
        (folder / sub).mkdir(parents=True)
    for path in map(Path, chosen):
        s = by_file[path.name]
        shutil.copy(path, folder / "images" / path.name)
        shutil.copy(s.mask_path, folder / "masks" / s.mask_path.name)
    return folder


def score_against_truth(rows: list[dict], out: str | Path, dataset,
                        threshold: int = 127) -> list[dict]:
    """``predict``'s table (as :func:`selfprompt.own.read_table` reads it, least
    confident first) with each written mask's Dice against the data set's true mask:
    how well the quality score ranked the images, which a user without masks cannot
    see. Rows keep the table's order."""
    import cv2

    from ..metrics import dice

    index = {s.image_path.name: i for i, s in enumerate(dataset.samples)}
    scored = []
    for row in rows:
        mask = cv2.imread(str(Path(out) / row["mask"]), cv2.IMREAD_GRAYSCALE) > 127
        truth = dataset.mask(index[Path(row["image"]).name], threshold)
        scored.append(dict(row, dice=float(dice(mask, truth))))
    return scored


def review_curve(scored: list[dict], bad: float = 0.5) -> list[tuple[int, int]]:
    """For a reviewer who checks the images least confident first: after ``n`` images
    checked, how many of the bad masks (Dice below ``bad``) were found, for every ``n``.
    A score that ranks well finds them early; a useless one finds them at the pace of a
    random order (``n`` x the share of bad masks)."""
    found, curve = 0, []
    for n, row in enumerate(scored, start=1):
        found += row["dice"] < bad
        curve.append((n, found))
    return curve
