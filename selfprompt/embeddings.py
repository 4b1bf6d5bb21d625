"""Embeddings computed once per image and backbone, kept on disk, never served stale.

Layout: ``<root>/<model type>-<model hash[:16]>-<dtype>[-<numerics>]/<key[:2]>/<key>.npy``
where ``key`` is the sha256 of the image file's bytes, the model hash the sha256 of
the checkpoint file, and ``numerics`` names an encoder that does not compute exactly
as ``set_image`` (``bf16``, ``fused``). A changed image gets a new key, a changed
checkpoint or encoder arithmetic a new folder, so a stale embedding cannot be looked
up. Each entry is written atomically: an interrupted run leaves complete entries and
nothing else, and a rerun encodes only what is missing. Entries are plain ``.npy`` so
that they are memory-mapped on reading: a sweep holds only the embeddings it is using,
whatever the data set's size.

Embeddings do not depend on k, fold, preset or prompt, so one encoder pass per image
serves a whole sweep (the authors' flow encodes each image about 12 times, D6).
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .models.backbone import Backbone
from .datasets.reader import Dataset, decode_image
from .models.encoder import ImageEncoder
from .utils.io import atomic_save_npy, atomic_write_text, check_writable
from .utils.paths import cache_folder

log = logging.getLogger(__name__)

SHAPE = (256, 64, 64)
DTYPES = ("float16", "float32")


class CacheError(RuntimeError):
    """The cache folder cannot be used: another model's or format's, not writable, or
    its disk is full; the message names the folder and what to do."""


class EncodingError(RuntimeError):
    """Encoding stopped for want of a resource (GPU memory); what was written is kept."""


#: bytes one cached embedding takes on disk beyond its values (the .npy header)
NPY_HEADER = 128
WRITABLE_CACHE = "point --cache (or $SELFPROMPT_CACHE) at a writable folder"


def image_key(data: bytes) -> str:
    """Identity of an image: the sha256 of its file's bytes."""
    return hashlib.sha256(data).hexdigest()


def cache_dir_name(model_type: str, model_hash: str, dtype: str = "float16",
                   numerics: str = "") -> str:
    """The cache folder of one checkpoint, storage dtype and encoder arithmetic."""
    return f"{model_type}-{model_hash[:16]}-{dtype}" + (f"-{numerics}" if numerics else "")


