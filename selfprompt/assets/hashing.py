"""File hashes, remembered beside the file, and the checks a checkpoint passes before
``torch.load`` sees it.

Hashing a 2.5 GB checkpoint takes seconds and would happen on every run that needs
the model's identity (the embedding cache is keyed on it), so a file's sha256 is kept
in ``<file>.sha256`` while its size and mtime are unchanged. Standard library only.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .registry import Asset

CHUNK = 1 << 20


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


def checkpoint_problem(path: Path, asset: Asset | None, full: bool,
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
