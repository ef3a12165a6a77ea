"""Keep freed host memory in the process instead of returning it to the kernel every step.

On Linux, glibc's malloc serves each allocation above its mmap threshold (128 KiB, raised
dynamically up to at most 32 MiB) with a fresh `mmap` and hands it back with `munmap` when
freed; it also trims the top of its heaps when more than the trim threshold is free. XLA's
CPU runtime allocates the buffers of a compiled step (the main job's train step: one 42 MB
block of temporaries, plus its outputs) and frees them at the end of the step, so each step
maps fresh pages and the kernel zero-fills them on first touch: the main job took 5-16
million minor page faults and a fifth to a quarter of its CPU time in the kernel for 1,500
steps. With the settings below the same runs took 0.3 million faults, and the main job's
network trained at 913 instead of 636 images/s (2-core AMD EPYC, 2026-12-07;
docs/benchmarks.md). The cost is that the process keeps up to its peak working set mapped
after a step, which a training process does anyway.

`keep_freed_memory()` sets, with glibc's `mallopt` (applies to every later allocation of the
process; the start-up equivalents are `MALLOC_MMAP_MAX_=0`, `MALLOC_TRIM_THRESHOLD_` and
`MALLOC_TOP_PAD_`): no allocation served by its own `mmap` (the 32 MiB ceiling of the mmap
threshold is below the step's 42 MB block), a heap trimmed only when 1 GiB is free at its top,
and heap growth 64 MiB at a time. Elsewhere (macOS, musl, Windows) it does nothing: their
allocators differ.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameter numbers (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4

MMAP_MAX = 0  # Blocks served by mmap of their own: none; every block comes from a heap.
TRIM_THRESHOLD = 1 << 30  # Free bytes at a heap's top before it is handed back.
TOP_PAD = 64 << 20  # Extra bytes a heap grows by.


def keep_freed_memory() -> bool:
    """Sets glibc malloc's mmap maximum, trim threshold and top pad (module docstring).

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
        (_M_MMAP_MAX, MMAP_MAX),
        (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (_M_TOP_PAD, TOP_PAD),
    )
    return all(mallopt(param, value) == 1 for param, value in settings)
