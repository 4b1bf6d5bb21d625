"""Declared layouts: where a data set's images and masks are, and which mask is whose.

Why: public segmentation sets are published in many shapes (``Original/`` + ``Ground
Truth/``, one folder per case, masks beside their images with ``_mask`` and
``_mask_1`` ...). A :class:`Layout` describes such a set as it is published, so that no
file has to be renamed or moved:

``images`` / ``masks``
    A folder (every image file directly inside it) or a glob pattern (``*``, ``?``,
    ``[...]``, ``**``), both relative to the data root. A file that the ``masks``
    pattern matches is never an image (BUSI keeps both in one folder). Files and
    folders whose name starts with ``.`` and ``__MACOSX/`` folders are ignored.
    Each file's *relative stem* is its path below the pattern's fixed leading folders,
    without extension, ``/``-separated: ``benign/benign (1)`` for ``*/*.png``.

``pair`` (the rule that maps an image to its mask)
    * a **suffix** (``"_mask"``) or a tuple of suffixes tried in order: the mask of
      image ``x`` is ``x<suffix>``; after a non-empty suffix, ``x<suffix>_<n>`` are
      further masks of the same image (BUSI's second lesion, ``_mask_1``).
    * a **regular expression** with a named group ``key`` (``(?P<key>IMD\\d+)_lesion``):
      searched in every relative stem; where it matches, the file's key is the group,
      elsewhere (images, usually) its whole relative stem.
    * a **callable** (API only): ``pair(image_path) -> mask path(s)``, relative to the
      root or absolute.

    With a suffix or a regular expression, images and masks pair by equal keys. When
    no image has a mask's exact key, a unique image whose key *ends* with it (in whole
    path components) is taken: the mask ``IMD002`` finds the image
    ``IMD002/IMD002_Dermoscopic_Image/IMD002``. Several masks of one image are allowed
    (and later united); two images that would take the same mask are an error.

Sample names are the shortest tail of each image's relative stem (in whole path
components) that is unique in the data set: the file stem where stems are unique
(Kvasir-SEG, ISIC, CVC-ClinicDB, PH2, BUSI), ``<folder>/<stem>`` where they are not.
Pairs come sorted by the images' relative stems: for a flat folder, name order.

Every problem (unpaired files, ambiguous keys, a pattern matching nothing) is
collected and raised at once as one :class:`DatasetError` naming each file: a silently
dropped pair would change every fold.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Sequence, Union

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
#: The generic rule: ``x`` pairs with ``x``, ``x_segmentation`` or ``x_mask`` (in this order).
DEFAULT_SUFFIXES = ("", "_segmentation", "_mask")
_GLOB = re.compile(r"[*?\[]")
_IGNORED_FOLDERS = ("__MACOSX",)

PairRule = Union[str, Sequence[str], Callable[[Path], object]]


class DatasetError(ValueError):
    """A data set that cannot be used as it is; the message lists every offending file."""


class Pair(NamedTuple):
    name: str
    image: Path
    masks: tuple[Path, ...]


@dataclass(frozen=True)
class Layout:
    """Where images and masks are (folders or glob patterns under the root) and how
    they pair (see the module docstring). ``name`` is the layout's name in results."""

    images: str = "images"
    masks: str | None = "masks"
    pair: PairRule = DEFAULT_SUFFIXES
    name: str = "folder"

    def describe(self) -> str:
        rule = self.pair if not callable(self.pair) else getattr(self.pair, "__name__", "callable")
        return f"images {self.images!r}, masks {self.masks!r}, pair {rule!r}"

    def find(self, root: Path) -> list[Pair]:
        """Pair every image under ``root`` with its mask(s); raise one DatasetError."""
        return find_pairs(Path(root), self)


# --------------------------------------------------------------------------- files
def _split(spec: str) -> tuple[str, str | None]:
    """(fixed leading folders, glob rest or None for a plain folder)."""
    parts = Path(spec).parts
    for i, part in enumerate(parts):
        if _GLOB.search(part):
            return str(Path(*parts[:i])) if i else ".", str(Path(*parts[i:]))
    return spec, None


def _is_image(path: Path, base: Path) -> bool:
    rel = path.relative_to(base).parts
    return (path.suffix.lower() in IMAGE_EXTENSIONS
            and not any(p.startswith(".") or p in _IGNORED_FOLDERS for p in rel)
            and path.is_file())


