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
it once before its first step. Memory stays with the process after training too; setting any
of glibc's own malloc variables (:data:`GLIBC_SETTINGS`, or a ``glibc.malloc.*`` tunable in
``GLIBC_TUNABLES``) opts out. Measured figures: docs/performance.md,
section "Freed memory stays with the process".
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

__all__ = ["GLIBC_SETTINGS", "retain_freed_memory"]

_M_TRIM_THRESHOLD = -1  # malloc.h
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
# Allocations above this still get their own mmap (and go back to the OS when freed).
_MAX_RETAINED = 2**31 - 1
# glibc's own malloc settings; where one is set, the user's choice stands and nothing is
# changed. GLIBC_TUNABLES counts where it sets a malloc tunable (glibc.malloc.*), not otherwise.
_MALLOC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_MAX_")
GLIBC_SETTINGS = (*_MALLOC_VARIABLES, "GLIBC_TUNABLES")


def _malloc_set_by_user() -> bool:
    tunables = os.environ.get("GLIBC_TUNABLES")
    return any(name in os.environ for name in _MALLOC_VARIABLES) or (
        tunables is not None and "glibc.malloc." in tunables
    )


@functools.cache
def retain_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse (see the module docstring); once per process.

    Returns True when it did. It changes nothing and returns False where the C library is not
    glibc (musl, macOS, Windows) or where glibc's malloc is set in the environment
    (``MALLOC_TRIM_THRESHOLD_=131072`` keeps glibc's default, for one; so does
    ``GLIBC_TUNABLES=glibc.malloc.trim_threshold=131072``, while ``glibc.cpu.*`` tunables
    alone do not opt out). A glibc that refuses an
    mmap threshold this high (older ones cap it at 32 MiB) gets mmap switched off instead.
    """
    if _malloc_set_by_user():
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.gnu_get_libc_version  # noqa: B018 (glibc only)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if not mallopt(_M_TRIM_THRESHOLD, _MAX_RETAINED):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MAX_RETAINED) or mallopt(_M_MMAP_MAX, 0))
