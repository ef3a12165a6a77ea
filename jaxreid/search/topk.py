"""Top-k search of query embeddings in a gallery of embeddings, on device, in chunks.

NumPy in, NumPy out. The gallery is cut into chunks of `chunk_size` rows (the last one
padded and masked with +inf) and the queries into chunks of `query_chunk_size` rows; one
`jax.jit`-compiled kernel computes a [query chunk, gallery chunk] distance block, takes
its `jax.lax.top_k` and merges it with the running top-k of the chunks seen so far. So the
memory is bounded by one block and a [Q, k] result: a gallery of millions of embeddings
never materialises a Q x N distance matrix.

Distances are those of `jaxreid.evaluation.distances` (same kernels, same metric names):
euclidean (l2), sqeuclidean (l2_squared), l1 (manhattan, cityblock), linf (chebyshev),
cosine. Smaller is closer.

Ties are broken by gallery index: among equal distances the lower gallery index ranks
first, exactly as a stable sort of each query's distance row
(`np.argsort(d, kind="stable")`).
"""

from __future__ import annotations

import functools
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxreid import batching
from jaxreid.evaluation.distances import check_query_gallery, distance_block, gallery_aux

# Gallery rows per chunk and query rows per chunk: a block of 512 x 16384 float32 is 32 MB.
DEFAULT_CHUNK_SIZE = 16384
DEFAULT_QUERY_CHUNK_SIZE = 512


@functools.partial(jax.jit, static_argnames=("metric",))
def _merge_chunk(best_d, best_i, q, g, g_aux, start, num_gallery, metric: str):
    """Merges one gallery chunk into the running top-k.

    Args:
        best_d: [Qc, k] float32 running smallest distances (ascending; +inf = empty slot).
        best_i: [Qc, k] int32 their gallery indices (all lower than `start`).
        q: [Qc, D] float32 query chunk.
        g: [C, D] float32 gallery chunk (rows past `num_gallery` are padding).
        g_aux: [C] float32 per-row norms of `g` as `distance_block` expects.
        start: int32 scalar, gallery index of the chunk's first row.
        num_gallery: int32 scalar, gallery size N; padded rows get distance +inf.

    Returns:
        (best_d, best_i) updated, same shapes.
    """
    d = distance_block(q, g, g_aux, metric)  # [Qc, C]
    cols = start + jnp.arange(g.shape[0], dtype=jnp.int32)
    d = jnp.where(cols[None, :] < num_gallery, d, jnp.inf)
    # Running entries come first and have lower gallery indices than this chunk; top_k puts
    # the lower position first among equal values, so ties stay ordered by gallery index.
    all_d = jnp.concatenate([best_d, d], axis=1)
    all_i = jnp.concatenate([best_i, jnp.broadcast_to(cols[None, :], d.shape)], axis=1)
    # top_k orders -0.0 below +0.0; map both zeros to one key so they tie.
    key = jnp.where(all_d == 0.0, 0.0, -all_d)
    _, pos = lax.top_k(key, best_d.shape[1])
    return (jnp.take_along_axis(all_d, pos, axis=1), jnp.take_along_axis(all_i, pos, axis=1))


def check_chunk(value, name: str) -> int:
    if int(value) != value or int(value) < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def device_chunks(gallery: np.ndarray, metric: str, chunk_size: int):
    """[N, D] float32 -> list of (chunk [C, D], aux [C]) device arrays, last chunk zero-padded."""
    chunks = []
    for start in range(0, gallery.shape[0], chunk_size):
        # Padded: one compiled kernel serves every chunk.
        g = jnp.asarray(batching.pad_rows(gallery[start : start + chunk_size], chunk_size))
        chunks.append((g, gallery_aux(g, metric)))
    return chunks


def search_chunks(
    queries: np.ndarray, num_gallery: int, chunks, k: int, metric: str, query_chunk_size: int
) -> tuple[np.ndarray, np.ndarray]:
    num_q = queries.shape[0]
    k = min(k, num_gallery)
    distances = np.empty((num_q, k), np.float32)
    indices = np.empty((num_q, k), np.int64)
    if num_q == 0 or k == 0:
        return distances, indices
    rows = min(query_chunk_size, num_q)
    n_gal = jnp.int32(num_gallery)
    chunk_size = chunks[0][0].shape[0]
    for q_start in range(0, num_q, rows):
        n = min(rows, num_q - q_start)
        q = jnp.asarray(batching.pad_rows(queries[q_start : q_start + rows], rows))
        best_d = jnp.full((rows, k), jnp.inf, jnp.float32)
        best_i = jnp.full((rows, k), -1, jnp.int32)
        for c, (g, g_aux) in enumerate(chunks):
            best_d, best_i = _merge_chunk(
                best_d, best_i, q, g, g_aux, jnp.int32(c * chunk_size), n_gal, metric
            )
        distances[q_start : q_start + n] = np.asarray(best_d)[:n]
        indices[q_start : q_start + n] = np.asarray(best_i)[:n]
    return distances, indices


def top_k_search(
    queries,
    gallery,
    k: int,
    *,
    metric: str = "euclidean",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    query_chunk_size: int = DEFAULT_QUERY_CHUNK_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest gallery embeddings of each query.

    Args:
        queries: [Q, D] float query embeddings.
        gallery: [N, D] float gallery embeddings.
        k: neighbours per query; clamped to N.
        metric: 'euclidean' | 'sqeuclidean' | 'l1' | 'linf' | 'cosine' or an alias
            ('l2', 'l2_squared', 'manhattan', 'cityblock', 'chebyshev').
        chunk_size: gallery rows per kernel call (capped at N).
        query_chunk_size: query rows per kernel call (capped at Q).

    Returns:
        distances: [Q, min(k, N)] float32, ascending along each row.
        indices: [Q, min(k, N)] int64 gallery rows; ties ordered by gallery index.
    """
    metric, q, g = check_query_gallery(queries, gallery, metric, ("queries", "gallery"))
    k = check_k(k)
    chunk_size = min(check_chunk(chunk_size, "chunk_size"), max(g.shape[0], 1))
    query_chunk_size = check_chunk(query_chunk_size, "query_chunk_size")
    chunks = device_chunks(g, metric, chunk_size)
    return search_chunks(q, g.shape[0], chunks, k, metric, query_chunk_size)


def check_k(k) -> int:
    if isinstance(k, bool) or int(k) != k or int(k) < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    return int(k)
