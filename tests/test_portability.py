"""`make test` passes on any CPU: the checked outputs under other arithmetic.

Machines differ in what their floating-point sums do: OpenBLAS picks its kernels by CPU
(``Prescott``: SSE3; ``Haswell``: AVX2; ``SkylakeX``: AVX-512), torch by its CPU
capability, and the thread count changes the order of reductions. A checked notebook
output or a test assertion that depends on the last digits of a fitted number passes
on the machine it was recorded on and fails on another (issue: 3 nbval failures on an
AMD EPYC whose OpenBLAS ran its Haswell kernels).

Here the checked notebooks (nbval, with their committed outputs) and the tests whose
assertions rest on fitted values run again in a subprocess under other arithmetic, with
a fresh embedding cache (so the encoder runs under that arithmetic too), and must pass
unchanged. Only kernels this CPU can execute are forced (an AVX2 kernel on a CPU
without AVX2 would die of an illegal instruction).
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHECKED_NOTEBOOKS = [f"notebooks/{n}" for n in (
    "01_data.ipynb", "02_embedding.ipynb", "03_classifier.ipynb", "04_self_prompting.ipynb",
    "05_evaluate.ipynb", "06_report.ipynb")]
#: tests whose assertions compare fitted numbers (within one run, so any CPU must pass them)
FITTED_TESTS = ["tests/test_classifier.py", "tests/test_protocol.py",
                "tests/test_paper_replay.py", "tests/test_embeddings.py"]


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def arithmetics() -> dict[str, dict[str, str]]:
    """Other arithmetic this machine can run: name -> environment variables."""
    out = {"torch-default-1-thread": {"ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1",
                                      "OPENBLAS_NUM_THREADS": "1"}}
    if platform.machine() in ("x86_64", "AMD64"):
        out["openblas-prescott"] = {"OPENBLAS_CORETYPE": "Prescott"}   # SSE3: every x86-64
        if "avx2" in _cpu_flags():
            out["openblas-haswell"] = {"OPENBLAS_CORETYPE": "Haswell"}
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", list(arithmetics()))
def test_checked_outputs_do_not_depend_on_the_cpu(name, tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTEST_CURRENT_TEST", "OPENBLAS_CORETYPE", "ATEN_CPU_CAPABILITY")}
    env.update(arithmetics()[name])
    env["SELFPROMPT_CACHE"] = str(tmp_path / "cache")   # encode afresh under this arithmetic
    env["SELFPROMPT_NBVAL"] = "1"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", "not slow",
         *CHECKED_NOTEBOOKS, *FITTED_TESTS],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    tail = (run.stdout + run.stderr)[-6000:]
    assert run.returncode == 0, f"under {arithmetics()[name]}:\n{tail}"
    assert " passed" in tail and "failed" not in tail.splitlines()[-1]
