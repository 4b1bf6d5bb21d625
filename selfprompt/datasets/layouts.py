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
    * :data:`STEM_PREFIX`, no rule (what ``images`` and ``masks`` given without ``pair``
      mean): a mask pairs with the image whose file stem is the longest prefix of the
      mask's stem ending at a separator (``IMD002`` for ``IMD002_lesion``, ``x`` for
      ``x_segmentation`` or ``x``, never ``1`` for ``12``), folders aside; where images in
      several folders share that stem, the one whose folder is nearest the mask's wins.
      An image's masks must share one suffix (``_mask``, ``_mask_1`` ... are one).
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
    ``IMD002/IMD002_Dermoscopic_Image/IMD002``; with a suffix, last, the image with the
    key's file stem in the nearest folder (so ``_lesion`` pairs PH2's case folders).
    Several masks of one image are allowed
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


class _StemPrefix:
    """The rule-free pairing (see the module docstring); one instance, :data:`STEM_PREFIX`."""

    def __repr__(self) -> str:
        return "stem prefix"


#: No rule: a mask pairs with the image whose file stem is the longest prefix of its own.
STEM_PREFIX = _StemPrefix()
PairRule = Union[str, Sequence[str], Callable[[Path], object], _StemPrefix]
# A suffix begins at a separator: `x` is a prefix of `x_mask` and `x-gt`, not of `x1`.
_SEPARATOR = re.compile(r"[\W_]")
_NUMBERED = re.compile(r"_\d+$")


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
        rule = (self.pair if not callable(self.pair) or self.pair is STEM_PREFIX
                else getattr(self.pair, "__name__", "callable"))
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
    elif layout.pair is STEM_PREFIX:
        found = _pair_by_stem_prefix(layout, image_files, mask_files, problems)
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
    by_stem = _by_file_stem(by_key.values())
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
        if key is None and not is_regex(rule):  # the same file stem in the nearest folder
            image, others = _nearest(path, [p for c in candidates
                                            for p in by_stem.get(c.rsplit("/", 1)[-1], [])])
            if others:
                mask_problems.append(f"{path}: could be the mask of any of "
                                     + ", ".join(map(str, others)))
                continue
            key = image_key(image_files[image]) if image is not None else None
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


def _by_file_stem(paths) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for path in paths:
        out.setdefault(path.stem, []).append(path)
    return out


def _nearest(mask: Path, images: list[Path]) -> tuple[Path | None, list[Path]]:
    """(the image whose folder shares the longest path with the mask's, []), or
    (None, the tied images) when several are equally near; (None, []) for none."""
    if len(images) <= 1:
        return (images[0] if images else None), []

    def shared(image: Path) -> int:
        n = 0
        for a, b in zip(mask.parent.parts, image.parent.parts):
            if a != b:
                break
            n += 1
        return n
    best = max(map(shared, images))
    nearest = sorted(p for p in images if shared(p) == best)
    return (nearest[0], []) if len(nearest) == 1 else (None, nearest)


def stem_prefixes(stem: str) -> list[str]:
    """The prefixes of a file stem that end where a suffix may begin, longest first:
    ``a_b_mask`` -> ``a_b_mask``, ``a_b``, ``a``."""
    cuts = sorted({m.start() for m in _SEPARATOR.finditer(stem) if m.start() > 0},
                  reverse=True)
    return [stem] + [stem[:i] for i in cuts]


def mask_suffix(image: Path, mask: Path) -> str | None:
    """What a mask's stem adds to its image's (``_lesion``; ``_mask_1`` counts as
    ``_mask``), or None where the mask's stem does not start with the image's."""
    if not mask.stem.startswith(image.stem):
        return None
    rest = mask.stem[len(image.stem):]
    base = _NUMBERED.sub("", rest)
    return base or rest  # `x_1` beside `x` is a suffix of its own, not `x` + a number


def suffixes_found(pairs) -> Counter:
    """How the masks of ``(image, masks)`` pairs are named: {suffix: number of masks}
    (``None``: a mask named otherwise, by a regular expression or a callable)."""
    return Counter(mask_suffix(image, m) for image, masks in pairs for m in masks)


def describe_suffixes(pairs) -> str:
    """``check``'s line on how masks are named: ``masks are named image + '_lesion' (200)``."""
    found = suffixes_found(pairs)
    named = [f"{s!r} ({n})" for s, n in sorted(found.items(), key=lambda x: (-x[1], str(x[0])))
             if s is not None]
    line = "masks are named image + " + ", ".join(named) if named else ""
    if found.get(None):
        line += ("; " if line else "") + f"{found[None]} named otherwise (by the pairing rule)"
    return line


def _pair_by_stem_prefix(layout, image_files, mask_files, problems):
    by_stem = _by_file_stem(image_files)
    found: dict[Path, list[Path]] = {p: [] for p in image_files}
    mask_problems: list[str] = []
    for path in mask_files:
        image, tied = None, []
        for prefix in stem_prefixes(path.stem):
            if prefix in by_stem:
                image, tied = _nearest(path, by_stem[prefix])
                break
        if tied:
            mask_problems.append(f"{path}: could be the mask of any of "
                                 + ", ".join(map(str, tied)))
        elif image is None:
            mask_problems.append(f"{path}: mask with no matching image (no image of "
                                 f"{layout.images!r} is named {path.stem!r} or a start of it)")
        else:
            found[image].append(path)
    unpaired = [p for p, masks in found.items() if not masks]
    for path in unpaired:
        problems.append(f"{path}: no mask (no file of {layout.masks!r} is named "
                        f"{path.stem!r} or {path.stem!r} + a suffix such as '_mask')")
    for image, masks in found.items():
        kinds = sorted({repr(mask_suffix(image, m)) for m in masks})
        if len(kinds) > 1:
            problems.append(f"{image}: masks with different suffixes ({', '.join(kinds)}: "
                            + ", ".join(m.name for m in masks)
                            + "); give --pair SUFFIX to say which are masks")
    problems += mask_problems
    paired = {m for masks in found.values() for m in masks}
    hint = _evident_rule({p: image_files[p] for p in unpaired},
                         {m: s for m, s in mask_files.items() if m not in paired})
    if hint:
        problems.append(hint)
    return {p: m for p, m in sorted(found.items(), key=lambda x: image_files[x[0]]) if m}


def _evident_rule(images: dict[Path, str], masks: dict[Path, str]) -> str | None:
    """A --pair rule that would pair every unpaired image (relative stems) with exactly
    one unpaired mask, where one is evident: the names' numbers (``img_007`` with
    ``seg007``), or a head common to the masks' names (``mask_x`` with ``x``)."""
    if not images or len(images) != len(masks):
        return None
    rules = [r"(?P<key>\d+)"]
    heads = {m.stem[:len(m.stem) - len(i.stem)] for m in masks for i in images
             if m.stem.endswith(i.stem) and len(m.stem) > len(i.stem)}
    if len(heads) == 1:
        rules.append(re.escape(heads.pop()) + "(?P<key>.+)")
    for rule in rules:
        regex = re.compile(rule)
        image_keys = []
        for stem in images.values():  # as _pair_by_key reads a regular expression
            m = regex.search(stem)
            image_keys.append(m.group("key") if m else stem)
        mask_keys = [m.group("key") if m else None for m in map(regex.search, masks.values())]
        if None in mask_keys or len(set(image_keys)) < len(image_keys):
            continue
        owners = [[k for k in image_keys if k == key or k.endswith("/" + key)]
                  for key in mask_keys]
        if all(len(o) == 1 for o in owners) and len({o[0] for o in owners}) == len(images):
            return (f"every unpaired image would pair with one unpaired mask under "
                    f"--pair '{rule}' (a regular expression: the group 'key' is compared)")
    return None


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
