"""A folder of one's own images, no masks: which files they are and what each is called.

The files are found as :mod:`selfprompt.datasets.layouts` finds a data set's images, so
that ``predict --images`` and ``check --images`` read the same words the same way: a
folder (every image file directly inside it) or a glob pattern (``*``, ``?``, ``[...]``,
``**``); hidden files and ``__MACOSX/`` are ignored; the extensions are
:data:`~selfprompt.datasets.layouts.IMAGE_EXTENSIONS`. An image file named on its own
(a shell's expansion of ``*.jpg``) is taken as it is.

Each image's *name* is the shortest tail of its path below the folder or the pattern's
fixed part, without extension, that no other image shares (``unique_names``, as a data
set's sample names): its output files are named after it, so two images of one name
(``a.jpg`` and ``a.png``, or ``a.jpg`` in two folders given at once) are an error
naming both, not one mask silently overwriting the other. Images come sorted by name.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..datasets.layouts import IMAGE_EXTENSIONS, DatasetError, list_files, unique_names


@dataclass(frozen=True)
class ImageFile:
    """One image to segment: its name (outputs are named after it) and its file."""

    name: str
    path: Path


def list_images(specs: Sequence[str | Path]) -> list[ImageFile]:
    """The image files of ``specs`` (folders, glob patterns or files), sorted by name.

    Raises one :class:`~selfprompt.datasets.layouts.DatasetError` naming every problem:
    a missing folder, a pattern or folder without images, a file that is not an image,
    two images of one name.
    """
    if not specs:
        raise DatasetError("no images given: name a folder, a glob pattern or files")
    problems: list[str] = []
    stems: dict[Path, str] = {}
    for spec in map(str, specs):
        path = Path(spec).expanduser()
        if path.is_file():
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                problems.append(f"{path}: not an image file ({', '.join(IMAGE_EXTENSIONS)})")
            else:
                stems.setdefault(path, path.stem)
            continue
        try:
            base, found = list_files(Path("."), str(path))
        except DatasetError as err:
            problems.append(str(err))
            continue
        if not found:
            problems.append(f"{base}: no image files in this folder "
                            f"({', '.join(IMAGE_EXTENSIONS)})")
        for file, stem in found.items():
            stems.setdefault(file, stem)
    files = sorted(stems, key=lambda p: (stems[p], str(p)))
    names = unique_names([stems[p] for p in files])
    seen: dict[str, Path] = {}
    for name, file in zip(names, files):
        if name in seen:
            problems.append(f"{file}: same name {name!r} as {seen[name]}: their masks would "
                            "overwrite each other; rename one, or segment them into separate "
                            "--out folders")
        seen.setdefault(name, file)
    if problems:
        head = f"{len(problems)} problem(s) with the images must be fixed first:"
        raise DatasetError("\n  ".join([head] + problems))
    return sorted((ImageFile(n, p) for n, p in zip(names, files)), key=lambda f: f.name)