class EmbeddingCache:
    """One folder of embeddings for one checkpoint and storage dtype."""

    def __init__(self, root: str | Path, model_type: str, model_hash: str,
                 dtype: str = "float16", numerics: str = "") -> None:
        if dtype not in DTYPES:
            raise ValueError(f"cache dtype must be one of {DTYPES}, not {dtype!r}")
        self.model_type, self.model_hash, self.dtype = model_type, model_hash, dtype
        self.numerics = numerics
        self.dir = Path(root) / cache_dir_name(model_type, model_hash, dtype, numerics)
        meta = {"model_type": model_type, "model_hash": model_hash, "dtype": dtype,
                "numerics": numerics or "exact", "shape": list(SHAPE), "format": 1}
        meta_path = self.dir / "meta.json"
        if not meta_path.exists():
            check_writable(self.dir, "the embedding cache", WRITABLE_CACHE)
        if meta_path.exists():
            found = json.loads(meta_path.read_text())
            found.setdefault("numerics", "exact")  # a folder whose meta has no "numerics"
            diff = {k: (found.get(k), v) for k, v in meta.items() if found.get(k) != v}
            if diff:
                raise CacheError(f"{self.dir} holds embeddings of another model or format "
                                 f"({diff}); point --cache elsewhere or delete that folder")
        else:
            atomic_write_text(meta_path, json.dumps({**meta, "selfprompt_version": __version__},
                                                    indent=1))

    @classmethod
    def for_backbone(cls, root: str | Path, backbone: Backbone, dtype: str = "float16",
                     encoder: ImageEncoder | None = None) -> "EmbeddingCache":
        """The cache folder for ``backbone``'s embeddings as ``encoder`` computes them
        (default: ``ImageEncoder(backbone)``, the encoder ``embed_dataset`` uses)."""
        numerics = (encoder or ImageEncoder(backbone)).numerics
        return cls(root, backbone.model_type, backbone.model_hash, dtype, numerics)

    def path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npy"

    def is_valid(self, key: str) -> bool:
        """Entry exists, has the right shape and dtype and is complete (not truncated)."""
        try:
            arr = np.load(self.path(key), mmap_mode="r")
        except (OSError, ValueError):
            return False
        return arr.shape == SHAPE and arr.dtype == np.dtype(self.dtype)

    def load(self, key: str) -> np.ndarray:
        """The embedding as a read-only memory map of the stored dtype."""
        return self._checked(key, np.load(self.path(key), mmap_mode="r"))

    def read(self, key: str) -> np.ndarray:
        """The embedding read whole into a new array of the stored dtype.

        For passes that use every value of many entries, again and again (a streamed
        fit reads all k shots on each solver step): mapping a 2 MB entry and faulting
        its pages in costs about twice a plain read, and the map is dropped right after
        anyway."""
        try:
            arr = np.load(self.path(key))
        except ValueError as err:          # a truncated entry: numpy cannot fill the array
            raise CacheError(f"{self.path(key)}: unreadable cache entry ({err}); delete it "
                             "and rerun `python -m selfprompt embed` to encode it again") from err
        return self._checked(key, arr)

    def _checked(self, key: str, arr: np.ndarray) -> np.ndarray:
        if arr.shape != SHAPE:
            raise CacheError(f"{self.path(key)}: shape {arr.shape}, expected {SHAPE}")
        return arr

    @property
    def entry_bytes(self) -> int:
        """What one embedding takes on disk."""
        return int(np.prod(SHAPE)) * np.dtype(self.dtype).itemsize + NPY_HEADER

    def check_room(self, n: int) -> None:
        """Before encoding ``n`` images: the folder is writable and its disk holds them.

        Both are cheaper to say before minutes of encoding than after; a write that
        fails later all the same is reported by :meth:`save`."""
        import shutil

        check_writable(self.dir, "the embedding cache", WRITABLE_CACHE)
        need, free = n * self.entry_bytes, shutil.disk_usage(self.dir).free
        if need > free:
            raise CacheError(f"the embedding cache {self.dir} needs {_mib(need)} for {n} "
                             f"images, but its disk has {_mib(free)} free: free some space or "
                             "point --cache at a larger volume")

    def save(self, key: str, features: np.ndarray | torch.Tensor) -> None:
        if isinstance(features, torch.Tensor):
            features = features.numpy()
        try:
            atomic_save_npy(self.path(key), np.ascontiguousarray(features, dtype=self.dtype))
        except OSError as err:  # a full disk: ENOSPC, or NumPy's "N requested and M written"
            import shutil

            free = shutil.disk_usage(self.dir).free if self.dir.exists() else 0
            why = ("the disk is full" if free < self.entry_bytes
                   else f"{err.strerror or err}")
            raise CacheError(f"cannot write to the embedding cache {self.dir}: {why} "
                             f"({_mib(free)} free, {_mib(self.entry_bytes)} needed per "
                             "image). Free some space or point --cache at a larger volume; "
                             "the embeddings already written are kept and the same command "
                             "resumes") from None


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


@dataclass(frozen=True)
class EmbeddingStats:
    total: int
    encoded: int
    reused: int


class _Prepared(torch.utils.data.Dataset):
    """Reads, decodes and resizes images in loader workers, off the encoder's thread."""

    def __init__(self, dataset: Dataset, indices: list[int], encoder: ImageEncoder) -> None:
        self.dataset, self.indices, self.encoder = dataset, indices, encoder

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int) -> tuple[int, torch.Tensor]:
        i = self.indices[j]
        path = self.dataset.samples[i].image_path
        return i, self.encoder.prepare(decode_image(path.read_bytes(), path))


