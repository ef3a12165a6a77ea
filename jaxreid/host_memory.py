"""Keep freed host memory in the process instead of returning it to the kernel every step.

On Linux, glibc's malloc serves each allocation above its mmap threshold (128 KiB, raised
dynamically up to 32 MiB) with a fresh `mmap` and hands it back with `munmap` when freed; it
also trims the top of its heaps when more than the trim threshold is free. XLA's CPU runtime
allocates every intermediate buffer of a compiled step (activations, im2col patches,
gradients: hundreds of KiB to several MiB each on the main job) and frees it at the end of
the step, so each step maps fresh pages and the kernel zero-fills them on first touch: the
main job took 15.8 million minor page faults and about a quarter of its CPU time in the
kernel for 1,500 steps. With the thresholds below the same run took 0.29 million faults and
trained at 913 instead of 636 images/s (2-core AMD EPYC, 2026-12-07; docs/benchmarks.md).
The cost is that the process keeps up to its peak working set mapped after a step, which a
training process does anyway.

`keep_freed_memory()` sets the thresholds with glibc's `mallopt`, which applies to every
later allocation of the process (the values `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`
and `MALLOC_TOP_PAD_` would give at start-up). Elsewhere (macOS, musl, Windows) it does
nothing: their allocators differ.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameter numbers (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

# Blocks up to 32 MiB (the largest mmap threshold glibc accepts) come from the heap; the
# heap is trimmed only when 1 GiB is free at its top, and grows 64 MiB at a time.
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 1 << 30
TOP_PAD = 64 << 20


def keep_freed_memory() -> bool:
    """Sets glibc malloc's mmap threshold, trim threshold and top pad (module docstring).

    Returns:
      True if glibc accepted all three; False where the C library is not glibc (nothing is
      changed). Never raises.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # Not glibc (e.g. musl has no mallopt).
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    settings = (
        (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (_M_TOP_PAD, TOP_PAD),
    )
    return all(mallopt(param, value) == 1 for param, value in settings)
