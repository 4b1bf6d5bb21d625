"""Which torch device to run on: CUDA when present, CPU otherwise, overridable."""
from __future__ import annotations

import os

import torch


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity; a container's or a batch
    job's share), not the machine's count, and no more than ``OMP_NUM_THREADS`` when
    that is set: threads and loader processes are sized by it. ``OMP_NUM_THREADS`` is
    the share ``make reproduce JOBS=n`` gives each of the folds it runs side by side
    (torch and OpenBLAS read it too), and a user's own cap is kept, not overridden."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    cap = os.environ.get("OMP_NUM_THREADS", "").strip()
    if cap.isdigit() and int(cap) > 0:
        n = min(n, int(cap))
    return n


def pick_device(preference: str | None = None) -> torch.device:
    """Return the device to use.

    ``preference`` (or the environment variable ``SELFPROMPT_DEVICE``) may name one
    explicitly (``"cpu"``, ``"cuda"``, ``"cuda:1"``); ``None``/``"auto"`` picks CUDA
    when it is available. Asking for CUDA on a machine without it is an error rather
    than a silent fall-back, so that a benchmark never reports CPU numbers as GPU ones.
    """
    choice = preference or os.environ.get("SELFPROMPT_DEVICE") or "auto"
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(choice)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {choice!r} was asked for, but CUDA is not available here; "
                         "use --device cpu (or auto)")
    return device


#: glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_kept: bool | None = None


def keep_freed_memory(mmap_threshold: int = 256 << 20, trim_threshold: int = 512 << 20) -> bool:
    """Let this process's ``malloc`` reuse freed blocks of up to ``mmap_threshold`` bytes
    instead of handing each back to the operating system (glibc on Linux; elsewhere
    nothing is changed and False is returned). True once set; later calls change
    nothing (the first call's thresholds hold).

    Why: by default glibc maps every large block afresh (above 128 KiB, a threshold
    that rises only to the largest block freed so far, at most 32 MiB) and unmaps it on
    ``free``, so each new tensor of a few MiB is faulted in, and zero-filled, page by
    page. A CPU forward pass allocates dozens of such tensors, and the faults can cost a
    third of its time, for LiteMedSAM's prompt decoding and its fused encoder alike.
    The threshold is high because a batch of 4 images allocates blocks above 64 MiB.
    Above ``mmap_threshold`` blocks are still mapped and unmapped; at most
    ``trim_threshold`` bytes of freed memory stay with the process, at the top of its
    heap."""
    global _kept
    if _kept is None:
        import ctypes
        import sys

        _kept = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None)
                libc.gnu_get_libc_version          # glibc only (musl's mallopt is a stub)
                _kept = bool(libc.mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))
                             and libc.mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)))
            except (OSError, AttributeError):
                pass
    return _kept