def _collate(items: list) -> tuple[list[int], list[torch.Tensor]]:
    return [i for i, _ in items], [t for _, t in items]


class DatasetEmbeddings:
    """The embeddings of every image of a data set, backed by a cache.

    ``embeddings[i]`` is image ``i``'s ``(256, 64, 64)`` embedding (memory-mapped).
    Construction only hashes files; :meth:`ensure` encodes what is missing.
    """

    def __init__(self, dataset: Dataset, cache: EmbeddingCache) -> None:
        self.dataset, self.cache = dataset, cache
        self.keys = [image_key(s.image_path.read_bytes()) for s in dataset.samples]

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.cache.load(self.keys[i])

    def read(self, i: int) -> np.ndarray:
        """Image ``i``'s embedding read whole (:meth:`EmbeddingCache.read`), not mapped."""
        return self.cache.read(self.keys[i])

    def take(self, indices) -> "EmbeddingList":
        """The embeddings of ``indices``, each read from the cache only when indexed."""
        return EmbeddingList(self, [int(i) for i in indices])

    def missing(self) -> list[int]:
        return [i for i, k in enumerate(self.keys) if not self.cache.is_valid(k)]

    def ensure(self, encoder: ImageEncoder, workers: int | None = None, progress: bool = True,
               indices=None) -> EmbeddingStats:
        """Encode every image whose embedding is missing or damaged; resumable.

        ``indices``: only these images (a slice of a sweep that needs a few of them).
        ``workers``: image-loading processes; None chooses (:func:`default_workers`).
        On a GPU the loaders' batches arrive in pinned memory and are copied without
        blocking, and each batch's cache writes run in a writer thread while the next
        batch is encoded: decoding JPEGs and writing files would otherwise leave the
        GPU idle, a small backbone's run bound by image loading in the main process.
        A failed write stops the run
        with its error; what was written before it stays (writes are atomic).
        """
        from concurrent.futures import ThreadPoolExecutor

        from tqdm.auto import tqdm

        wanted = range(len(self.keys)) if indices is None else sorted({int(i) for i in indices})
        todo = [i for i in wanted if not self.cache.is_valid(self.keys[i])]
        stats = EmbeddingStats(len(wanted), len(todo), len(wanted) - len(todo))
        if not todo:
            return stats
        self.cache.check_room(len(todo))
        device = encoder.backbone.device
        workers = default_workers(device) if workers is None else workers
        loader = torch.utils.data.DataLoader(
            _Prepared(self.dataset, todo, encoder), batch_size=encoder.batch_size,
            num_workers=workers, collate_fn=_collate, persistent_workers=False,
            prefetch_factor=4 if workers else None, pin_memory=device.type == "cuda")
        pending: list = []
        written = [0]

        def write(indices, features) -> None:
            for i, f in zip(indices, features):
                self.cache.save(self.keys[i], f)
                written[0] += 1

        try:
            with tqdm(total=len(todo), desc=f"encoding ({self.cache.model_type})", unit="img",
                      disable=not progress) as bar, ThreadPoolExecutor(1) as writer:
                for indices, prepared in loader:
                    features = self._encode(encoder, prepared)
                    while pending and (len(pending) > 2 or pending[0].done()):
                        pending.pop(0).result()    # a failed write raises here, in order
                    pending.append(writer.submit(write, indices, features))
                    bar.update(len(indices))
                for job in pending:
                    job.result()
        except KeyboardInterrupt:
            raise KeyboardInterrupt(
                f"{written[0]} of the {len(todo)} missing embeddings were written to "
                f"{self.cache.dir} (beside the {stats.reused} already there); the same "
                "command encodes only the rest") from None
        return stats

    @staticmethod
    def _encode(encoder: ImageEncoder, prepared: list[torch.Tensor]) -> torch.Tensor:
        try:
            return encoder.encode(prepared)
        except torch.cuda.OutOfMemoryError:
            smaller = max(1, encoder.batch_size // 2)
            hint = (f"rerun with --batch-size {smaller}" if encoder.batch_size > 1 else
                    "free the GPU (other processes), or use --precision bf16, or --device cpu")
            raise EncodingError(
                f"the GPU ran out of memory encoding a batch of {encoder.batch_size} "
                f"image(s) with {encoder.backbone.model_type}: {hint}. The embeddings "
                "already written are kept and the same command resumes") from None


def default_workers(device: torch.device) -> int:
    """Image-loading processes for encoding: on a GPU enough to keep it fed (up to 8,
    leaving a core to the main process); on a CPU none, because the encoder itself
    uses every core and a JPEG's decoding is ~1 % of an image's encoding time there."""
    from .utils.device import usable_cores

    if torch.device(device).type != "cuda":
        return 0
    return max(1, min(8, usable_cores() - 1))


def to_float32(features: np.ndarray) -> np.ndarray:
    """A cached embedding (float16 or float32, often a memory map) as a float32 array.

    The conversion is exact; torch's vectorised kernel does it an order of magnitude
    faster than NumPy's ``astype``, which matters where every shot is read again on
    every pass of a streamed fit.
    """
    if features.dtype == np.float32:
        return np.array(features)
    if (type(features) is not np.ndarray or not features.flags.writeable
            or not features.flags.c_contiguous):
        features = np.array(features)   # torch takes no memory map or read-only array
    return torch.from_numpy(features).float().numpy()


class EmbeddingList(Sequence):
    """Some images' embeddings, in a given order, loaded on access and never kept: a
    classifier streaming over k = all shots holds one at a time."""

    def __init__(self, embeddings: DatasetEmbeddings, indices: list[int]) -> None:
        self.embeddings, self.indices = embeddings, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int) -> np.ndarray:
        return self.embeddings.read(self.indices[j])


