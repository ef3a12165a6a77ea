"""Distances between query and gallery features, computed in JAX in row chunks.

NumPy in, NumPy out. The query rows are processed in fixed-size chunks (the last chunk is
padded, so one compiled kernel serves every chunk), which bounds the memory to one
`[chunk, G]` block: a 20k x 100k problem never holds more than that block on the device.

Metrics (the ranking metrics of Tekeli 2019, Table 2, plus cosine):
    euclidean   (alias l2)            ||q - g||_2
    sqeuclidean (alias l2_squared)    ||q - g||_2^2
    l1          (alias manhattan, cityblock)  sum |q - g|
    linf        (alias chebyshev)     max |q - g|
    cosine                            1 - <q, g> / (||q|| ||g||)

`as_features`, `gallery_aux` and `distance_block` are the building blocks, shared with
`jaxreid.search` (which keeps a gallery's norms between queries).
"""

from __future__ import annotations

import functools
from typing import Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxreid import batching
from jaxreid.config import choices

METRICS = choices.RANKING_METRICS
_ALIASES = choices.RANKING_METRIC_ALIASES

# Elements of one distance block [chunk, G]; 2**24 floats = 64 MB.
_BLOCK_ELEMENTS = 1 << 24
# Feature dimensions handled per step of the L1 / L-inf loop (unrolled scan).
_SCAN_UNROLL = 16
# Guards the norm of all-zero feature vectors in the cosine distance.
_COSINE_EPS = 1e-12


def canonical_metric(metric: str) -> str:
    """Returns the canonical name of `metric` or raises ValueError listing valid names."""
    try:
        return _ALIASES[str(metric).lower()]
    except KeyError:
        raise ValueError(
            f"unknown distance metric {metric!r}; expected one of {sorted(_ALIASES)}"
        ) from None


def as_features(x, name: str) -> np.ndarray:
    """x as a finite float32 [N, D] array; ValueError naming `name` otherwise."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name}: expected a [N, D] feature array, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"{name}: expected a numeric feature array, got dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(f"{name}: non-finite value at row {bad[0]}, column {bad[1]}")
    return x


def check_query_gallery(
    query_feats,
    gallery_feats,
    metric: str,
    names: tuple[str, str] = ("query_feats", "gallery_feats"),
) -> tuple[str, np.ndarray, np.ndarray]:
    """The checks every query-against-gallery computation makes first, in one place.

    Args:
      query_feats: [Q, D] numeric features.
      gallery_feats: [G, D] numeric features.
      metric: one of METRICS or an alias.
      names: the two arguments' names in the caller, for error messages.

    Returns:
      (canonical metric name, [Q, D] float32 queries, [G, D] float32 gallery).

    Raises:
      ValueError: an unknown metric; features not [N, D], not numeric or not finite (naming
        the argument and the first bad row); different feature dims.
    """
    metric = canonical_metric(metric)
    q = as_features(query_feats, names[0])
    g = as_features(gallery_feats, names[1])
    if q.shape[1] != g.shape[1]:
        raise ValueError(
            f"{names[0]} has {q.shape[1]} feature dims but {names[1]} has {g.shape[1]}"
        )
    return metric, q, g


def is_collapsed(features, rtol: float = 1e-5) -> bool:
    """True when every row of `features` [N, D] is the same point (to `rtol` of its scale).

    A network can embed every image in one point: the batch-hard triplet loss then sits at
    its margin (Hafner 2018 §4.3.2, Figure 26), with every ReLU unit of the embedding off. All
    distances are then equal and ranks follow only the tie-breaking order of the gallery, so
    the metrics look like chance while meaning nothing; the thesis reports such runs as n/a.
    """
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or len(x) < 2:
        return False
    centre = x.mean(axis=0)
    spread = np.abs(x - centre).max()
    return bool(spread <= rtol * max(1.0, float(np.abs(centre).max())))


def _dim_scan(q, g, combine):
    """[Qc, D], [G, D] -> [Qc, G]: combine over feature dims of |q_d - g_d|.

    Looping over the feature dimension keeps every step a vectorised [Qc, G] elementwise
    operation; a broadcast [Qc, G, D] reduction was 4x slower for L1 on XLA:CPU (measured
    2026-11-20, 128 x 4000 x 2048).
    """

    def body(acc, qg):
        qd, gd = qg
        return combine(acc, jnp.abs(qd[:, None] - gd[None, :])), None

    init = jnp.zeros((q.shape[0], g.shape[0]), jnp.float32)
    out, _ = lax.scan(body, init, (q.T, g.T), unroll=_SCAN_UNROLL)
    return out


@jax.jit
def _cross(q, g):
    """[Qc, D] x [G, D] -> [Qc, G] inner products (full float32 precision, also on TPU)."""
    return jnp.matmul(q, g.T, precision=lax.Precision.HIGHEST)


@functools.partial(jax.jit, static_argnames=("metric",))
def _from_cross(cross, q, g_aux, metric: str):
    """Distances from inner products; q: [Qc, D], g_aux: [G] squared norms or norms."""
    if metric in ("euclidean", "sqeuclidean"):
        d2 = jnp.sum(q * q, axis=1)[:, None] + g_aux[None, :] - 2.0 * cross
        d2 = jnp.maximum(d2, 0.0)  # rounding can make the expansion slightly negative
        return jnp.sqrt(d2) if metric == "euclidean" else d2
    qn = jnp.maximum(jnp.linalg.norm(q, axis=1), _COSINE_EPS)
    return 1.0 - cross / (qn[:, None] * jnp.maximum(g_aux, _COSINE_EPS)[None, :])


@functools.partial(jax.jit, static_argnames=("metric",))
def _scan_block(q, g, metric: str):
    return _dim_scan(q, g, jnp.add if metric == "l1" else jnp.maximum)


def distance_block(q, g, g_aux, metric: str):
    """q: [Qc, D] f32, g: [G, D] f32, g_aux: [G] f32 (squared norms or norms) -> [Qc, G] f32.

    The matmul and the elementwise step are two compiled calls on purpose: XLA:CPU fuses
    them into one loop that ran 35% slower than the two (842 x 15,913 x 2048, 2026-11-21).
    """
    if metric in ("euclidean", "sqeuclidean", "cosine"):
        return _from_cross(_cross(q, g), q, g_aux, metric)
    if metric in ("l1", "linf"):
        return _scan_block(q, g, metric)
    raise ValueError(f"unknown metric {metric!r}")


def gallery_aux(g: jax.Array, metric: str) -> jax.Array:
    """[G, D] -> [G] what `distance_block` needs of the gallery: squared norms or norms."""
    if metric in ("euclidean", "sqeuclidean"):
        return jnp.sum(g * g, axis=1)
    if metric == "cosine":
        return jnp.linalg.norm(g, axis=1)
    return jnp.zeros((g.shape[0],), jnp.float32)


def _chunk_rows(num_query: int, num_gallery: int, chunk_size: int | None) -> int:
    """Rows per chunk: at most `chunk_size` (default: about _BLOCK_ELEMENTS distances), split
    evenly, because the last chunk is padded to the chunk size (3,368 rows in chunks of at
    most 1,054 are 4 x 842, not 3 x 1,054 + 206 padded to 1,054)."""
    if chunk_size is not None:
        if int(chunk_size) < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        rows = int(chunk_size)
    else:
        rows = max(1, _BLOCK_ELEMENTS // max(num_gallery, 1))
    chunks = -(-max(num_query, 1) // rows)
    return -(-max(num_query, 1) // chunks)


def _blocks(query_feats, gallery_feats, metric, chunk_size, copy):
    metric, q, g = check_query_gallery(query_feats, gallery_feats, metric)
    num_q, num_g = q.shape[0], g.shape[0]
    if num_q == 0:
        return
    if num_g == 0:
        yield 0, np.zeros((num_q, 0), np.float32)
        return
    rows = _chunk_rows(num_q, num_g, chunk_size)
    g_dev = jnp.asarray(g)
    g_aux = gallery_aux(g_dev, metric)
    for start in range(0, num_q, rows):
        block = q[start : start + rows]
        n = block.shape[0]
        block = batching.pad_rows(block, rows)  # every chunk reuses one compiled kernel
        host = np.asarray(distance_block(jnp.asarray(block), g_dev, g_aux, metric))[:n]
        yield start, (np.array(host) if copy else host)


def distance_chunks(
    query_feats, gallery_feats, metric: str = "euclidean", *, chunk_size: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yields `(start, block)` with `block = dist(query[start:start+n], gallery)`.

    Args:
      query_feats: [Q, D] float features.
      gallery_feats: [G, D] float features.
      metric: one of METRICS or an alias (see module docstring).
      chunk_size: query rows per block; default keeps a block near 2**24 elements.

    Yields:
      start: int, first query row of the block.
      block: [n, G] float32 NumPy array (writable, owned by the caller).
    """
    return _blocks(query_feats, gallery_feats, metric, chunk_size, copy=True)


