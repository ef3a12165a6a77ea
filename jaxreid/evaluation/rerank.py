"""k-reciprocal re-ranking (Zhong et al., "Re-ranking Person Re-identification with
k-reciprocal Encoding", CVPR 2017), computed in JAX in blocks of rows.

Off unless asked for: every protocol function takes `rerank=None | RerankParams`, and a
result computed with it carries `rerank` (the parameters) and `rerank_tag` (printed in the
results' titles, see `describe`).

With all N = Q + G images of one evaluation (queries and gallery) as the neighbour pool:
  d(i, j)     the squared, row-normalised distance: the authors' code (zhunzhong07/
              person-re-ranking, python-version/re_ranking.py) squares the distances it is
              given and divides each row by its maximum; ranking is unchanged by both.
  N(i, k)     the k nearest images of i, i itself included (Eq. 7; k + 1 columns of the
              sorted row, as the code takes `initial_rank[i, :k1 + 1]`).
  R(i, k)     k-reciprocal neighbours: j in N(i, k) with i in N(j, k) (Eq. 8).
  R*(i, k)    R(i, k) united with R(c, round(k / 2)) of every c in R(i, k) that shares
              more than 2/3 of its members with R(i, k) (Eq. 9; the code tests `>`, the
              paper writes >=; we follow the code, whose figures the published tables are).
  V(i, j)     exp(-d(i, j)) for j in R*(i, k1), normalised to sum 1 (Eqs. 11-12).
  V_qe(i)     mean of V over N(i, k2) (local query expansion, Eq. 14).
  d_J(p, g)   1 - sum_j min(V(p,j), V(g,j)) / sum_j max(V(p,j), V(g,j)) (Eqs. 10, 13);
              each row sums to 1, so the denominator is 2 - the numerator.
  d*(p, g)    (1 - lambda) d_J(p, g) + lambda d(p, g) (the final distance, §3.5).
Paper defaults (§4.3 "Parameters"): k1 = 20, k2 = 6, lambda = 0.3.

Memory: the N x N matrices are not formed for large pools (pools of up to 2**27 pairs,
11,585 images, keep their N x N distances on the host between passes instead of computing
them twice). Distances are computed one block of rows at a time (about 2**24 elements), V
is stored sparse (at most (k1 + 1)(round(k1/2) + 2) entries a row before query expansion,
k2 times that after), and d_J is computed for blocks of gallery images against blocks of
queries. Host memory one call adds on the CPU backend, measured with
`python benchmarks/rerank.py --dim 256` (2026-12-07): the peak resident set during the call
(VmHWM, reset just before it) minus the resident set before it; in brackets tracemalloc's
peak over the call, i.e. the NumPy arrays alone:

  Market-1501 size, 3,368 x 15,913 (pool 19,281)   1.0 GB  (0.31 GB; the [Q, G] result 0.20)
  SYSU-MM01 all-search trial, 3,803 x 301 (4,104)  0.4 GB  (0.19 GB; the N x N cache 0.07)

The rest is XLA's buffers: the features' copy (N x D float32; at 2,048-d it is 0.14 GB more,
~1.2 GB in all for Market-1501), blocks of distance rows (2**24 floats) and of the Jaccard
step (2**25). On an accelerator these are device memory instead.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxreid.evaluation import distances

# Zhong et al. 2017, §4.3 "Parameters": k1 = 20, k2 = 6, lambda = 0.3.
PAPER_K1 = 20
PAPER_K2 = 6
PAPER_LAMBDA = 0.3

# Elements of one block of distance rows [rows, N] (2**24 floats = 64 MB).
_BLOCK_ELEMENTS = 1 << 24
# Elements of the [queries, V entries, gallery] block of the Jaccard step.
_JACCARD_ELEMENTS = 1 << 25
# The inverted-index Jaccard step is used when the fullest column of the gallery's V holds
# fewer than 1/_SPARSE_FACTOR of the gallery (it then touches far fewer pairs).
_SPARSE_FACTOR = 4
# Pools of at most this many N x N distances (512 MB) keep them on the host between the
# passes instead of computing them twice (SYSU-MM01 trials: 4,104^2; Market-1501 does not).
_CACHE_ELEMENTS = 1 << 27


@dataclasses.dataclass(frozen=True)
class RerankParams:
    """Parameters of k-reciprocal re-ranking (Zhong et al. 2017, §4.3).

    k1: size of the k-reciprocal neighbourhood (Eq. 8); >= 1.
    k2: neighbours averaged by the local query expansion (Eq. 14); 1 disables it; >= 1.
    lambda_value: weight of the original distance in the final distance, in [0, 1].
    """

    k1: int = PAPER_K1
    k2: int = PAPER_K2
    lambda_value: float = PAPER_LAMBDA

    def __post_init__(self):
        if int(self.k1) != self.k1 or self.k1 < 1:
            raise ValueError(f"rerank k1={self.k1!r}; expected an integer >= 1 (paper: 20)")
        if int(self.k2) != self.k2 or self.k2 < 1:
            raise ValueError(f"rerank k2={self.k2!r}; expected an integer >= 1 (paper: 6)")
        if not 0.0 <= float(self.lambda_value) <= 1.0:
            raise ValueError(
                f"rerank lambda={self.lambda_value!r}; expected a value in [0, 1] (paper: 0.3)"
            )

    @classmethod
    def from_config(cls, eval_config: Mapping) -> RerankParams | None:
        """The parameters of `config.eval` (keys rerank, rerank_k1, rerank_k2, rerank_lambda),
        or None when `config.eval.rerank` is False (the default)."""
        get = eval_config.get
        if not get("rerank", False):
            return None
        return cls(
            k1=int(get("rerank_k1", PAPER_K1)),
            k2=int(get("rerank_k2", PAPER_K2)),
            lambda_value=float(get("rerank_lambda", PAPER_LAMBDA)),
        )

    def as_dict(self) -> dict:
        return {"k1": int(self.k1), "k2": int(self.k2), "lambda": float(self.lambda_value)}


def tag(params: RerankParams | None) -> str:
    """File-name-safe tag: '' when off, else e.g. 'rerank-k1_20-k2_6-l0.3'."""
    if params is None:
        return ""
    return f"rerank-k1_{params.k1}-k2_{params.k2}-l{params.lambda_value:g}"


def describe(params: RerankParams | None) -> str:
    """Text for a results title: '' when off, else
    'k-reciprocal re-ranking (Zhong et al. 2017; k1=20, k2=6, lambda=0.3)'."""
    if params is None:
        return ""
    return (
        f"k-reciprocal re-ranking (Zhong et al. 2017; k1={params.k1}, k2={params.k2}, "
        f"lambda={params.lambda_value:g})"
    )


def annotate(result: dict, params: RerankParams | None) -> dict:
    """Adds 'rerank' (parameters or None) and 'rerank_tag' to a protocol result, in place."""
    result["rerank"] = None if params is None else params.as_dict()
    result["rerank_tag"] = describe(params)
    return result


# ---- kernels ------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("k",))
def _normalised_neighbours(d2, k):
    """d2: [B, N] squared distances -> ([B, k] nearest columns, [B] row maxima)."""
    row_max = jnp.max(d2, axis=1)
    dn = d2 / jnp.where(row_max > 0, row_max, 1.0)[:, None]
    _, idx = lax.top_k(-dn, k)  # equal distances: lower column first
    return idx.astype(jnp.int32), row_max


@functools.partial(jax.jit, static_argnames=("k",))
def _reciprocal(nbr, rows, k):
    """[B, k] mask: is nbr[i, m] (m < k) a k-reciprocal neighbour of row i (Eq. 8)."""
    own = nbr[rows, :k]
    return jnp.any(nbr[own, :k] == rows[:, None, None], axis=2)


@functools.partial(jax.jit, static_argnames=("k", "kh"))
def _expanded_weights(dn, nbr, r_mask, rh_mask, rows, k, kh):
    """Sparse rows of V (Eqs. 9, 11-12): ([B, M] sorted columns, [B, M] weights), M = k(kh+1).

    dn: [B, N] normalised distances of `rows`; r_mask: [B, k] reciprocal mask of `rows`;
    rh_mask: [N, kh] half-size reciprocal masks of every image.
    """
    b, n = dn.shape
    own = nbr[rows, :k]  # candidates c of R(i)
    members = jnp.where(r_mask, own, -1)  # R(i); -1 = not a member
    half = nbr[own, :kh]  # [B, k, kh] N(c, k/2)
    half_ok = rh_mask[own]  # [B, k, kh] R(c, k/2)
    shared = jnp.any(half[..., None] == members[:, None, None, :], axis=-1) & half_ok
    count = jnp.sum(shared, axis=-1)
    size = jnp.sum(half_ok, axis=-1)
    accept = r_mask & (3 * count > 2 * size)  # |R(i) ∩ R(c)| > 2/3 |R(c)|, integers
    expansion = jnp.where(accept[..., None] & half_ok, half, n).reshape(b, -1)
    cols = jnp.concatenate([jnp.where(r_mask, own, n), expansion], axis=1)
    cols = jnp.sort(cols, axis=1)
    first = jnp.concatenate([jnp.ones((b, 1), bool), cols[:, 1:] != cols[:, :-1]], axis=1)
    valid = (cols < n) & first
    cols = jnp.where(valid, cols, 0)
    w = jnp.where(valid, jnp.exp(-jnp.take_along_axis(dn, cols, axis=1)), 0.0)
    total = jnp.sum(w, axis=1, keepdims=True)
    return cols, w / jnp.where(total > 0, total, 1.0)


@functools.partial(jax.jit, static_argnames=("k2",))
def _query_expansion(v_cols, v_vals, nbr, rows, k2):
    """Sparse rows of V_qe = mean of V over N(i, k2) (Eq. 14): (cols, vals, nnz per row)."""
    b = rows.shape[0]
    nb = nbr[rows, :k2]
    cols = v_cols[nb].reshape(b, -1)
    vals = v_vals[nb].reshape(b, -1)
    cols, vals = lax.sort((cols, vals), dimension=1, num_keys=1, is_stable=True)
    start = jnp.concatenate([jnp.ones((b, 1), bool), cols[:, 1:] != cols[:, :-1]], axis=1)
    run = jnp.cumsum(start, axis=1) - 1
    r = jnp.arange(b)[:, None]
    out_vals = jnp.zeros_like(vals).at[r, run].add(vals) / k2
    out_cols = jnp.zeros_like(cols).at[r, run].max(cols)
    return out_cols, out_vals, run[:, -1] + 1


@functools.partial(jax.jit, static_argnames=("n",))
def _dense_columns(cols, vals, n):
    """Sparse rows ([Bg, L] cols, vals) -> dense transposed block [n, Bg]."""
    bg = cols.shape[0]
    return jnp.zeros((n, bg), jnp.float32).at[cols, jnp.arange(bg)[:, None]].add(vals)


@jax.jit
def _final_block(q_cols, q_vals, dense_g, dn_qg, lam):
    """(1 - lam) * Jaccard distance + lam * dn_qg for [Bq] queries x [Bg] gallery images."""
    g = dense_g[q_cols]  # [Bq, L, Bg]
    s = jnp.sum(jnp.minimum(q_vals[..., None], g), axis=1)
    jaccard = 1.0 - s / (2.0 - s)
    return jaccard * (1.0 - lam) + dn_qg * lam


# ---- distance rows ------------------------------------------------------------------------


def _feature_rows(feats: np.ndarray, metric: str) -> Callable[[np.ndarray], jax.Array]:
    """rows [B] -> [B, N] distances from features (diagonal exactly 0)."""
    x = jnp.asarray(feats)
    aux = distances.gallery_aux(x, metric)

    def rows_fn(rows):
        d = distances.distance_block(x[rows], x, aux, metric)
        return _zero_self(d, jnp.asarray(rows))

    return rows_fn


@jax.jit
def _zero_self(d, rows):
    return d.at[jnp.arange(d.shape[0]), rows].set(0.0)


def _matrix_rows(q_g, q_q, g_g) -> Callable[[np.ndarray], jax.Array]:
    """rows [B] -> [B, N] rows of [[q_q, q_g], [q_g.T, g_g]] (host matrices)."""
    num_q = q_q.shape[0]

    def rows_fn(rows):
        out = np.empty((len(rows), num_q + g_g.shape[0]), np.float32)
        is_q = rows < num_q
        qr, gr = rows[is_q], rows[~is_q] - num_q
        out[is_q, :num_q] = q_q[qr]
        out[is_q, num_q:] = q_g[qr]
        out[~is_q, :num_q] = q_g[:, gr].T
        out[~is_q, num_q:] = g_g[gr]
        return jnp.asarray(out)

    return rows_fn


@jax.jit
def _square(d):
    return d * d


# ---- driver -------------------------------------------------------------------------------


def _blocks(n: int, size: int):
    """(start, padded row indices [size], count) covering 0..n-1; padding repeats row 0."""
    for start in range(0, n, size):
        count = min(size, n - start)
        rows = np.zeros(size, np.int32)
        rows[:count] = np.arange(start, start + count, dtype=np.int32)
        yield start, rows, count


def _rerank(rows_fn, num_q: int, num_g: int, params: RerankParams, block_elements: int):
    n = num_q + num_g
    k = min(params.k1 + 1, n)  # N(i, k1): k1 + 1 columns including i
    kh = min(int(np.around(params.k1 / 2.0)) + 1, n)  # the code's np.around(k1 / 2) + 1
    k2 = min(params.k2, n)
    kk = max(k, k2)
    size = max(1, min(n, block_elements // max(n, k * kh * k)))
    cache = np.empty((n, n), np.float32) if n * n <= _CACHE_ELEMENTS else None

    def dist_rows(rows, count=None):  # squared, as the authors' code squares d
        if cache is not None and count is None:
            return jnp.asarray(cache[rows])
        d2 = _square(rows_fn(rows))
        if cache is not None:
            cache[rows[:count]] = np.asarray(d2)[:count]
        return d2

    # Pass 1: nearest neighbours, row maxima, and the normalised query-gallery distances.
    nbr = np.empty((n, kk), np.int32)
    row_max = np.empty(n, np.float32)
    out = np.empty((num_q, num_g), np.float32)
    for start, rows, count in _blocks(n, size):
        d2 = dist_rows(rows, count)
        idx, mx = _normalised_neighbours(d2, kk)
        nbr[start : start + count] = np.asarray(idx)[:count]
        row_max[start : start + count] = np.asarray(mx)[:count]
        nq = min(count, num_q - start)
        if nq > 0:
            block = np.asarray(d2[:nq, num_q:])
            scale = np.asarray(mx)[:nq]
            out[start : start + nq] = block / np.where(scale > 0, scale, 1.0)[:, None]
    nbr_dev = jnp.asarray(nbr)

    # Pass 2: reciprocal masks (Eq. 8) at k and at the half size.
    r_mask = np.empty((n, k), bool)
    rh_mask = np.empty((n, kh), bool)
    for start, rows, count in _blocks(n, size):
        r = jnp.asarray(rows)
        r_mask[start : start + count] = np.asarray(_reciprocal(nbr_dev, r, k))[:count]
        rh_mask[start : start + count] = np.asarray(_reciprocal(nbr_dev, r, kh))[:count]
    rh_dev = jnp.asarray(rh_mask)

    # Pass 3: V, sparse (Eqs. 9, 11-12).
    m = k * (kh + 1)
    v_cols = np.empty((n, m), np.int32)
    v_vals = np.empty((n, m), np.float32)
    for start, rows, count in _blocks(n, size):
        d2 = dist_rows(rows)
        mx = jnp.asarray(row_max[rows])
        dn = d2 / jnp.where(mx > 0, mx, 1.0)[:, None]
        cols, vals = _expanded_weights(
            dn, nbr_dev, jnp.asarray(r_mask[rows]), rh_dev, jnp.asarray(rows), k, kh
        )
        v_cols[start : start + count] = np.asarray(cols)[:count]
        v_vals[start : start + count] = np.asarray(vals)[:count]

    # Pass 4: local query expansion (Eq. 14), trimmed to the widest row.
    if k2 > 1:
        cols_dev, vals_dev = jnp.asarray(v_cols), jnp.asarray(v_vals)
        parts, width = [], 1
        qe_size = max(1, min(n, block_elements // (k2 * m)))
        for start, rows, count in _blocks(n, qe_size):
            c, v, nnz = _query_expansion(cols_dev, vals_dev, nbr_dev, jnp.asarray(rows), k2)
            nnz = int(np.max(np.asarray(nnz)[:count]))
            width = max(width, nnz)
            parts.append((np.asarray(c)[:count, :nnz], np.asarray(v)[:count, :nnz]))
        v_cols = np.zeros((n, width), np.int32)
        v_vals = np.zeros((n, width), np.float32)
        start = 0
        for c, v in parts:
            v_cols[start : start + len(c), : c.shape[1]] = c
            v_vals[start : start + len(c), : v.shape[1]] = v
            start += len(c)
    width = v_cols.shape[1]

    # Pass 5: Jaccard distance and the final mix.
    lam = jnp.float32(params.lambda_value)
    g_vals = v_vals[num_q:]
    g_keep = g_vals > 0
    col_counts = np.bincount(v_cols[num_q:][g_keep], minlength=n)
    if _SPARSE_FACTOR * int(col_counts.max(initial=1)) < num_g:
        _jaccard_inverted(out, v_cols, v_vals, num_q, num_g, n, col_counts, lam, block_elements)
    else:
        _jaccard_dense(out, v_cols, v_vals, num_q, num_g, n, width, lam, block_elements)
    return out


def _jaccard_inverted(out, v_cols, v_vals, num_q, num_g, n, col_counts, lam, block_elements):
    """d* from an inverted index of the gallery rows of V: per column, the gallery images
    with a non-zero entry there ([N, C] padded, C = the fullest column); each query entry
    meets only those, ~C instead of G images (Zhong et al.'s own implementation inverts V
    the same way)."""
    g_cols, g_vals = v_cols[num_q:], v_vals[num_q:]
    keep = g_vals > 0
    g_rows = np.broadcast_to(np.arange(num_g, dtype=np.int32)[:, None], g_cols.shape)[keep]
    cols, vals = g_cols[keep], g_vals[keep]
    order = np.argsort(cols, kind="stable")
    cols, g_rows, vals = cols[order], g_rows[order], vals[order]
    width_c = int(col_counts.max(initial=1))
    starts = np.concatenate([[0], np.cumsum(col_counts)[:-1]])
    slot = np.arange(len(cols)) - starts[cols]
    inv_rows = np.full((n, width_c), num_g, np.int32)  # num_g: a dropped dummy column
    inv_vals = np.zeros((n, width_c), np.float32)
    inv_rows[cols, slot] = g_rows
    inv_vals[cols, slot] = vals
    inv_rows, inv_vals = jnp.asarray(inv_rows), jnp.asarray(inv_vals)
    width = v_cols.shape[1]
    q_size = max(1, min(num_q, block_elements // max(width * width_c, num_g + 1)))
    for q_start, q_rows, q_count in _blocks(num_q, q_size):
        dn = np.zeros((q_size, num_g), np.float32)
        dn[:q_count] = out[q_start : q_start + q_count]
        block = _final_inverted(
            jnp.asarray(v_cols[q_rows]), jnp.asarray(v_vals[q_rows]), inv_rows, inv_vals, dn, lam
        )
        out[q_start : q_start + q_count] = np.asarray(block)[:q_count]


@jax.jit
def _final_inverted(q_cols, q_vals, inv_rows, inv_vals, dn_qg, lam):
    """[Bq, G] d* from sparse query rows and the gallery's inverted index."""
    bq, num_g = dn_qg.shape
    g = inv_rows[q_cols]  # [Bq, L, C] gallery images sharing each query column
    m = jnp.minimum(q_vals[..., None], inv_vals[q_cols])
    s = jnp.zeros((bq, num_g + 1), jnp.float32).at[jnp.arange(bq)[:, None, None], g].add(m)
    s = s[:, :num_g]
    return (1.0 - s / (2.0 - s)) * (1.0 - lam) + dn_qg * lam


def _jaccard_dense(out, v_cols, v_vals, num_q, num_g, n, width, lam, block_elements):
    """d* with blocks of gallery rows of V made dense: for galleries with a crowded column."""
    g_size = max(1, min(num_g, block_elements // n))
    q_size = max(1, min(num_q, _JACCARD_ELEMENTS // (width * g_size)))
    for g_start in range(0, num_g, g_size):
        g_count = min(g_size, num_g - g_start)
        g_rows = np.zeros(g_size, np.int32)
        g_rows[:g_count] = np.arange(num_q + g_start, num_q + g_start + g_count)
        vals_g = v_vals[g_rows]
        vals_g[g_count:] = 0.0
        dense = _dense_columns(jnp.asarray(v_cols[g_rows]), jnp.asarray(vals_g), n)
        for q_start, q_rows, q_count in _blocks(num_q, q_size):
            dn = np.zeros((q_size, g_size), np.float32)
            dn[:q_count, :g_count] = out[q_start : q_start + q_count, g_start : g_start + g_count]
            block = _final_block(
                jnp.asarray(v_cols[q_rows]), jnp.asarray(v_vals[q_rows]), dense, dn, lam
            )
            out[q_start : q_start + q_count, g_start : g_start + g_count] = np.asarray(block)[
                :q_count, :g_count
            ]


def k_reciprocal_distances(
    query_feats,
    gallery_feats,
    params: RerankParams | None = None,
    *,
    metric: str = "euclidean",
    block_elements: int = _BLOCK_ELEMENTS,
) -> np.ndarray:
    """Re-ranked query-gallery distances from features (Zhong et al. 2017, Eqs. 7-14).

    Args:
      query_feats: [Q, D] float features.
      gallery_feats: [G, D] float features.
      params: k1, k2, lambda (default: the paper's 20, 6, 0.3).
      metric: the original distance, see `jaxreid.evaluation.distances.METRICS`; it is
        squared and row-normalised as in the authors' code (see the module docstring).
      block_elements: elements of one block of distance rows (memory bound on the device).

    Returns:
      [Q, G] float32 NumPy array d* (smaller = more similar).

    Raises:
      ValueError: features not [N, D] / not finite / of different dimensions, or an
        unknown metric.
    """
    params = params or RerankParams()
    metric, q, g = distances.check_query_gallery(query_feats, gallery_feats, metric)
    if len(q) == 0 or len(g) == 0:
        return np.zeros((len(q), len(g)), np.float32)
    rows_fn = _feature_rows(np.concatenate([q, g]), metric)
    return _rerank(rows_fn, len(q), len(g), params, int(block_elements))


def k_reciprocal_from_distances(
    q_g, q_q, g_g, params: RerankParams | None = None, *, block_elements: int = _BLOCK_ELEMENTS
) -> np.ndarray:
    """Re-ranked distances from the three original distance matrices (as the authors' code).

    Args:
      q_g: [Q, G] query-gallery distances; q_q: [Q, Q]; g_g: [G, G] (symmetric, 0 diagonal).
      params: k1, k2, lambda (default: the paper's 20, 6, 0.3).

    Returns:
      [Q, G] float32 NumPy array d*.

    Raises:
      ValueError: shapes that do not fit together, or non-finite distances.
    """
    params = params or RerankParams()
    q_g, q_q, g_g = (np.asarray(a, np.float32) for a in (q_g, q_q, g_g))
    nq, ng = q_g.shape if q_g.ndim == 2 else (-1, -1)
    if q_g.ndim != 2 or q_q.shape != (nq, nq) or g_g.shape != (ng, ng):
        raise ValueError(
            f"k_reciprocal_from_distances: expected q_g [Q, G], q_q [Q, Q], g_g [G, G]; got "
            f"{q_g.shape}, {q_q.shape}, {g_g.shape}"
        )
    for name, a in (("q_g", q_g), ("q_q", q_q), ("g_g", g_g)):
        if a.size and not np.isfinite(a).all():
            raise ValueError(f"k_reciprocal_from_distances: {name} has non-finite distances")
    if nq == 0 or ng == 0:
        return np.zeros((nq, ng), np.float32)
    return _rerank(_matrix_rows(q_g, q_q, g_g), nq, ng, params, int(block_elements))


__all__ = [
    "PAPER_K1",
    "PAPER_K2",
    "PAPER_LAMBDA",
    "RerankParams",
    "annotate",
    "describe",
    "k_reciprocal_distances",
    "k_reciprocal_from_distances",
    "tag",
]