ENCODE_LOG = "encode_log.jsonl"


def log_encoding(cache: EmbeddingCache, stats: EmbeddingStats, seconds: float) -> None:
    """Append one line to the cache folder's ``encode_log.jsonl``: how many images were
    encoded, in how many seconds, on what machine. The reference results' provenance
    reads it (the encoder is the sweep's most expensive stage)."""
    from datetime import datetime, timezone

    from .utils.provenance import environment

    line = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "encoded": stats.encoded, "reused": stats.reused, "seconds": round(seconds, 1),
            "environment": environment()}
    try:
        with open(cache.dir / ENCODE_LOG, "a") as f:  # one short write: a line or nothing
            f.write(json.dumps(line) + "\n")
    except OSError as err:  # a read-only cache still serves embeddings
        log.warning("could not log the encoding time in %s: %s", cache.dir, err)


def embed_dataset(dataset: Dataset, backbone: Backbone, cache_root: str | Path | None = None,
                  dtype: str = "float16", workers: int | None = None, progress: bool = True,
                  encoder: ImageEncoder | None = None) -> tuple[DatasetEmbeddings, EmbeddingStats]:
    """Make sure every image of ``dataset`` has a cached embedding; return them.

    ``cache_root`` defaults to :func:`~selfprompt.utils.paths.cache_folder` (the kit's
    ``data/embeddings``, or ``$SELFPROMPT_CACHE``). ``encoder`` says how to encode
    (batch size, precision, attention); the default is
    batch 1, fp32, the fused path (``ImageEncoder``'s defaults; pass
    ``ImageEncoder(backbone, fused=False)`` for exactly what ``set_image``
    computes).
    """
    import time

    encoder = encoder or ImageEncoder(backbone)
    cache = EmbeddingCache.for_backbone(cache_folder(cache_root), backbone, dtype, encoder)
    embeddings = DatasetEmbeddings(dataset, cache)
    start = time.perf_counter()
    stats = embeddings.ensure(encoder, workers=workers, progress=progress)
    if stats.encoded:
        log_encoding(cache, stats, time.perf_counter() - start)
    log.info("embeddings: %d images, %d encoded, %d from cache (%s)",
             stats.total, stats.encoded, stats.reused, cache.dir)
    return embeddings, stats
