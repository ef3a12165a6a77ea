"""Rank metrics from a distance matrix: CMC, mAP (non-interpolated) and mINP.

Definitions (per query, after the removal rule has taken images out of its ranked list):
  ranked list  gallery images sorted by distance; equal distances keep gallery order
               (a stable sort), so results never depend on the sort algorithm.
  CMC          'standard': rank of the first true match (Market-1501 / torchreid).
               'identity': rank of the true identity after repeated gallery identities
               were removed from the ranked list, keeping each identity's first
               occurrence (SYSU-MM01, Wu et al. 2017, evaluation/get_cmc_multi_cam.m).
  AP           `ap='non_interpolated'` (default): mean over the true matches of
               (matches so far / rank), the non-interpolated average precision that
               torchreid's `eval_market1501` and the SYSU-MM01 / RegDB Python evaluation
               (mangye16/Cross-Modal-Re-ID-baseline eval_metrics.py) compute.
               `ap='trapezoid'`: precision integrated over recall with the trapezoid rule,
               mean over the true matches of (precision before the match + precision at
               it) / 2, where the precision before the first-ranked image is 1: the official
               Market-1501 evaluation code of Zheng et al. 2015 (compute_AP.m; also
               evaluate.py of layumi/Person_reID_baseline_pytorch).
  INP          (number of true matches) / (rank of the last true match); mINP is its mean
               (Ye et al. 2021, "Deep Learning for Person Re-identification: A Survey and
               Outlook"; as mangye16/Cross-Modal-Re-ID-baseline eval_metrics.py computes it).
Queries without any true match left after removal are not counted (`num_valid`).

How it is computed: blocks of query rows, in NUM_THREADS threads. The distances of removed
images are set to +inf. The rank of a true match is the number of kept images before it,
found by one of (same result, different speed):
  'count'   compare the match with every image of its row (few matches per query);
  'filter'  take only the images no farther than the row's farthest match (for a useful
            model a few percent of the gallery), sort those and binary-search the matches;
  'sort'    sort whole rows (NumPy; the fallback when the filter keeps > 15% of images).
NumPy's sort is used because on the 2-core CPU it sorts a 3,368 x 15,913 float32 matrix in
0.19 s, where `jnp.sort` needs 1.3 s for 500 of those rows (about 45x slower per row) and a
stable `np.argsort` 3.1 s (measured 2026-11-20). Equal distances are resolved exactly by
gallery order, so every algorithm returns what a stable argsort of each row would give.
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import os
from typing import Iterable, Iterator, Mapping

import numpy as np

REMOVAL_RULES = ("same_camera", "same_location", "paired_frame", "none")
CMC_MODES = ("standard", "identity")
ALGORITHMS = ("auto", "count", "filter", "sort")
# config.eval.ap: how average precision is computed (see the module docstring).
AP_DEFINITIONS = ("non_interpolated", "trapezoid")

# Wu et al. 2017, evaluation/evaluation_SYSU_MM01.m: `cam_id = [1 2 2 4 5 6]`, "camera 2 and
# 3 are in the same location". Cameras not listed are their own location.
SYSU_LOCATIONS: Mapping[int, int] = {1: 1, 2: 2, 3: 2, 4: 4, 5: 5, 6: 6}

# Distance elements handled per block of query rows (2**24 floats = 64 MB).
_BLOCK_ELEMENTS = 1 << 24
# Threads ranking blocks of rows concurrently.
NUM_THREADS = min(4, os.cpu_count() or 1)
# Blocks are split so that every thread gets work, down to this many rows per block.
_MIN_BLOCK_ROWS = 256
# 'auto' counts preceding images when a query has at most this many true matches on
# average, and filters otherwise (crossover measured on the 2-core CPU).
_COUNT_MAX_MEAN_MATCHES = 8
# 'filter' falls back to sorting whole rows when more than this fraction of the images are
# candidates (no farther than a row's farthest match).
_FILTER_MAX_FRACTION = 0.15


def _as_1d(x, name: str, n: int | None = None) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {x.shape}")
    if n is not None and x.shape[0] != n:
        raise ValueError(
            f"{name}: expected {n} entries to match the distance matrix, got {x.shape[0]}"
        )
    return x


def _joint_codes(q: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes such that q_code[i] == g_code[j] iff q[i] == g[j] (any comparable dtype)."""
    both = np.concatenate([q, g])
    _, inv = np.unique(both, return_inverse=True)
    inv = inv.reshape(-1).astype(np.int64)
    return inv[: len(q)], inv[len(q) :]


