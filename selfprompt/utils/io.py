"""Atomic writes: a file either has its old content or its complete new content.

Every file the kit writes that a later run trusts (cached embeddings, fold results,
checks) goes through here, so an interrupted run never leaves a half-written file
that could be mistaken for a finished one; a rerun simply redoes the missing piece.
A file that several processes read, change and write back (``folds.json``, when
``make reproduce JOBS=n`` runs folds side by side) is changed under :func:`locked`.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Iterator

if TYPE_CHECKING:  # NumPy only where an array is saved: the rest needs the standard library
    import numpy as np


class FolderError(RuntimeError):
    """A folder the kit must write to cannot be written; the message says which and why."""


def check_writable(folder: Path, what: str, instead: str) -> Path:
    """Create ``folder`` if needed and make sure a file can be written in it, before any
    long computation depends on it; ``what`` names it, ``instead`` says what to do."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as err:
        raise FolderError(f"cannot write to {what} {folder} ({err.strerror or err}): "
                          f"{instead}") from None
    return folder


_UMASK = os.umask(0)
os.umask(_UMASK)  # read once: the process's umask, as an ordinary open() would apply


@contextmanager
def atomic_open(path: Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are shared files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    import numpy as np

    with atomic_open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``.<name>.lock`` beside ``path`` for a read-change-write
    of ``path``: without it, two processes that read the same old content each write
    back their own change and one of them is lost. An advisory ``flock``, released when
    the block ends or the process dies; where the platform has none (Windows), no lock.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
