"""Where a number was computed: kit commit, library versions, CPU and arithmetic settings.

Why a module: every fold's JSON, the committed reference results and CI's log say the
same things in the same words, so a result (or a failing test) can be traced to the
code and the arithmetic that produced it. Floating-point results depend on the CPU's
kernels (OpenBLAS picks them by CPU unless ``OPENBLAS_CORETYPE`` says otherwise; torch
by ``ATEN_CPU_CAPABILITY``) and on the number of threads, so those are recorded too.

``python -m selfprompt provenance`` prints it (``.ci/run`` does, first).
"""
from __future__ import annotations

import os
import platform
import subprocess
from functools import lru_cache
from pathlib import Path

from .paths import checkout

#: environment variables that change floating-point results (or their speed)
ARITHMETIC_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                   "MKL_NUM_THREADS", "ATEN_CPU_CAPABILITY", "OPENBLAS_L2_SIZE")


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo; elsewhere: platform)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@lru_cache(maxsize=1)
def kit_commit() -> str:
    """``git`` commit of the kit, ``+dirty`` when its code differs from that commit
    (None-like "unknown" outside a clone). Only the package and notebooks count. An
    installed kit has no clone: its version stands in (never the commit of whatever
    repository its user folder may lie in)."""
    repo = checkout()
    if repo is None:
        from .. import __version__

        return f"installed selfprompt-kit {__version__}"
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "diff", "--quiet", "HEAD", "--",
                                "selfprompt", "notebooks"], timeout=10).returncode != 0
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def blas_kernels() -> str:
    """What NumPy's BLAS runs: library, kernel family (e.g. OpenBLAS ``Haswell``), threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown"
    import numpy  # noqa: F401  (loads its BLAS so that threadpoolctl sees it)

    infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
                     f"x{i.get('num_threads')}" for i in infos) or "none found"


def environment() -> dict:
    """Everything above as a JSON-able dict."""
    import cv2
    import numpy
    import sklearn
    import torch

    from .. import __version__

    return {
        "kit_version": __version__, "kit_commit": kit_commit(),
        "python": platform.python_version(), "torch": torch.__version__,
        "numpy": numpy.__version__, "scikit_learn": sklearn.__version__,
        "opencv": cv2.__version__, "cpu": cpu_model(), "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "blas": blas_kernels(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "env": {k: os.environ[k] for k in ARITHMETIC_VARS if k in os.environ},
    }