def list_files(root: Path, spec: str) -> tuple[Path, dict[Path, str]]:
    """Image files of ``spec`` under ``root``: (base folder, {path: relative stem}).

    Raises DatasetError for a missing folder or a pattern that matches no image (an
    empty plain folder is left to the caller, which knows whether the other is empty).
    """
    fixed, pattern = _split(spec)
    base = root / fixed
    if pattern is None:
        if not base.is_dir():
            raise DatasetError(f"{base}: folder missing")
        paths = [p for p in base.iterdir() if _is_image(p, base)]
    else:
        if not base.is_dir():
            raise DatasetError(f"{base}: folder missing (from pattern {spec!r})")
        paths = [p for p in base.glob(pattern) if _is_image(p, base)]
    if not paths and pattern is not None:  # an empty folder: said with its partner's state
        raise DatasetError(f"{root}: pattern {spec!r} matches no image file "
                           f"({', '.join(IMAGE_EXTENSIONS)})")
    return base, {p: p.relative_to(base).with_suffix("").as_posix() for p in sorted(paths)}


# --------------------------------------------------------------------------- rules
def _suffix_keys(suffixes: Sequence[str]) -> Callable[[str], list[str]]:
    numbered = [re.compile(rf"(.+){re.escape(s)}_\d+") for s in suffixes if s]

    def keys(rel: str) -> list[str]:
        out = [rel[:len(rel) - len(s)] for s in suffixes
               if rel.endswith(s) and len(rel) > len(s)]
        return out + [m.group(1) for m in (r.fullmatch(rel) for r in numbered) if m]
    return keys


def _regex(pattern: str) -> re.Pattern:
    try:
        regex = re.compile(pattern)
    except re.error as err:
        raise DatasetError(f"pairing rule {pattern!r} is not a regular expression: {err}")
    if "key" not in regex.groupindex:
        raise DatasetError(f"pairing rule {pattern!r} has no named group (?P<key>...)")
    return regex


_REGEX_SYNTAX = re.compile(r"[()\[\]\\^$*+?|{}]")


def is_regex(rule: object) -> bool:
    """A string rule with regular-expression syntax in it; file suffixes have none."""
    return isinstance(rule, str) and bool(_REGEX_SYNTAX.search(rule))


def parse_pair(text: str | None) -> PairRule:
    """The command line's ``--pair``: a regular expression (it must hold ``(?P<key>...)``),
    else a comma-separated list of suffixes (``_mask`` or ``,_mask``); ``None``: default."""
    if text is None:
        return DEFAULT_SUFFIXES
    if is_regex(text):
        return text
    return tuple(text.split(",")) if "," in text else text


def _tails(key: str) -> list[str]:
    parts = key.split("/")
    return ["/".join(parts[i:]) for i in range(1, len(parts))]


# --------------------------------------------------------------------------- pairing
def unique_names(stems: list[str]) -> list[str]:
    """Shortest tail (whole components) of each stem that no other stem shares."""
    parts = [tuple(s.split("/")) for s in stems]
    counts = Counter(p[-t:] for p in parts for t in range(1, len(p) + 1))
    return ["/".join(next(p[-t:] for t in range(1, len(p) + 1)
                          if t == len(p) or counts[p[-t:]] == 1)) for p in parts]


def _duplicates(files: dict[Path, str], problems: list[str]) -> dict[Path, str]:
    seen: dict[str, Path] = {}
    kept = {}
    for path, stem in files.items():
        if stem in seen:
            problems.append(f"{path}: same name as {seen[stem].name}; keep one of them")
            continue
        seen[stem] = path
        kept[path] = stem
    return kept


def find_pairs(root: Path, layout: Layout) -> list[Pair]:
    problems: list[str] = []
    mask_files: dict[Path, str] = {}
    mask_base = root
    if layout.masks is None and not callable(layout.pair):
        raise DatasetError("a layout without a masks folder or pattern needs a callable "
                           "pairing rule (image path -> mask path)")
    if layout.masks is not None:
        mask_base, mask_files = list_files(root, layout.masks)
    img_base, image_files = list_files(root, layout.images)
    if not image_files and not mask_files:
        raise DatasetError(f"{root}: empty data set (no image files in {img_base} or "
                           f"{mask_base})")
    image_files = {p: s for p, s in image_files.items() if p not in mask_files}
    image_files = _duplicates(image_files, problems)
    mask_files = _duplicates(mask_files, problems)
    if callable(layout.pair):
        found = _pair_by_callable(root, layout, image_files, mask_files, problems)
    else:
        found = _pair_by_key(layout, img_base, mask_base, image_files, mask_files, problems)
    if problems:
        head = f"{root}: {len(problems)} problem(s) must be fixed before any work:"
        raise DatasetError("\n  ".join([head] + problems))
    names = unique_names([image_files[p] for p in found])
    return [Pair(n, p, tuple(sorted(found[p], key=lambda m: mask_files.get(m, str(m)))))
            for n, p in zip(names, found)]


