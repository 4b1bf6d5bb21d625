"""A fitted model over a folder of images: a mask and an overlay per image, and a table
of them, the least confident first.

Streamed: one image is read, encoded (or its embedding read from the content-keyed
cache), decoded, written and let go before the next is read, so memory does not grow
with the folder (``benchmarks/bench/predict.py`` measures it). What a finished image
leaves behind, in ``out``:

- ``masks/<name>.png``: the mask, 0 = background, 255 = lesion, the image's size;
- ``overlays/<name>.png``: the image, the mask tinted and outlined on it;
- a line in ``.predictions.jsonl``, the run's journal, written after both files.

Each file is written atomically (complete or absent), so a run stopped at any moment
(Ctrl-C, a crash) leaves finished images and nothing half-written: the same command
skips an image whose journal line, mask and overlay are all there, and whose file and
model are the ones that made them (the image's content hash and the run's identity are
on the line), and computes the rest. At the end ``predictions.csv`` is written from the
journal: one row per image, sorted by quality score ascending (ties by name), because a
person checking a few hundred masks should look first at the ones the model trusts
least. Images that cannot be read are listed in ``failed.txt`` (one line each, path and
reason) and are tried again by the next run.

The random draws of an image's prompt (box widening) come from a generator seeded by
``(seed,)`` for every image, as :meth:`selfprompt.api.SelfPrompt.predict` draws them:
they do not depend on the image's place in the folder or on which images were finished
before, so a resumed run and an uninterrupted one write the same masks, and the Python
API gives each image the mask the command wrote.
"""
from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..datasets.layouts import DatasetError
from ..datasets.reader import decode_image, is_truncated
from ..embeddings import EmbeddingCache, image_key, to_float32
from ..utils.io import atomic_open, atomic_write_text
from .images import ImageFile

JOURNAL = ".predictions.jsonl"
TABLE = "predictions.csv"
FAILED = "failed.txt"
MASKS, OVERLAYS = "masks", "overlays"
#: the table's columns: the image as given, its two outputs (relative to the output
#: folder), the lesion's area in pixels, the quality score, and the prompt that made it
COLUMNS = ("image", "mask", "overlay", "area_px", "score", "prompt")
#: the overlay's tint and outline (RGB) and the tint's weight
OVERLAY_COLOUR = (0, 255, 0)
OVERLAY_ALPHA = 0.35


