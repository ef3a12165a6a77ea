"""Time and peak memory of k-reciprocal re-ranking (jaxreid.evaluation.rerank).

    python benchmarks/rerank.py                  # both problems, 2048-d features
    python benchmarks/rerank.py --dim 256        # cheaper distance passes (CPU)
    python benchmarks/rerank.py --problem sysu   # one problem
    python benchmarks/rerank.py --once           # one timed call (includes compilation)

Problems (random features with identity structure, float32, paper parameters 20 / 6 / 0.3):
  sysu    3,803 queries x 301 gallery images: one SYSU-MM01 all-search single-shot trial
          (96 identities x ~3 RGB cameras); the pool is 4,104 images.
  market  3,368 queries x 15,913 gallery images (Market-1501 after junk removal: 19,281 images
          in the pool).
Each problem runs in its own process, so 'peak host RSS' is that problem's (the process's
maximum resident set, Python and JAX included); 'RSS over the call' is what the timed call
adds to the resident set it started from (Linux: the peak VmHWM, reset through
/proc/self/clear_refs just before the call, minus VmRSS then; the inputs, JAX and the
compiled kernels are not counted, the [Q, G] result is); 'NumPy peak' is tracemalloc's peak
over one more call (NumPy reports its buffers to tracemalloc, XLA's CPU buffers are not
seen; skipped with --once). 'peak device' is the accelerator's peak_bytes_in_use when the
backend reports it. The first call compiles; the time is of a second call. The authors' dense NumPy code holds several N x N float32 matrices (N = 19,281:
1.5 GB each) and loops over images in Python.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

# This checkout's jaxreid, also in the child processes (not another installed copy).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROBLEMS = {"sysu": (3803, 301, 96), "market": (3368, 15913, 1501)}


def features(num, num_ids, dim, rng):
    centres = rng.standard_normal((num_ids, dim), np.float32)
    ids = rng.integers(0, num_ids, size=num)
    return (centres[ids] + 1.5 * rng.standard_normal((num, dim), np.float32)).astype(np.float32)


def _proc_status_mb(key: str) -> float | None:
    """VmRSS / VmHWM of this process in MB (Linux /proc), None elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Resets VmHWM to the current RSS (Linux >= 4.0: clear_refs '5')."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def run_one(problem: str, dim: int, once: bool) -> dict:
    import jax

    from jaxreid.evaluation import rerank

    nq, ng, num_ids = PROBLEMS[problem]
    rng = np.random.default_rng(0)
    q, g = features(nq, num_ids, dim, rng), features(ng, num_ids, dim, rng)
    params = rerank.RerankParams()
    rerank.k_reciprocal_distances(q[:64], g[:256], params)  # compile small shapes first
    start = time.perf_counter()
    out = rerank.k_reciprocal_distances(q, g, params)
    first = time.perf_counter() - start
    second = numpy_peak = None
    if not once:
        del out  # the call's own result is counted below, not the previous one's
        gc.collect()
        before = _proc_status_mb("VmRSS") if _reset_peak_rss() else None
        start = time.perf_counter()
        out = rerank.k_reciprocal_distances(q, g, params)
        second = round(time.perf_counter() - start, 2)
        hwm = _proc_status_mb("VmHWM")
        over_call = round(hwm - before) if before is not None and hwm is not None else None
        del out
        gc.collect()
        tracemalloc.start()
        out = rerank.k_reciprocal_distances(q, g, params)
        numpy_peak = round(tracemalloc.get_traced_memory()[1] / 2**20)
        tracemalloc.stop()
    else:
        over_call = None
    stats = jax.devices()[0].memory_stats() or {}
    return {
        "problem": problem,
        "queries": nq,
        "gallery": ng,
        "dim": dim,
        "first_call_s": round(first, 2),
        "time_s": second,
        "peak_host_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "rss_over_call_mb": over_call,
        "numpy_peak_mb": numpy_peak,
        "peak_device_mb": round(stats["peak_bytes_in_use"] / 2**20)
        if "peak_bytes_in_use" in stats
        else None,
        "result_mb": round(out.nbytes / 2**20),
        "device": str(jax.devices()[0].device_kind),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--problem", choices=tuple(PROBLEMS), action="append")
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--once", action="store_true", help="one call (time incl. compile)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.problem[0], args.dim, args.once)))
        return
    print(f"# k-reciprocal re-ranking, {platform.node()}, {platform.processor() or ''}")
    print(
        "| problem | Q x G | dim | time (s) | first call (s) | peak host RSS (MB) | "
        "RSS over the call (MB) | NumPy peak (MB) | peak device (MB) | result (MB) | device |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for problem in args.problem or list(PROBLEMS):
        cmd = [sys.executable, __file__, "--child", "--problem", problem, "--dim", str(args.dim)]
        cmd += ["--once"] if args.once else []
        row = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        print(
            f"| {problem} | {row['queries']:,} x {row['gallery']:,} | {row['dim']} | "
            f"{row['time_s']} | {row['first_call_s']} | {row['peak_host_rss_mb']} | "
            f"{row['rss_over_call_mb']} | {row['numpy_peak_mb']} | "
            f"{row['peak_device_mb']} | {row['result_mb']} | {row['device']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