def _frame_codes(q: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of frame keys; empty or None keys are unpaired and never match anything."""
    if q.dtype.kind in "iu" and g.dtype.kind in "iu":
        return _joint_codes(q, g)

    def as_str(x):
        return np.array(
            [
                "" if v is None else v.decode() if isinstance(v, bytes) else str(v)
                for v in x.tolist()
            ],
            dtype=str,
        )

    qs, gs = as_str(q), as_str(g)
    qc, gc = _joint_codes(qs, gs)
    qc[qs == ""] = -1
    gc[gs == ""] = -2
    return qc, gc


class _KeyIndex:
    """All (query, gallery) pairs with equal integer keys, rows then gallery order."""

    def __init__(self, gallery_keys: np.ndarray):
        self.perm = np.argsort(gallery_keys, kind="stable")
        self.sorted = gallery_keys[self.perm]

    def pairs(self, query_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo = np.searchsorted(self.sorted, query_keys, "left")
        hi = np.searchsorted(self.sorted, query_keys, "right")
        counts = hi - lo
        total = int(counts.sum())
        rows = np.repeat(np.arange(len(query_keys)), counts)
        offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        cols = self.perm[np.repeat(lo, counts) + offsets]
        return rows, cols


class _Relations:
    """Which gallery images are true matches and which are removed, per query."""

    def __init__(
        self,
        query_ids,
        gallery_ids,
        query_cams,
        gallery_cams,
        removal,
        query_frames,
        gallery_frames,
        locations,
        num_query,
        num_gallery,
    ):
        if removal not in REMOVAL_RULES:
            raise ValueError(f"removal={removal!r}; expected one of {REMOVAL_RULES}")
        self.removal = removal
        q_ids = _as_1d(query_ids, "query_ids", num_query)
        g_ids = _as_1d(gallery_ids, "gallery_ids", num_gallery)
        self.q_id, self.g_id = _joint_codes(q_ids, g_ids)
        self.id_index = _KeyIndex(self.g_id)
        if removal in ("same_camera", "same_location"):
            if query_cams is None or gallery_cams is None:
                raise ValueError(
                    f"removal={removal!r} needs query_cams and gallery_cams; "
                    "pass removal='none' to keep every gallery image"
                )
            q_cams = _as_1d(query_cams, "query_cams", num_query)
            g_cams = _as_1d(gallery_cams, "gallery_cams", num_gallery)
        if removal == "same_camera":
            self.q_cam, self.g_cam = _joint_codes(q_cams, g_cams)
            n_cam = int(max(self.q_cam.max(initial=0), self.g_cam.max(initial=0))) + 1
            self.g_idcam_index = _KeyIndex(self.g_id * n_cam + self.g_cam)
            self.q_idcam = self.q_id * n_cam + self.q_cam
        elif removal == "same_location":
            loc = dict(SYSU_LOCATIONS if locations is None else locations)
            self.q_loc = np.array([loc.get(c, c) for c in q_cams.tolist()])
            self.g_loc = np.array([loc.get(c, c) for c in g_cams.tolist()])
            self.q_loc, self.g_loc = _joint_codes(self.q_loc, self.g_loc)
            self.g_cols_by_loc = {
                int(v): np.nonzero(self.g_loc == v)[0] for v in np.unique(self.g_loc)
            }
        elif removal == "paired_frame":
            if query_frames is None or gallery_frames is None:
                raise ValueError("removal='paired_frame' needs query_frames and gallery_frames")
            qf = _as_1d(query_frames, "query_frames", num_query)
            gf = _as_1d(gallery_frames, "gallery_frames", num_gallery)
            self.q_frame, self.g_frame = _frame_codes(qf, gf)
            self.frame_index = _KeyIndex(self.g_frame)

    def apply(self, block: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
        """Sets removed entries of `block` (rows start..) to +inf; returns kept true matches.

        Returns (rows, cols): row within the block and gallery column of every kept true
        match, sorted by row, then by column.
        """
        n = block.shape[0]
        sl = slice(start, start + n)
        rows, cols = self.id_index.pairs(self.q_id[sl])
        if self.removal == "same_camera":
            r, c = self.g_idcam_index.pairs(self.q_idcam[sl])
            block[r, c] = np.inf
            keep = self.g_cam[cols] != self.q_cam[sl][rows]
        elif self.removal == "same_location":
            q_loc = self.q_loc[sl]
            for value in np.unique(q_loc):
                g_cols = self.g_cols_by_loc.get(int(value))
                if g_cols is not None and len(g_cols):
                    block[np.ix_(np.nonzero(q_loc == value)[0], g_cols)] = np.inf
            keep = self.g_loc[cols] != q_loc[rows]
        elif self.removal == "paired_frame":
            r, c = self.frame_index.pairs(self.q_frame[sl])
            block[r, c] = np.inf
            keep = self.g_frame[cols] != self.q_frame[sl][rows]
        else:
            return rows, cols
        return rows[keep], cols[keep]


def _lower_bound_rows(sorted_rows: np.ndarray, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """np.searchsorted(sorted_rows[rows[i]], values[i], 'left') for all i, vectorised."""
    n_cols = sorted_rows.shape[1]
    flat = sorted_rows.reshape(-1)
    base = rows.astype(np.int64) * n_cols
    count = np.zeros(len(rows), np.int64)  # elements known to be < value
    step = 1 << max(n_cols.bit_length() - 1, 0)
    while step:
        cand = count + step
        ok = cand <= n_cols
        probe = flat[base + np.minimum(cand, n_cols) - 1]
        count = np.where(ok & (probe < values), cand, count)
        step >>= 1
    return count


def _count_preceding(block, rows, cols, values, order, equal_only=False) -> np.ndarray:
    """Per match i: kept images ranked before it: d < d_i, or d == d_i and earlier in gallery
    order (`order[col]`: position of column `col` in the gallery order)."""
    n_cols = block.shape[1]
    out = np.empty(len(rows), np.int64)
    step = max(1, _BLOCK_ELEMENTS // max(n_cols, 1))
    for a in range(0, len(rows), step):
        b = min(a + step, len(rows))
        d = block[rows[a:b]]
        v = values[a:b, None]
        before = (d == v) & (order[None, :] < order[cols[a:b], None])
        if not equal_only:
            before |= d < v
        out[a:b] = np.count_nonzero(before, axis=1)
    return out


def _orderable(values: np.ndarray) -> np.ndarray:
    """float32 -> uint32 keys in the same order; -0.0 and +0.0 get one key (they are equal)."""
    v = np.ascontiguousarray(values, np.float32) + np.float32(0.0)  # -0.0 + 0.0 == +0.0
    u = v.view(np.uint32)
    return np.where(u >> np.uint32(31), ~u, u | np.uint32(0x80000000))


def _row_keys(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(row, value) -> uint64 keys ordered by row, then value."""
    return (rows.astype(np.uint64) << np.uint64(32)) | _orderable(values).astype(np.uint64)


def _candidates(block, rows, thresholds):
    """(rows, cols, values) of the images with distance <= the threshold of their row
    (`thresholds[i]` for row `rows[i]`, -inf elsewhere); None if they are too many."""
    limit = np.full(block.shape[0], -np.inf, block.dtype)
    limit[rows] = thresholds
    mask = block <= limit[:, None]  # removed images are +inf: never candidates
    if np.count_nonzero(mask) > _FILTER_MAX_FRACTION * block.size:
        return None
    flat = np.flatnonzero(mask)  # 2-3x faster than a 2-D np.nonzero
    rows_c = flat // block.shape[1]
    return rows_c, flat - rows_c * block.shape[1], block.reshape(-1)[flat]


def _filter_ranks(block, rows, cols, values, order):
    """Ranks of the matches from the candidates: kept images no farther than the farthest
    kept match of their row (only they can precede a match).

    Returns (ranks, (rows_c, cols_c, values_c)), or None if the candidates are too many for
    this to beat sorting the rows.
    """
    first_rows, starts = np.unique(rows, return_index=True)
    candidates = _candidates(block, first_rows, np.maximum.reduceat(values, starts))
    if candidates is None:
        return None
    rows_c, cols_c, values_c = candidates
    keys = np.sort(_row_keys(rows_c, values_c))
    match_keys = _row_keys(rows, values)
    at = np.searchsorted(keys, match_keys, "left")
    ranks = at - np.searchsorted(keys, rows.astype(np.uint64) << np.uint64(32), "left")
    # keys[at] is the first key equal to the match's own; another equal key means a tie
    tied = np.nonzero(keys[np.minimum(at + 1, len(keys) - 1)] == match_keys)[0]
    tied = tied[at[tied] + 1 < len(keys)]
    if len(tied):  # equal distances: the earlier gallery column ranks first
        ranks[tied] += _count_preceding(
            block, rows[tied], cols[tied], values[tied], order, equal_only=True
        )
    return ranks, candidates


def _match_ranks(block, rows, cols, values, algorithm, order):
    """0-based rank of every kept true match among the kept images of its row.

    Returns (ranks, candidates): candidates (rows, cols, values) of the images that can
    precede a match when the 'filter' algorithm ran, else None.
    """
    if len(rows) == 0:
        return np.zeros(0, np.int64), None
    if algorithm == "auto":
        mean_matches = len(rows) / max(block.shape[0], 1)
        algorithm = "count" if mean_matches <= _COUNT_MAX_MEAN_MATCHES else "filter"
    if algorithm == "count":
        return _count_preceding(block, rows, cols, values, order), None
    if algorithm == "filter" and block.dtype == np.float32:
        result = _filter_ranks(block, rows, cols, values, order)
        if result is not None:
            return result
    sorted_rows = np.sort(block, axis=1)
    left = _lower_bound_rows(sorted_rows, rows, values)
    # sorted_rows[row, left] is the first value equal to the match's own distance; another
    # equal value follows iff the distance is tied.
    n_cols = block.shape[1]
    after = np.minimum(left + 1, n_cols - 1)
    tied = np.nonzero((left + 1 < n_cols) & (sorted_rows[rows, after] == values))[0]
    if len(tied):  # equal distances: the earlier gallery column ranks first
        left[tied] += _count_preceding(
            block, rows[tied], cols[tied], values[tied], order, equal_only=True
        )
    return left, None


def _identity_ranks_from_candidates(
    candidates, n, valid_rows, q_id, g_id, first_cols, first_values, order
) -> np.ndarray:
    """Identity-level rank: distinct other identities among the candidates ranked before
    each row's first match (all of them are candidates)."""
    rows_c, cols_c, values_c = candidates
    d1 = np.full(n, -np.inf, values_c.dtype)
    d1[valid_rows] = first_values
    o1 = np.full(n, -1, np.int64)
    o1[valid_rows] = order[first_cols]
    ids = g_id[cols_c]
    # (the row's own identity is never ahead of its first match)
    ahead = (values_c < d1[rows_c]) | ((values_c == d1[rows_c]) & (order[cols_c] < o1[rows_c]))
    n_codes = int(g_id.max(initial=0)) + 1
    pairs = np.unique(rows_c[ahead].astype(np.int64) * n_codes + ids[ahead])
    return np.bincount(pairs // n_codes, minlength=n)[valid_rows]


class _IdentityGroups:
    """Gallery columns grouped by identity code, for identity-level CMC."""

    def __init__(self, g_id: np.ndarray):
        self.perm = np.argsort(g_id, kind="stable")
        self.codes, self.starts = np.unique(g_id[self.perm], return_index=True)
        self.ends = np.append(self.starts[1:], len(g_id))
        # Runs of equal identities in gallery order: the per-identity minimum is a minimum
        # over runs, so galleries ordered by camera then identity (SYSU) need no gather.
        self.run_starts = (
            np.flatnonzero(np.r_[True, g_id[1:] != g_id[:-1]])
            if len(g_id)
            else np.zeros(0, np.int64)
        )
        run_ids = g_id[self.run_starts]
        self.run_perm = np.argsort(run_ids, kind="stable")
        _, self.run_group_starts = np.unique(run_ids[self.run_perm], return_index=True)
        # one run per identity, in identity order: the run minima are the identity minima
        self.direct = len(self.run_starts) == len(self.codes) and bool(
            np.all(self.run_perm[1:] > self.run_perm[:-1])
        )

    def minima(self, block: np.ndarray) -> np.ndarray:
        """[n, G] -> [n, n_identities] minimum distance per identity (codes ascending)."""
        runs = np.minimum.reduceat(block, self.run_starts, axis=1)
        if self.direct:
            return runs
        return np.minimum.reduceat(
            np.take(runs, self.run_perm, axis=1), self.run_group_starts, axis=1
        )

    def identity_ranks(self, block, q_codes, first_cols, first_values, order) -> np.ndarray:
        """0-based rank of each query's identity in its identity-deduplicated ranked list.

        block: [n, G] with removed entries +inf; q_codes [n] identity codes; first_cols /
        first_values [n]: column and distance of each query's first true match.
        """
        best = self.minima(block)
        v = first_values[:, None]
        ahead = np.count_nonzero(best < v, axis=1)
        own = np.searchsorted(self.codes, q_codes)
        tie = best == v
        tie[np.arange(len(q_codes)), own] = False  # own identity: its first match is v itself
        for r, k in zip(*np.nonzero(tie)):
            group = self.perm[self.starts[k] : self.ends[k]]
            early = group[order[group] < order[first_cols[r]]]
            if np.any(block[r, early] == first_values[r]):
                ahead[r] += 1
        return ahead


def _block_results(
    start: int,
    block,
    relations: _Relations,
    cmc: str,
    algorithm: str,
    groups: _IdentityGroups | None,
    order: np.ndarray,
    ap_definition: str = "non_interpolated",
):
    """Per-query results of one block of rows: (start, valid, ap, inp, cmc_rank).

    `block` is a writable [n, G] array, or a function returning one (so that gathering the
    block also runs in the worker thread).
    """
    if callable(block):
        block = block()
    n = block.shape[0]
    valid = np.zeros(n, bool)
    ap = np.full(n, np.nan)
    inp = np.full(n, np.nan)
    cmc_rank = np.full(n, -1, np.int64)
    rows, cols = relations.apply(block, start)
    if len(rows) == 0:
        return start, valid, ap, inp, cmc_rank
    values = block[rows, cols]
    ranks, candidates = _match_ranks(block, rows, cols, values, algorithm, order)
    by_rank = np.lexsort((ranks, rows))
    rows, cols, values, ranks = rows[by_rank], cols[by_rank], values[by_rank], ranks[by_rank]
    n_match = np.bincount(rows, minlength=n)
    first = np.cumsum(n_match) - n_match  # index of each row's first match
    k = np.arange(len(rows)) - first[rows] + 1
    valid = n_match > 0
    precision = k / (ranks + 1.0)
    if ap_definition == "trapezoid":
        # Precision just before the match: (k - 1) / rank0; 1 before the first-ranked image.
        before = np.where(ranks > 0, (k - 1) / np.maximum(ranks, 1.0), 1.0)
        precision = (before + precision) / 2.0
    ap[valid] = (np.bincount(rows, precision, minlength=n) / np.maximum(n_match, 1))[valid]
    last = ranks[first[valid] + n_match[valid] - 1]
    inp[valid] = n_match[valid] / (last + 1.0)
    if cmc == "standard":
        cmc_rank[valid] = ranks[first[valid]]
        return start, valid, ap, inp, cmc_rank
    valid_rows = np.nonzero(valid)[0]
    first_cols, first_values = cols[first[valid]], values[first[valid]]
    q_id = relations.q_id[start : start + n]
    if candidates is None:  # the images no farther than each row's first match, if few
        candidates = _candidates(block, valid_rows, first_values)
    if candidates is not None:
        cmc_rank[valid] = _identity_ranks_from_candidates(
            candidates, n, valid_rows, q_id, relations.g_id, first_cols, first_values, order
        )
    else:
        sub = block if len(valid_rows) == n else block[valid_rows]
        cmc_rank[valid] = groups.identity_ranks(
            sub, q_id[valid_rows], first_cols, first_values, order
        )
    return start, valid, ap, inp, cmc_rank


def _evaluate_blocks(
    blocks: Iterable[tuple[int, np.ndarray]],
    relations: _Relations,
    num_query: int,
    cmc: str,
    algorithm: str,
    gallery_order: np.ndarray | None = None,
    ap: str = "non_interpolated",
) -> dict[str, np.ndarray]:
    """Per-query results over blocks of distance rows: valid, ap, inp, cmc_rank (0-based).

    Blocks are processed by NUM_THREADS threads (NumPy's sort, take and reductions release
    the GIL), at most NUM_THREADS + 1 blocks in memory at a time.
    """
    if cmc not in CMC_MODES:
        raise ValueError(f"cmc={cmc!r}; expected one of {CMC_MODES}")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm={algorithm!r}; expected one of {ALGORITHMS}")
    if ap not in AP_DEFINITIONS:
        raise ValueError(f"ap={ap!r}; expected one of {AP_DEFINITIONS}")
    out = {
        "valid": np.zeros(num_query, bool),
        "ap": np.full(num_query, np.nan),
        "inp": np.full(num_query, np.nan),
        "cmc_rank": np.full(num_query, -1, np.int64),
    }
    groups = _IdentityGroups(relations.g_id) if cmc == "identity" else None
    # position of each column in the gallery order, which breaks ties between equal distances
    order = np.arange(len(relations.g_id)) if gallery_order is None else np.asarray(gallery_order)

    def store(result):
        start, valid, ap, inp, cmc_rank = result
        sl = slice(start, start + len(valid))
        out["valid"][sl], out["ap"][sl], out["inp"][sl], out["cmc_rank"][sl] = (
            valid,
            ap,
            inp,
            cmc_rank,
        )

    if NUM_THREADS <= 1:
        for start, block in blocks:
            store(_block_results(start, block, relations, cmc, algorithm, groups, order, ap))
        return out
    pending = collections.deque()
    with concurrent.futures.ThreadPoolExecutor(NUM_THREADS) as pool:
        for start, block in blocks:
            if len(pending) >= NUM_THREADS:
                store(pending.popleft().result())
            pending.append(
                pool.submit(
                    _block_results, start, block, relations, cmc, algorithm, groups, order, ap
                )
            )
        while pending:
            store(pending.popleft().result())
    return out


def _summarise(per_query: Mapping[str, np.ndarray], max_rank: int, per_query_out: bool) -> dict:
    valid = per_query["valid"]
    num_valid = int(valid.sum())
    if num_valid == 0:
        result = {
            "cmc": np.full(max_rank, np.nan),
            "mAP": float("nan"),
            "mINP": float("nan"),
            "num_valid": 0,
        }
    else:
        ranks = per_query["cmc_rank"][valid]
        hist = np.bincount(ranks[ranks < max_rank], minlength=max_rank)[:max_rank]
        result = {
            "cmc": np.cumsum(hist) / num_valid,
            "mAP": float(np.mean(per_query["ap"][valid])),
            "mINP": float(np.mean(per_query["inp"][valid])),
            "num_valid": num_valid,
        }
    result["num_queries"] = int(len(valid))
    if per_query_out:
        result["per_query"] = {
            "valid": valid,
            "ap": per_query["ap"],
            "inp": per_query["inp"],
            # 1-based rank used by the CMC (0 for queries without a true match)
            "match_rank": np.where(valid, per_query["cmc_rank"] + 1, 0),
        }
    return result


def _block_rows(num_query: int, num_gallery: int) -> int:
    """Rows per block: at most _BLOCK_ELEMENTS distances, and work for every thread."""
    rows = max(1, _BLOCK_ELEMENTS // max(num_gallery, 1))
    per_thread = -(-num_query // max(NUM_THREADS, 1))
    return max(1, min(rows, max(per_thread, _MIN_BLOCK_ROWS)))


def _check_max_rank(max_rank) -> int:
    if int(max_rank) < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    return int(max_rank)


def _distmat_blocks(distmat: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    num_q, num_g = distmat.shape
    rows = _block_rows(num_q, num_g)
    for start in range(0, num_q, rows):
        block = np.array(distmat[start : start + rows], copy=True)
        # min/max are cheaper than isfinite(): no boolean temporary; NaN propagates
        if block.size and not (np.isfinite(block.min()) and np.isfinite(block.max())):
            r, c = np.argwhere(~np.isfinite(block))[0]
            raise ValueError(
                f"distmat: non-finite distance {block[r, c]} at query {start + r}, gallery {c}"
            )
        yield start, block


def _rank_blocks(
    blocks: Iterable[tuple[int, np.ndarray]],
    num_query: int,
    num_gallery: int,
    query_ids,
    gallery_ids,
    query_cams=None,
    gallery_cams=None,
    *,
    removal: str,
    cmc: str,
    max_rank: int,
    query_frames=None,
    gallery_frames=None,
    locations=None,
    algorithm: str = "auto",
    per_query: bool = False,
    gallery_order: np.ndarray | None = None,
    ap: str = "non_interpolated",
) -> dict:
    """`rank` over blocks `(start, [n, G] writable float array)` of a distance matrix.

    gallery_order: [G] position of each column in the gallery order that breaks ties
    (default: the column order), so columns may be stored in any order.
    """
    max_rank = _check_max_rank(max_rank)
    relations = _Relations(
        query_ids,
        gallery_ids,
        query_cams,
        gallery_cams,
        removal,
        query_frames,
        gallery_frames,
        locations,
        num_query,
        num_gallery,
    )
    per = _evaluate_blocks(blocks, relations, num_query, cmc, algorithm, gallery_order, ap)
    return _summarise(per, max_rank, per_query)


def _column_blocks(distmat: np.ndarray, cols: np.ndarray) -> Iterator[tuple[int, object]]:
    """Blocks of `distmat[:, cols]`, a few query rows at a time, as functions making copies."""
    rows = _block_rows(distmat.shape[0], len(cols))
    for start in range(0, distmat.shape[0], rows):
        yield start, functools.partial(np.take, distmat[start : start + rows], cols, axis=1)


def rank(
    distmat,
    query_ids,
    gallery_ids,
    query_cams=None,
    gallery_cams=None,
    *,
    removal: str = "same_camera",
    cmc: str = "standard",
    max_rank: int = 20,
    query_frames=None,
    gallery_frames=None,
    locations: Mapping[int, int] | None = None,
    algorithm: str = "auto",
    per_query: bool = False,
    ap: str = "non_interpolated",
) -> dict:
    """CMC, mAP and mINP of a query x gallery distance matrix.

    Args:
      distmat: [Q, G] float distances (smaller = more similar); must be finite.
      query_ids, gallery_ids: [Q], [G] identity labels (ints or strings).
      query_cams, gallery_cams: [Q], [G] camera labels; needed by 'same_camera' and
        'same_location'.
      removal: which gallery images are taken out of each query's ranked list:
        'same_camera'   same identity and same camera (Market-1501 rule);
        'same_location' every gallery image whose camera is at the query camera's
                        location, whatever its identity (SYSU-MM01 rule: camera 3 shares
                        a room with camera 2; see `locations`);
        'paired_frame'  only gallery images whose frame key equals the query's (the exact
                        paired frame; Hafner 2018, journal §4.2);
        'none'          nothing.
      cmc: 'standard' (rank of the first true match) or 'identity' (rank after repeated
        gallery identities are removed from the ranked list, as SYSU-MM01's code does).
      max_rank: length of the returned CMC curve.
      query_frames, gallery_frames: [Q], [G] frame keys for 'paired_frame'; '' or None
        marks an unpaired image.
      locations: camera -> location map for 'same_location' (default SYSU_LOCATIONS;
        cameras not in the map are their own location).
      algorithm: how the rank of each true match is found: 'count' (compare with every
        image; few matches per query), 'filter' (sort only the images no farther than the
        query's farthest match; float32), 'sort' (sort whole rows) or 'auto'. Only the
        speed differs, never the result.
      per_query: also return per-query arrays under 'per_query' (valid, ap, inp,
        match_rank: 1-based CMC rank, 0 if the query has no true match).
      ap: the average-precision definition, one of AP_DEFINITIONS (module docstring).

    Returns:
      dict(cmc=[max_rank] float64, mAP=float, mINP=float, num_valid=int, num_queries=int).
      Queries with no true match after removal are not counted; if none is valid, the
      metrics are NaN.
    """
    max_rank = _check_max_rank(max_rank)
    distmat = np.asarray(distmat)
    if distmat.ndim != 2:
        raise ValueError(f"distmat: expected a [Q, G] matrix, got shape {distmat.shape}")
    if not np.issubdtype(distmat.dtype, np.floating):
        distmat = distmat.astype(np.float64)
    num_q, num_g = distmat.shape
    relations = _Relations(
        query_ids,
        gallery_ids,
        query_cams,
        gallery_cams,
        removal,
        query_frames,
        gallery_frames,
        locations,
        num_q,
        num_g,
    )
    per = _evaluate_blocks(_distmat_blocks(distmat), relations, num_q, cmc, algorithm, ap=ap)
    return _summarise(per, max_rank, per_query)


def rank_features(
    query_feats,
    gallery_feats,
    query_ids,
    gallery_ids,
    query_cams=None,
    gallery_cams=None,
    *,
    metric: str = "euclidean",
    removal: str = "same_camera",
    cmc: str = "standard",
    max_rank: int = 20,
    query_frames=None,
    gallery_frames=None,
    locations: Mapping[int, int] | None = None,
    chunk_size: int | None = None,
    algorithm: str = "auto",
    per_query: bool = False,
    ap: str = "non_interpolated",
) -> dict:
    """`rank` on distances computed block by block from features (JAX).

    Never holds the full [Q, G] matrix: each block of query rows is ranked as soon as its
    distances are computed, so e.g. 20k x 100k needs memory for one block only.

    Args:
      query_feats, gallery_feats: [Q, D], [G, D] float features.
      metric: see `jaxreid.evaluation.distances.METRICS`.
      chunk_size: query rows per block (default: about 2**24 distances per block).
      Other arguments and the result: as for `rank`.
    """
    from jaxreid.evaluation.distances import distance_chunks  # local: keeps rank() JAX-free

    max_rank = _check_max_rank(max_rank)
    num_q, num_g = np.shape(query_feats)[0], np.shape(gallery_feats)[0]
    relations = _Relations(
        query_ids,
        gallery_ids,
        query_cams,
        gallery_cams,
        removal,
        query_frames,
        gallery_frames,
        locations,
        num_q,
        num_g,
    )
    blocks = distance_chunks(
        query_feats, gallery_feats, metric, chunk_size=chunk_size or _block_rows(num_q, num_g)
    )
    per = _evaluate_blocks(blocks, relations, num_q, cmc, algorithm, ap=ap)
    return _summarise(per, max_rank, per_query)


def cmc_at(result: Mapping, ranks=(1, 5, 10, 20)) -> dict[str, float]:
    """{'rank1': cmc[0], 'rank5': cmc[4], ...} from a result dict (NaN beyond max_rank)."""
    curve = np.asarray(result["cmc"])
    return {f"rank{k}": float(curve[k - 1]) if k <= len(curve) else float("nan") for k in ranks}


def average_results(results, ranks=(1, 5, 10, 20)) -> dict:
    """Mean CMC curve, mAP and mINP over trials / repeats (each a `rank` result dict).

    Returns dict(cmc, mAP, mINP, rank1, rank5, rank10, rank20, num_trials); the inputs are
    kept under 'trials'.
    """
    results = list(results)
    if not results:
        raise ValueError("average_results: got no results to average")
    out = {
        "cmc": np.mean(np.stack([np.asarray(r["cmc"], np.float64) for r in results]), axis=0),
        "mAP": float(np.mean([r["mAP"] for r in results])),
        "mINP": float(np.mean([r["mINP"] for r in results])),
    }
    out.update(cmc_at(out, ranks))
    out["num_trials"] = len(results)
    out["trials"] = results
    return out
