"""Tuning of the C heap for per-frame tensor churn (glibc on Linux).

Every tile a CPU worker computes allocates activations of several MB (a 4 x 32 x 208 x 208
float32 feature map is 22 MB) and frees them a few milliseconds later. With glibc's
defaults those blocks are handed back to the kernel (``munmap``, or a trim of a thread
arena's heap) and the next tile takes them again page by page: each 4 KB page costs a
fault and a zeroing, which on a 2-core machine took 20-30% of ``vidsr upscale``'s time
(benchmarks/allocator.py). :func:`keep_freed_memory` makes the heap keep what it frees for
the next tile instead, at a cost of some tens of MB of resident memory.

This is a per-process setting, so only entry points call it (the CLI's ``main`` and the
cluster's worker processes), never library code; ``VIDSR_ALLOCATOR=system`` keeps the C
library's defaults (for comparison, or where memory is tighter than time).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt(3) parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

# Blocks up to this size come from the heap, not from their own mmap: glibc's ceiling for
# the threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX), above a 192 px tile's largest
# activation batch.
MMAP_THRESHOLD = 32 << 20
# Free memory at the top of a heap is returned to the kernel only beyond this much.
TRIM_THRESHOLD = 1 << 30
# Each heap grows (and keeps) this much beyond a request, so that a tile's allocations do
# not each extend it.
TOP_PAD = 64 << 20

OPT_OUT_VARIABLE = "VIDSR_ALLOCATOR"


def keep_freed_memory() -> bool:
    """Set glibc's malloc to keep freed blocks for reuse (see the module docstring).

    Returns whether the settings were applied: ``False`` without glibc (macOS, Windows,
    musl), or when ``VIDSR_ALLOCATOR=system`` asks for the C library's defaults.
    Idempotent. Call it from a process's entry point, before the work starts.
    """
    if os.environ.get(OPT_OUT_VARIABLE, "").strip().lower() == "system":
        return False
    libc = _glibc()
    if libc is None:
        return False
    settings = (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (M_TOP_PAD, TOP_PAD),
    )
    return all(libc.mallopt(param, value) == 1 for param, value in settings)


def _glibc() -> ctypes.CDLL | None:
    """The process's glibc, or ``None`` where the C library is another one."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return None  # musl and others: no mallopt with these meanings
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc
