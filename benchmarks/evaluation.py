"""Times jaxreid.evaluation against a straightforward per-query NumPy loop.

    python benchmarks/evaluation.py            # full sizes (the naive loops take ~1-2 min)
    python benchmarks/evaluation.py --quick    # smaller problems, for a smoke test

Problems (random features with identity structure, 2048-d float32):
  SYSU-MM01  the full protocol: 4 settings (all/indoor x single/multi-shot) x 10 trials,
             3,803 infrared queries against per-trial galleries drawn from 6,775 RGB images.
             Uses the real rand_perm_cam.mat layout if ../shared/reference/sysu_mm01 (or
             --sysu-dir) holds it, else a synthetic layout of the same size with the seeded
             sampler.
  Market     3,368 queries x 15,913 gallery images, same-identity-and-camera removal.
"features -> metrics" rows include the distance computation ("given the features"). Two
naive baselines: loop A computes the distances with one NumPy (BLAS) matmul per trial and
ranks each query with a stable argsort, as the reference implementations do (mangye16
eval_sysu / torchreid eval_market1501); loop B is a per-query loop throughout, computing
each query's distances to the gallery (a matrix-vector product) before ranking it.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

import jaxreid.evaluation as ev

SYSU_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "..",
    "shared",
    "reference",
    "sysu_mm01",
)
FEATURE_DIM = 2048


# ----------------------------------------------------------------------------- data


def sysu_layout(sysu_dir: str | None, rng: np.random.Generator):
    """{(camera, person): n_images} of the SYSU-MM01 test set, and the permutations if real."""
    perm_path = os.path.join(sysu_dir, "rand_perm_cam.mat") if sysu_dir else None
    id_path = os.path.join(sysu_dir, "test_id.mat") if sysu_dir else None
    if perm_path and os.path.exists(perm_path) and os.path.exists(id_path):
        perms = ev.load_sysu_permutations(perm_path)
        test_ids = set(ev.load_sysu_ids(id_path).tolist())
        layout = {k: v.shape[1] for k, v in perms.items() if k[1] in test_ids}
        return layout, perms
    # synthetic layout of the same size: 96 persons, about 20 images per camera
    layout = {}
    for pid in range(1, 97):
        for cam in (1, 2, 3, 4, 5, 6):
            if cam in (1, 2) and pid > 56:
                continue
            layout[(cam, pid)] = int(rng.integers(13, 30)) if cam in (1, 2) else 20
    return layout, None


def identity_features(ids, centers, rng, noise):
    feats = centers[ids] + noise * rng.standard_normal((len(ids), centers.shape[1]), np.float32)
    return feats.astype(np.float32)


def sysu_problem(sysu_dir, rng, noise=3.0):
    layout, perms = sysu_layout(sysu_dir, rng)
    centers = rng.standard_normal((max(p for _, p in layout) + 1, FEATURE_DIM), np.float32)
    q_ids, q_cams, g_ids, g_cams, g_index = [], [], [], [], []
    for (cam, pid), n in sorted(layout.items()):
        if cam in ev.SYSU_QUERY_CAMERAS:
            q_ids += [pid] * n
            q_cams += [cam] * n
        else:
            g_ids += [pid] * n
            g_cams += [cam] * n
            g_index += list(range(1, n + 1))
    q_ids, g_ids = np.array(q_ids), np.array(g_ids)
    return dict(
        query_feats=identity_features(q_ids, centers, rng, noise),
        query_ids=q_ids,
        query_cams=np.array(q_cams),
        gallery_feats=identity_features(g_ids, centers, rng, noise),
        gallery_ids=g_ids,
        gallery_cams=np.array(g_cams),
        gallery_index=np.array(g_index),
    ), perms


def market_problem(rng, num_query=3368, num_gallery=15913, num_ids=751, noise=3.0):
    centers = rng.standard_normal((num_ids + 1, FEATURE_DIM), np.float32)
    q_ids = rng.integers(1, num_ids + 1, num_query)
    # about 2,800 distractors (label 0), as in Market-1501's gallery
    g_ids = np.where(rng.random(num_gallery) < 0.18, 0, rng.integers(1, num_ids + 1, num_gallery))
    return dict(
        query_feats=identity_features(q_ids, centers, rng, noise),
        query_ids=q_ids,
        query_cams=rng.integers(1, 7, num_query),
        gallery_feats=identity_features(g_ids, centers, rng, noise),
        gallery_ids=g_ids,
        gallery_cams=rng.integers(1, 7, num_gallery),
    )


# ----------------------------------------------------------------------------- naive loops


def numpy_distances(q, g):
    d2 = (q * q).sum(1)[:, None] + (g * g).sum(1)[None, :] - 2.0 * (q @ g.T)
    return np.sqrt(np.maximum(d2, 0.0))


def query_row(dist, feats, i):
    """Distances of query i: a row of `dist`, or, when `feats` = (query_feats,
    gallery_feats, gallery squared norms), computed for this query alone."""
    if feats is None:
        return dist[i]
    q, g, g_sq = feats
    return np.sqrt(np.maximum(g_sq + q[i] @ q[i] - 2.0 * (g @ q[i]), 0.0))


def naive_sysu_trial(dist, q_ids, g_ids, q_cams, g_cams, max_rank=20, feats=None):
    cmc = np.zeros(max_rank)
    aps, inps = [], []
    for i in range(len(q_ids)):
        order = np.argsort(query_row(dist, feats, i), kind="stable")
        keep = ~((q_cams[i] == 3) & (g_cams[order] == 2))
        ranked = g_ids[order][keep]
        match = ranked == q_ids[i]
        if not match.any():
            continue
        _, first = np.unique(ranked, return_index=True)
        unique_ids = ranked[np.sort(first)]
        r = int(np.flatnonzero(unique_ids == q_ids[i])[0])
        if r < max_rank:
            cmc[r:] += 1
        pos = np.flatnonzero(match)
        aps.append(np.mean(np.arange(1, len(pos) + 1) / (pos + 1)))
        inps.append(len(pos) / (pos[-1] + 1))
    return cmc / len(aps), float(np.mean(aps)), float(np.mean(inps))


def naive_sysu(problem, perms, sampler, distmat, trials=10):
    """Per-query loop for every setting and trial; returns (mAP per setting, loop seconds,
    seconds a per-trial NumPy matmul would add to compute the distances, seconds of the
    loop that also computes each query's distances itself)."""
    p = problem
    maps, t_loop, t_dist, t_per_query = {}, 0.0, 0.0, 0.0
    for key, (mode, shots) in ev.SYSU_SETTINGS.items():
        values = []
        for t in range(trials):
            sel = ev.sysu_gallery_selection(
                p["gallery_ids"],
                p["gallery_cams"],
                p["gallery_index"],
                mode=mode,
                shots=shots,
                trial=t,
                sampler=sampler,
                permutations=perms,
            )
            t0 = time.perf_counter()
            numpy_distances(p["query_feats"], p["gallery_feats"][sel])
            t1 = time.perf_counter()
            _, m, _ = naive_sysu_trial(
                distmat[:, sel],
                p["query_ids"],
                p["gallery_ids"][sel],
                p["query_cams"],
                p["gallery_cams"][sel],
            )
            t_dist += t1 - t0
            t_loop += time.perf_counter() - t1
            g = p["gallery_feats"][sel]
            feats = (p["query_feats"], g, (g * g).sum(1))
            t2 = time.perf_counter()
            _, m2, _ = naive_sysu_trial(
                None,
                p["query_ids"],
                p["gallery_ids"][sel],
                p["query_cams"],
                p["gallery_cams"][sel],
                feats=feats,
            )
            t_per_query += time.perf_counter() - t2
            assert abs(m2 - m) < 1e-6, (m2, m)
            values.append(m)
        maps[key] = float(np.mean(values))
    return maps, t_loop, t_dist, t_per_query


def naive_market(problem, dist, max_rank=20, per_query_distances=False):
    p = problem
    g_ids, g_cams = p["gallery_ids"], p["gallery_cams"]
    feats = None
    if per_query_distances:
        g = p["gallery_feats"]
        feats = (p["query_feats"], g, (g * g).sum(1))
    cmc = np.zeros(max_rank)
    aps = []
    for i in range(len(p["query_ids"])):
        order = np.argsort(query_row(dist, feats, i), kind="stable")
        keep = ~((g_ids[order] == p["query_ids"][i]) & (g_cams[order] == p["query_cams"][i]))
        match = g_ids[order][keep] == p["query_ids"][i]
        if not match.any():
            continue
        pos = np.flatnonzero(match)
        if pos[0] < max_rank:
            cmc[pos[0] :] += 1
        aps.append(np.mean(np.arange(1, len(pos) + 1) / (pos + 1)))
    return cmc / len(aps), float(np.mean(aps))


# ----------------------------------------------------------------------------- timing


def best_of(fn, repeats):
    """(best wall time, CPU time of that run, result)."""
    times, result = [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        times.append((time.perf_counter() - t0, time.process_time() - c0))
    wall, cpu = min(times)
    return wall, cpu, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small Market problem")
    parser.add_argument("--repeats", type=int, default=3, help="jaxreid timings: best of N")
    parser.add_argument("--sysu-dir", default=SYSU_DIR)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    sysu, perms = sysu_problem(args.sysu_dir, rng)
    sampler = "official" if perms is not None else "seeded"
    market = market_problem(rng, 500, 3000, 200) if args.quick else market_problem(rng)
    no_feats = {"query_feats": None, "gallery_feats": None}

    # distances computed once, for the "distances -> metrics" rows and the naive loops
    sysu_dist = numpy_distances(sysu["query_feats"], sysu["gallery_feats"])
    t0 = time.perf_counter()
    market_dist = numpy_distances(market["query_feats"], market["gallery_feats"])
    t_market_np_dist = time.perf_counter() - t0

    runs = {
        "sysu": lambda: ev.sysu_mm01_settings(**sysu, sampler=sampler, perm_file=perms),
        "sysu_rank": lambda: ev.sysu_mm01_settings(
            **{**sysu, **no_feats}, sampler=sampler, perm_file=perms, distmat=sysu_dist
        ),
        "market": lambda: ev.market1501(**market),
        "market_rank": lambda: ev.market1501(**{**market, **no_feats}, distmat=market_dist),
    }
    for fn in runs.values():  # compile the distance kernels once
        fn()
    times, cpu, results = {}, {}, {}
    for name, fn in runs.items():
        times[name], cpu[name], results[name] = best_of(fn, args.repeats)

    naive_maps, t_sysu_loop, t_sysu_np_dist, t_sysu_per_query = naive_sysu(
        sysu, perms, sampler, sysu_dist
    )
    t0 = time.perf_counter()
    _, naive_map = naive_market(market, market_dist)
    t_market_loop = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, naive_map2 = naive_market(market, None, per_query_distances=True)
    t_market_per_query = time.perf_counter() - t0
    assert abs(naive_map2 - naive_map) < 1e-6, (naive_map2, naive_map)

    def same(a, b):
        return "yes" if abs(a - b) < 1e-9 else f"no ({a:.6f} vs {b:.6f})"

    q, g = len(market["query_ids"]), len(market["gallery_ids"])
    # (name, jaxreid timing key, loop with one distance matmul, loop computing each query's
    # distances itself (None: the row starts from distances), agreement)
    rows = [
        (
            "SYSU-MM01, 4 settings x 10 trials: features -> metrics",
            "sysu",
            t_sysu_np_dist + t_sysu_loop,
            t_sysu_per_query,
            "-",
        ),
        (
            "SYSU-MM01, 4 settings x 10 trials: distances -> metrics",
            "sysu_rank",
            t_sysu_loop,
            None,
            same(results["sysu_rank"]["all_multi"]["mAP"], naive_maps["all_multi"]),
        ),
        (
            f"Market-1501 size, {q:,} x {g:,}: features -> metrics",
            "market",
            t_market_np_dist + t_market_loop,
            t_market_per_query,
            "-",
        ),
        (
            f"Market-1501 size, {q:,} x {g:,}: distances -> metrics",
            "market_rank",
            t_market_loop,
            None,
            same(results["market_rank"]["mAP"], naive_map),
        ),
    ]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {load:.1f}; "
        f"SYSU sampler: {sampler}; {FEATURE_DIM}-d float32 features; jaxreid: best of "
        f"{args.repeats}, naive loops: one run"
    )
    print(
        "| Problem | jaxreid wall (s) | jaxreid CPU (s) | loop A: NumPy matmul + per-query "
        "ranking (s) | speed-up vs A | loop B: per-query distances and ranking (s) | "
        "speed-up vs B | same mAP |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, key, ta, tb, agree in rows:
        t = times[key]
        b = ("-", "-") if tb is None else (f"{tb:.1f}", f"{tb / t:.1f}x")
        print(
            f"| {name} | {t:.2f} | {cpu[key]:.2f} | {ta:.1f} | {ta / t:.1f}x | {b[0]} | {b[1]} "
            f"| {agree} |"
        )
    for key, res in results["sysu"].items():
        print(f"  SYSU {key}: rank1 {res['rank1']:.4f} mAP {res['mAP']:.4f} mINP {res['mINP']:.4f}")
    print(f"  Market: rank1 {results['market']['rank1']:.4f} mAP {results['market']['mAP']:.4f}")


if __name__ == "__main__":
    main()