def pairwise_distance(
    query_feats, gallery_feats, metric: str = "euclidean", *, chunk_size: int | None = None
) -> np.ndarray:
    """Distance matrix between query and gallery features.

    Args:
      query_feats: [Q, D] float features.
      gallery_feats: [G, D] float features.
      metric: 'euclidean' | 'sqeuclidean' | 'l1' | 'linf' | 'cosine' (or an alias:
        'l2', 'l2_squared', 'manhattan', 'cityblock', 'chebyshev').
      chunk_size: query rows per JAX call (default: blocks of about 2**24 elements).

    Returns:
      [Q, G] float32 NumPy array.
    """
    q = np.asarray(query_feats)
    g = np.asarray(gallery_feats)
    out = np.empty((q.shape[0], g.shape[0]), np.float32)
    for start, block in _blocks(q, g, metric, chunk_size, copy=False):
        out[start : start + block.shape[0]] = block
    return out


def euclidean(query_feats, gallery_feats, *, chunk_size: int | None = None) -> np.ndarray:
    """[Q, D], [G, D] -> [Q, G] float32 Euclidean (L2) distances."""
    return pairwise_distance(query_feats, gallery_feats, "euclidean", chunk_size=chunk_size)


def sqeuclidean(query_feats, gallery_feats, *, chunk_size: int | None = None) -> np.ndarray:
    """[Q, D], [G, D] -> [Q, G] float32 squared Euclidean distances."""
    return pairwise_distance(query_feats, gallery_feats, "sqeuclidean", chunk_size=chunk_size)


def l1(query_feats, gallery_feats, *, chunk_size: int | None = None) -> np.ndarray:
    """[Q, D], [G, D] -> [Q, G] float32 L1 (Manhattan) distances."""
    return pairwise_distance(query_feats, gallery_feats, "l1", chunk_size=chunk_size)


def linf(query_feats, gallery_feats, *, chunk_size: int | None = None) -> np.ndarray:
    """[Q, D], [G, D] -> [Q, G] float32 L-infinity (Chebyshev) distances."""
    return pairwise_distance(query_feats, gallery_feats, "linf", chunk_size=chunk_size)


def cosine(query_feats, gallery_feats, *, chunk_size: int | None = None) -> np.ndarray:
    """[Q, D], [G, D] -> [Q, G] float32 cosine distances 1 - cos(q, g)."""
    return pairwise_distance(query_feats, gallery_feats, "cosine", chunk_size=chunk_size)


manhattan = l1
chebyshev = linf
