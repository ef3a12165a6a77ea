"""jaxreid.host_memory: freed blocks stay in the process, so a repeated allocation pattern
like a training step's stops page-faulting."""

import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One "step" allocates a 48 MiB block (above glibc's largest mmap threshold, as the main
# job's 42 MB block of XLA temporaries is) and 28 blocks of 4 MiB (160 MiB in all, every page
# touched) and frees them all, as XLA's CPU runtime does with a step's buffers. By default
# the large block is an mmap of its own and the free top of the heap (above the trim
# threshold, at most 64 MiB) is handed back, so the next step faults every page in again;
# with keep_freed_memory() the pages stay mapped.
_PROGRAM = textwrap.dedent(
    """
    import ctypes, resource, sys
    sys.path.insert(0, {root!r})
    from jaxreid import host_memory

    kept = host_memory.keep_freed_memory() if sys.argv[1] == "keep" else None
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = (ctypes.c_size_t,)
    libc.free.argtypes = (ctypes.c_void_p,)
    sizes = [48 << 20] + [4 << 20] * 28

    def step():
        blocks = [libc.malloc(size) for size in sizes]
        for block, size in zip(blocks, sizes):
            ctypes.memset(block, 1, size)
        for block in blocks:
            libc.free(block)

    step()  # The first step faults in either case.
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(4):
        step()
    print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _PROGRAM.format(root=ROOT), mode],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
    reason="glibc's mallopt only",
)
def test_keep_freed_memory_stops_the_refaulting():
    kept, kept_faults = _faults("keep")
    default, default_faults = _faults("default")
    assert (kept, default) == ("True", "None")
    # Default: 4 steps x 160 MiB re-faulted = 163,840 4-KiB pages (fewer if the kernel
    # backs them with huge pages, but at least 4 x 80 2-MiB ones). Kept: the pages stay
    # mapped; a few hundred faults of the interpreter itself remain.
    assert default_faults >= 320
    assert kept_faults * 10 < default_faults, (kept_faults, default_faults)
