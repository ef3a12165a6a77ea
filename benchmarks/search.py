"""Gallery search at scale: exact on-device search, FAISS flat and FAISS IVF (approximate).

    python benchmarks/search.py                 # galleries of 1e5 and 1e6 256-d embeddings
    python benchmarks/search.py --sizes 100000  # one size
    python benchmarks/search.py --hnsw          # also HNSW (slow to build on a small CPU)

Embeddings with identity structure, as a re-id network gives them: a random unit centre per
person (10 images each) plus Gaussian noise, float32; the queries are new images of gallery
people. For each backend: build time (copying the gallery to the device for the exact search;
training and adding for IVF), memory of the index's data (device arrays; FAISS's serialised
index), queries per second (one search of all queries, the exact kernel compiled before on a
one-chunk gallery) and recall@10 against the exact top-10.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from jaxreid.search import index as index_lib

DIM = 256
PER_PERSON = 10
# IVF lists ~ sqrt(N) at 1e5 (FAISS's guidelines); at 1e6 as few, so that k-means trains in
# about a minute on 2 cores (FAISS would use 1,000-4,000); 16 lists probed.
IVF = {100_000: {"nlist": 256, "nprobe": 16}, 1_000_000: {"nlist": 256, "nprobe": 16}}
# Queries per gallery size: an exact search of 1e6 x 256-d costs ~0.1 s per query here.
QUERIES = {100_000: 256, 1_000_000: 64}
HNSW = {"m": 16, "ef_construction": 40, "ef_search": 64}


def embeddings(num: int, num_queries: int, seed: int = 0):
    """(gallery [num, DIM], queries [num_queries, DIM]) float32 with identity structure."""
    rng = np.random.default_rng(seed)
    people = max(num // PER_PERSON, 1)
    centres = rng.standard_normal((people, DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = 0.8 / np.sqrt(DIM)
    gallery = np.empty((num, DIM), np.float32)
    for start in range(0, num, 100_000):  # in blocks: bounded temporary memory
        rows = np.arange(start, min(start + 100_000, num)) % people
        block = rng.standard_normal((len(rows), DIM), dtype=np.float32) * noise
        gallery[start : start + len(rows)] = centres[rows] + block
    who = rng.integers(0, people, num_queries)
    queries = centres[who] + rng.standard_normal((num_queries, DIM), dtype=np.float32) * noise
    return gallery, queries.astype(np.float32)


def _memory(index) -> int:
    if isinstance(index, index_lib.ExactIndex):
        return sum(g.nbytes + aux.nbytes for g, aux in index._chunks)  # pylint: disable=protected-access
    return int(index._state()["faiss_index"].nbytes)  # pylint: disable=protected-access


def measure(backend: str, gallery, queries, exact_ids, **params) -> dict:
    if backend == "exact":  # compile the kernel for these shapes on a one-chunk gallery
        chunk = index_lib.ExactIndex(gallery.shape[1]).chunk_size
        index_lib.make_index("exact", embeddings=gallery[:chunk]).search(queries, 10)
    start = time.perf_counter()
    index = index_lib.make_index(backend, "euclidean", embeddings=gallery, **params)
    if backend == "exact":
        index.search(queries[:1], 10)  # the gallery goes to the device on the first search
    build = time.perf_counter() - start
    start = time.perf_counter()
    _, found = index.search(queries, 10)
    elapsed = time.perf_counter() - start
    recall = 1.0
    if exact_ids is not None:
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact_ids)]))
    return {
        "build_s": build,
        "memory_mb": _memory(index) / 2**20,
        "qps": len(queries) / elapsed,
        "recall": recall,
        "found": found,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=0, help="default: QUERIES[size]")
    parser.add_argument("--hnsw", action="store_true", help="also time HNSW")
    args = parser.parse_args()
    import jax

    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"JAX device {jax.devices()[0].platform}; k=10, {DIM}-d, euclidean\n"
    )
    print("| gallery | index | build (s) | memory (MB) | queries | queries/s | recall@10 |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for num in args.sizes:
        gallery, queries = embeddings(num, args.queries or QUERIES.get(num, 64))
        rows = [("exact (JAX, on device)", "exact", {})]
        rows.append(("FAISS flat", "faiss", {"kind": "flat"}))
        ivf = IVF.get(num, {"nlist": int(np.sqrt(num)), "nprobe": 16})
        rows.append((f"FAISS IVF {ivf['nlist']}/{ivf['nprobe']}", "faiss", {"kind": "ivf", **ivf}))
        if args.hnsw:
            rows.append((f"FAISS HNSW M={HNSW['m']}", "faiss", {"kind": "hnsw", **HNSW}))
        exact_ids = None
        for name, backend, params in rows:
            result = measure(backend, gallery, queries, exact_ids, **params)
            if exact_ids is None:
                exact_ids = result["found"]
            print(
                f"| {num:,} | {name} | {result['build_s']:.1f} | {result['memory_mb']:.0f} | "
                f"{len(queries)} | {result['qps']:,.0f} | {result['recall']:.3f} |",
                flush=True,
            )
        del gallery


if __name__ == "__main__":
    main()
