"""Keep freed CPU tensor memory in the process instead of handing it back to the OS (glibc).

glibc serves every allocation above its mmap threshold (dynamic, at most 32 MiB by default)
with a fresh ``mmap`` and returns it with ``munmap`` on free, and it trims the heap's free top
above 128 KiB. A CPU training step allocates and frees the same large tensors every step, so each
of their pages is faulted in again, step after step. Time folded into the batch makes the
spiking networks' tensors T times larger than an ANN's: in the spiking ResNet-18 (T=6, batch
32, width 64) a layer of the stem is 50 MB, far above the threshold, and an SGD step with the
eager LIF took 388k minor page faults (1.5 GB of pages; ``benchmarks/compare_frameworks.py
--malloc default``). :func:`retain_freed_memory` raises both thresholds with ``mallopt``, so
freed blocks stay in the heap and are reused; the same step then took none. It is what
PyTorch's CUDA caching allocator does on the GPU: memory freed by tensors stays with the
process, and the resident size stays near its peak.

:func:`dspike.engine.fit` calls it when it trains on the CPU; a training loop of one's own calls
it once before its first step. Measured figures: the README, section "Training step cost".
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["retain_freed_memory"]

_M_TRIM_THRESHOLD = -1  # malloc.h
_M_MMAP_THRESHOLD = -3
# Allocations above this still get their own mmap (and go back to the OS when freed).
_MAX_RETAINED = 2**31 - 1


@functools.cache
def retain_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse (see the module docstring); once per process.

    Returns False, changing nothing, where the C library is not glibc (musl, macOS, Windows)
    or refuses the setting.
    """
    path = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(path)
        libc.gnu_get_libc_version  # noqa: B018 (glibc only)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MAX_RETAINED)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _MAX_RETAINED)
    )
