"""``selfprompt.utils.device``: what a process is allowed to use and how it uses memory."""
import platform
import subprocess
import sys

import pytest

#: one 40 MiB block, allocated and freed ten times: above glibc's largest dynamic mmap
#: threshold (32 MiB), so by default each one is mapped afresh and faulted in
FAULTS = """
import resource, sys
import numpy as np
from selfprompt.utils.device import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
def once():
    return np.ones(10 << 20, np.float32).sum()
once()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    once()
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True,
                         text=True, check=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="mallopt thresholds are glibc's")
def test_freed_memory_is_reused_without_page_faults():
    kept, faults = _faults("keep")
    default = _faults("default")[1]
    assert kept == "True"
    assert default >= 100                   # the default really maps each block afresh
    assert faults * 10 <= default           # kept: the freed block is reused as it is
