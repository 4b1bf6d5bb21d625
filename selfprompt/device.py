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
