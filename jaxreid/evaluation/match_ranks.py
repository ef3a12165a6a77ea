"""Rank of every true match in its query's ranked list, and per-query AP, INP, CMC rank.

The definitions (ranked list, CMC, AP, INP) are in `jaxreid.evaluation.ranking`, which
drives these functions over blocks of query rows. For one block of distance rows (removed
images already +inf), the rank of a true match is the number of kept images before it,
found by one of (same result, different speed):
  'count'   compare the match with every image of its row (few matches per query);
  'filter'  take only the images no farther than the row's farthest match (for a useful
            model a few percent of the gallery), sort those and binary-search the matches;
  'sort'    sort whole rows (NumPy; the fallback when the filter keeps > 15% of images).
Equal distances are resolved exactly by gallery order, so every algorithm returns what a
stable argsort of each row would give. `block_results` turns the ranks into AP, INP and
the standard or identity-level CMC rank of each query.
"""

from __future__ import annotations

import numpy as np

from jaxreid.config import choices
from jaxreid.evaluation.relations import Relations

ALGORITHMS = ("auto", "count", "filter", "sort")
# config.eval.ap: how average precision is computed (jaxreid.evaluation.ranking's docstring).
AP_DEFINITIONS = choices.AP_DEFINITIONS

# Distance elements handled per block of query rows (2**24 floats = 64 MB); also bounds
# the temporaries of 'count'.
BLOCK_ELEMENTS = 1 << 24
# 'auto' counts preceding images when a query has at most this many true matches on
# average, and filters otherwise (crossover measured on the 2-core CPU).
_COUNT_MAX_MEAN_MATCHES = 8
# 'filter' falls back to sorting whole rows when more than this fraction of the images are
# candidates (no farther than a row's farthest match).
_FILTER_MAX_FRACTION = 0.15


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
    step = max(1, BLOCK_ELEMENTS // max(n_cols, 1))
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


class IdentityGroups:
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


def block_results(
    start: int,
    block,
    relations: Relations,
    cmc: str,
    algorithm: str,
    groups: IdentityGroups | None,
    order: np.ndarray,
    ap_definition: str = "non_interpolated",
):
    """Per-query results of one block of rows: (start, valid, ap, inp, cmc_rank).

    `ap_definition`: one of AP_DEFINITIONS (jaxreid.evaluation.ranking's docstring).

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