def _pair_by_key(layout, img_base, mask_base, image_files, mask_files, problems):
    rule = layout.pair
    if is_regex(rule):
        regex = _regex(rule)

        def image_key(rel):
            m = regex.search(rel)
            return m.group("key") if m else rel

        def mask_keys(rel):
            m = regex.search(rel)
            return [m.group("key")] if m else []
        looked = f"a file of {layout.masks!r} whose key (group 'key' of {rule!r}) is"
    else:
        suffixes = (rule,) if isinstance(rule, str) else tuple(rule)
        image_key, mask_keys = (lambda rel: rel), _suffix_keys(suffixes)
        looked = None
    by_key: dict[str, Path] = {}
    for path, stem in image_files.items():
        key = image_key(stem)
        if key in by_key:
            problems.append(f"{path}: maps to the same mask as {by_key[key]} (key {key!r}); "
                            "rename one, or declare a pairing rule that tells them apart")
            continue
        by_key[key] = path
    tails: dict[str, list[str]] = {}
    for key in by_key:
        for tail in _tails(key):
            tails.setdefault(tail, []).append(key)
    found: dict[Path, list[Path]] = {p: [] for p in by_key.values()}
    mask_problems: list[str] = []  # listed after the images' own, as the files are read
    for path, stem in mask_files.items():
        candidates = mask_keys(stem)
        if not candidates:
            mask_problems.append(f"{path}: mask does not match the pairing rule {rule!r}")
            continue
        key = next((c for c in candidates if c in by_key), None)
        if key is None:
            near = [k for c in candidates for k in tails.get(c, [])]
            near += [t for c in candidates for t in _tails(c) if t in by_key]
            if len(set(near)) > 1:
                which = ", ".join(str(by_key[k]) for k in sorted(set(near)))
                mask_problems.append(f"{path}: could be the mask of any of {which}")
                continue
            key = near[0] if near else None
        if key is None:
            mask_problems.append(f"{path}: mask with no matching image in {img_base}")
            continue
        found[by_key[key]].append(path)
    for path, masks in found.items():
        if not masks:
            stem = image_key(image_files[path])
            if looked:
                what = f"{looked} {stem!r}"
            else:
                alternatives = (suffixes[0] if len(suffixes) == 1
                                else f"{{{','.join(suffixes)}}}")
                what = f"{mask_base}/{stem}{alternatives}.<ext>"
            problems.append(f"{path}: no mask (looked for {what})")
    problems += mask_problems
    return {p: m for p, m in sorted(found.items(), key=lambda x: image_files[x[0]]) if m}


def _pair_by_callable(root, layout, image_files, mask_files, problems):
    found: dict[Path, list[Path]] = {}
    owner: dict[Path, Path] = {}
    for path in sorted(image_files, key=image_files.get):
        try:
            result = layout.pair(path)
        except Exception as err:  # a user's function: say which image broke it
            problems.append(f"{path}: pairing rule raised {type(err).__name__}: {err}")
            continue
        items = [result] if isinstance(result, (str, Path)) else list(result or [])
        masks = [p if p.is_absolute() else root / p for p in map(Path, items)]
        if not masks:
            problems.append(f"{path}: no mask (the pairing rule gave none)")
        for mask in masks:
            if not mask.is_file():
                problems.append(f"{path}: no mask (the pairing rule gives {mask}, which does "
                                "not exist)")
            elif mask in owner:
                problems.append(f"{path}: maps to the same mask {mask} as {owner[mask]}")
            else:
                owner[mask] = path
                found.setdefault(path, []).append(mask)
    problems += [f"{m}: mask with no matching image (no image's rule gives it)"
                 for m in mask_files if m not in owner]
    return found
