"""dspike.allocator: with freed memory retained, steps of large tensors cost few page faults
once the heap has grown (glibc, Linux)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dspike.allocator import retain_freed_memory

PROBE = """
import resource, sys, torch
from dspike.allocator import retain_freed_memory
if sys.argv[1] == "retain":
    assert retain_freed_memory()
faults = []
for step in range(6):  # a training step's pattern: activations kept, temporaries freed at once
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    acts = []
    for mib in (40, 48, 40, 64, 40, 33):
        x = torch.empty(mib * 2**18).fill_(1.0)
        acts.append(x * 2)
    while acts:  # backward frees them in reverse
        acts.pop()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(sum(faults[2:]))  # once the heap has grown
"""
PAGES = 4 * 2 * (40 + 48 + 40 + 64 + 40 + 33) * 2**20 // 4096  # touched in steps 3-6


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="minor faults: Linux")
def test_retained_memory_is_reused_without_page_faults():
    if not retain_freed_memory():
        pytest.skip("C library is not glibc")
    assert _faults("default") > PAGES // 2  # glibc's own behaviour: a fresh mmap every time
    # Measured: 0-14k of 136k pages a step; the heap's free blocks do not always fit (alignment).
    assert _faults("retain") < PAGES // 5


def test_it_is_applied_once_per_process():
    assert retain_freed_memory() is retain_freed_memory()