def overlay(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = OVERLAY_COLOUR,
            alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """``image`` (RGB ``uint8 (H, W, 3)``) with ``mask`` tinted and outlined on it; the
    outline is 2 px wide, more on large images (1 px per 250)."""
    out = image.copy()
    m = mask.astype(bool)
    tint = np.asarray(colour, np.float32)
    out[m] = (out[m].astype(np.float32) * (1 - alpha) + tint * alpha).round().astype(np.uint8)
    contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, colour, thickness=max(2, min(image.shape[:2]) // 250))
    return out


def _write_png(path: Path, array: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", array)
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 grey or BGR array
        raise OSError(f"{path}: PNG encoding failed")
    with atomic_open(path, "wb") as f:
        f.write(data.tobytes())


def write_mask(path: Path, mask: np.ndarray) -> None:
    """``mask`` as an 8-bit grey PNG: 255 = lesion, 0 = background."""
    _write_png(path, np.where(mask.astype(bool), np.uint8(255), np.uint8(0)))


def write_overlay(path: Path, image: np.ndarray, mask: np.ndarray) -> None:
    _write_png(path, cv2.cvtColor(overlay(image, mask), cv2.COLOR_RGB2BGR))


def embed_bytes(data: bytes, image: np.ndarray, cache: EmbeddingCache, encoder) -> np.ndarray:
    """An image's embedding, float32 ``(256, 64, 64)``, through the cache: encoded (and
    stored) only when the cache has no entry for these bytes. Always read back from the
    cache, so a fresh and a cached image give the same numbers (float16 storage)."""
    key = image_key(data)
    if not cache.is_valid(key):
        cache.save(key, encoder(image))
    return to_float32(cache.read(key))


def read_rgb(path: Path) -> tuple[bytes, np.ndarray]:
    """The file's bytes and its RGB pixels; one :class:`DatasetError` line if unusable."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DatasetError(f"{path}: cannot be read ({err.strerror or err})") from None
    if not data:
        raise DatasetError(f"{path}: empty file")
    if is_truncated(data, path):
        raise DatasetError(f"{path}: truncated (file ends before the image does)")
    return data, decode_image(data, path)


@dataclass
class Row:
    """One image's line in the journal and the table."""

    name: str
    image: str
    key: str
    mask: str = ""
    overlay: str = ""
    area_px: int = 0
    score: float = 0.0
    prompt: str = ""
    error: str = ""

    def table(self) -> dict:
        return {"image": self.image, "mask": self.mask, "overlay": self.overlay,
                "area_px": self.area_px, "score": f"{self.score:.6f}", "prompt": self.prompt}


FIELDS = tuple(Row.__dataclass_fields__)


@dataclass
class Summary:
    """What a run did: every image's row (sorted as the table), the failures, counts."""

    rows: list[Row]
    failed: list[Row]
    computed: int
    reused: int
    table: Path
    seconds: float = 0.0
    #: seconds spent in each stage over the computed images: read, embed, predict, write
    stages: dict[str, float] = field(default_factory=dict)


class Journal:
    """The run's append-only record: one JSON line per finished (or failed) image.

    Its first line is the run's identity; a journal of another identity (another fit,
    another prompt, another model file) is started afresh, since its masks would not be
    this model's. A line cut short by a crash is ignored."""

    def __init__(self, path: Path, identity: str) -> None:
        self.path, self.identity = path, identity
        self.rows: dict[str, Row] = {}
        self.stale = False
        text = path.read_text() if path.exists() else ""
        if text:
            lines = text.splitlines()
            head = _json(lines[0]) if lines else None
            if head and head.get("identity") == identity:
                for line in lines[1:]:
                    entry = _json(line)
                    if entry and {"name", "image", "key"} <= set(entry):
                        self.rows[entry["name"]] = Row(**{k: entry[k] for k in FIELDS
                                                          if k in entry})
            else:
                self.stale = True
        if not self.rows:
            atomic_write_text(path, json.dumps({"identity": identity}) + "\n")
        self._file = open(path, "a")
        if self.rows and not text.endswith("\n"):  # a line cut short: the next starts anew
            self._file.write("\n")

    def add(self, row: Row) -> None:
        self._file.write(json.dumps(row.__dict__) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.rows[row.name] = row

    def close(self) -> None:
        self._file.close()


def _json(line: str) -> dict | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _finished(row: Row | None, out: Path, key: str) -> bool:
    return (row is not None and not row.error and row.key == key
            and (out / row.mask).is_file() and (out / row.overlay).is_file())


def predict_images(predict: Callable[[np.ndarray, tuple[int, int], tuple[int, ...]], object],
                   images: Sequence[ImageFile], out: Path, *, cache: EmbeddingCache, encoder,
                   identity: str, seed: int = 42,
                   seed_of: Callable[[ImageFile, str], tuple[int, ...]] | None = None,
                   progress: bool = True, say: Callable[[str], None] = print) -> Summary:
    """Segment ``images`` one at a time into ``out`` (see the module docstring).

    ``predict(features, (H, W), seed) -> Prediction`` is a fitted estimator's predict
    (``mask``, ``score``, ``prompt``); ``cache`` and ``encoder`` the backbone's embedding
    cache and encoder; ``identity`` names the model (a journal of another identity is
    not resumed). ``seed_of(image, key)`` gives an image's seed tuple (default
    ``(seed,)``); the protocol's comparison passes ``(seed, fold, index)``.
    An unreadable image is one line through ``say`` and a row in ``failed.txt``; the
    others are still written.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    (out / MASKS).mkdir(parents=True, exist_ok=True)
    (out / OVERLAYS).mkdir(parents=True, exist_ok=True)
    journal = Journal(out / JOURNAL, identity)
    if journal.stale:
        say(f"{out}: earlier results there were made by another model or prompt: "
            "every image is computed again")
    seed_of = seed_of or (lambda image, key: (int(seed),))
    start = time.perf_counter()
    stages = dict.fromkeys(("read", "embed", "predict", "write"), 0.0)
    computed = reused = 0
    current: list[Row] = []
    try:
        for image in tqdm(images, desc="predicting", unit="img", disable=not progress):
            t = time.perf_counter()
            try:
                data, rgb = read_rgb(image.path)
            except DatasetError as err:
                say(f"skipped: {err}")
                row = Row(image.name, str(image.path), "", error=str(err))
                journal.add(row)
                current.append(row)
                continue
            key = image_key(data)
            done = journal.rows.get(image.name)
            if _finished(done, out, key):
                reused += 1
                current.append(done)
                continue
            t1 = time.perf_counter()
            features = embed_bytes(data, rgb, cache, encoder)
            t2 = time.perf_counter()
            size = rgb.shape[:2]
            result = predict(features, size, seed_of(image, key))
            del features
            t3 = time.perf_counter()
            mask = np.asarray(result.mask, bool)
            if mask.shape != size:  # an estimator's bug, not the user's: say so plainly
                raise RuntimeError(f"{image.path}: the model gave a {mask.shape} mask for a "
                                   f"{size} image")
            row = Row(image.name, str(image.path), key, f"{MASKS}/{image.name}.png",
                      f"{OVERLAYS}/{image.name}.png", int(mask.sum()),
                      float(result.score), str(result.prompt))
            write_mask(out / row.mask, mask)
            write_overlay(out / row.overlay, rgb, mask)
            journal.add(row)
            current.append(row)
            computed += 1
            t4 = time.perf_counter()
            for stage, seconds in zip(stages, (t1 - t, t2 - t1, t3 - t2, t4 - t3)):
                stages[stage] += seconds
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"{computed} image(s) were written to {out} this time, "
                                f"{reused + computed} of {len(images)} in all") from None
    finally:
        journal.close()
    rows = sorted((r for r in current if not r.error), key=lambda r: (r.score, r.name))
    failed = [r for r in current if r.error]
    table = write_table(out, rows, failed)
    return Summary(rows, failed, computed, reused, table, time.perf_counter() - start,
                   {k: round(v, 3) for k, v in stages.items()})


def write_table(out: Path, rows: Sequence[Row], failed: Sequence[Row]) -> Path:
    """``predictions.csv`` (rows as given: least confident first) and ``failed.txt``
    (removed when nothing failed), each written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(r.table() for r in rows)
    atomic_write_text(out / TABLE, buffer.getvalue())
    if failed:
        atomic_write_text(out / FAILED, "".join(f"{r.error}\n" for r in failed))
    else:
        (out / FAILED).unlink(missing_ok=True)
    return out / TABLE


def read_table(path: Path) -> list[dict]:
    """``predictions.csv`` as written, numbers as numbers."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["area_px"], r["score"] = int(r["area_px"]), float(r["score"])
    return rows
