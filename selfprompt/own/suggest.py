"""Which of one's own images to label first: the medoids of their embeddings.

Before any mask exists, SAM's embedding of each image is all there is. The ``medoids``
shot strategy of :mod:`selfprompt.shots` (k-means on the pooled embedding vectors, then
per cluster the image nearest its centre) picks k images that each stand for a group of
similar ones, in proportion to how common the group is. They are suggested because
they cost nothing and cover the folder's common kinds of image; whether they score
higher than a random draw is what the reference's ``beyond`` study measures, paired
over folds and fold seeds (docs/reference.md gives its verdict at each k).

Here it runs on a folder of images: each is encoded (or read from the cache) one at a
time and only its pooled vector (256 numbers) is kept, so a folder of thousands costs
megabytes.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..datasets.layouts import DatasetError
from ..embeddings import EmbeddingCache
from ..shots import parse_k, pooled_vector, select_shots
from ..utils.io import atomic_write_text
from .images import ImageFile
from .predict import embed_bytes, read_rgb


@dataclass
class Suggestion:
    """The images to label first (in name order) and the ones that could not be read."""

    chosen: list[ImageFile]
    failed: list[str]


def suggest(images: Sequence[ImageFile], k: int, *, cache: EmbeddingCache, encoder,
            seed: int = 42, progress: bool = True,
            say: Callable[[str], None] = print) -> Suggestion:
    """The ``k`` images to label first among ``images``: ``medoids`` shots on their
    pooled embeddings (:func:`selfprompt.shots.select_shots`), in name order. An
    unreadable image is one line through ``say`` and is left out."""
    from tqdm.auto import tqdm

    k = int(parse_k(k)) if str(k) != "all" else len(images)
    usable: list[ImageFile] = []
    vectors: dict[int, np.ndarray] = {}
    failed: list[str] = []
    for image in tqdm(images, desc="embedding", unit="img", disable=not progress):
        try:
            data, rgb = read_rgb(image.path)
        except DatasetError as err:
            say(f"skipped: {err}")
            failed.append(str(err))
            continue
        vectors[len(usable)] = pooled_vector(embed_bytes(data, rgb, cache, encoder))
        usable.append(image)
    if k > len(usable):
        raise ValueError(f"--k {k} asks for more images than the {len(usable)} readable ones")
    # the pooled vectors are handed over as the strategy's cache: it reads no embedding
    chosen = select_shots(None, range(len(usable)), k, "medoids", seed, cache=vectors)
    return Suggestion([usable[i] for i in sorted(chosen)], failed)


def write_list(path: Path, images: Sequence[ImageFile]) -> Path:
    """One image path per line, atomically."""
    atomic_write_text(Path(path), "".join(f"{i.path}\n" for i in images))
    return Path(path)
