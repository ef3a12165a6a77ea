"""Tests for jaxreid.search: chunked top-k against a brute-force NumPy top-k, Gallery I/O."""

import os

import numpy as np
import pytest

from jaxreid.search import Gallery, top_k_search

METRICS = ["euclidean", "sqeuclidean", "l1", "linf", "cosine"]


def _reference_distances(q, g, metric):
    """[Q, D], [N, D] -> [Q, N] float64 by the textbook formulas, one pair at a time."""
    q = np.asarray(q, np.float64)
    g = np.asarray(g, np.float64)
    out = np.empty((len(q), len(g)))
    for i, a in enumerate(q):
        for j, b in enumerate(g):
            diff = a - b
            if metric == "euclidean":
                out[i, j] = np.sqrt(np.sum(diff * diff))
            elif metric == "sqeuclidean":
                out[i, j] = np.sum(diff * diff)
            elif metric == "l1":
                out[i, j] = np.sum(np.abs(diff))
            elif metric == "linf":
                out[i, j] = np.max(np.abs(diff))
            else:
                out[i, j] = 1.0 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    return out


def _reference_top_k(q, g, k, metric):
    d = _reference_distances(q, g, metric)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, order, axis=1), order


def _sparse_sign_vectors(rng, n, dim=8, nonzeros=4):
    """Rows with exactly `nonzeros` entries +-1: every metric's distance is exact in float32
    (cosine = 1 - m/4 with integer m), so exact ties are frequent and unambiguous."""
    x = np.zeros((n, dim), np.float32)
    for row in x:
        cols = rng.choice(dim, nonzeros, replace=False)
        row[cols] = rng.choice([-1.0, 1.0], nonzeros)
    return x


@pytest.mark.parametrize("metric", METRICS)
def test_exact_top_k_with_ties_across_chunks(metric):
    rng = np.random.default_rng(0)
    gallery = _sparse_sign_vectors(rng, 300)
    # duplicates in different chunks (chunk_size 64), and queries equal to gallery rows
    gallery[[70, 150, 299]] = gallery[5]
    queries = _sparse_sign_vectors(rng, 10)
    queries[0] = gallery[5]
    queries[1] = gallery[299]
    k = 100  # larger than a chunk
    ref_d, ref_i = _reference_top_k(queries, gallery, k, metric)
    # many exact ties at every rank: the order within them is the stable (index) order
    assert (np.diff(ref_d, axis=1) == 0).mean() > 0.5

    dist, idx = top_k_search(queries, gallery, k, metric=metric, chunk_size=64, query_chunk_size=4)
    assert dist.shape == (10, k) and idx.shape == (10, k)
    assert dist.dtype == np.float32 and idx.dtype == np.int64
    np.testing.assert_array_equal(idx, ref_i)
    # Small-integer sign vectors: distances exact in float32 except sqrt / cosine (1e-6).
    np.testing.assert_allclose(dist, ref_d, rtol=1e-6, atol=1e-6)
    # query 0 is gallery row 5: its copies (70, 150, 299 and any random collision) come
    # first, at distance 0, in index order
    copies = np.flatnonzero((gallery == gallery[5]).all(axis=1))
    assert {5, 70, 150, 299} <= set(copies.tolist())
    np.testing.assert_array_equal(idx[0, : len(copies)], copies)
    assert np.all(dist[0, : len(copies)] == 0.0)


@pytest.mark.parametrize("metric", METRICS)
def test_continuous_embeddings_match_bruteforce(metric):
    rng = np.random.default_rng(1)
    gallery = rng.normal(size=(203, 16)).astype(np.float32)
    queries = rng.normal(size=(7, 16)).astype(np.float32)
    k = 40
    ref_d, ref_i = _reference_top_k(queries, gallery, k, metric)
    full = _reference_distances(queries, gallery, metric)

    dist, idx = top_k_search(queries, gallery, k, metric=metric, chunk_size=32, query_chunk_size=3)
    # float32 kernels vs float64 reference on 16-d normal vectors: ~1e-6, bound 1e-4.
    np.testing.assert_allclose(dist, ref_d, rtol=1e-4, atol=1e-4)
    # each returned index really is at its reported distance, and no index repeats
    np.testing.assert_allclose(np.take_along_axis(full, idx, axis=1), dist, rtol=1e-4, atol=1e-4)
    assert all(len(set(row)) == k for row in idx.tolist())
    # where the reference ranking is unambiguous (gaps above float32 noise) it is matched
    gap = np.minimum(np.diff(ref_d, axis=1, prepend=-np.inf), np.diff(ref_d, axis=1, append=np.inf))
    clear = gap > 1e-3
    assert clear.mean() > 0.8
    np.testing.assert_array_equal(idx[clear], ref_i[clear])


def test_metric_aliases_k_clamp_and_single_chunk():
    rng = np.random.default_rng(2)
    gallery = _sparse_sign_vectors(rng, 9)
    queries = _sparse_sign_vectors(rng, 3)
    ref_d, ref_i = _reference_top_k(queries, gallery, 9, "l1")
    # k > N is clamped to N; a chunk larger than the gallery is capped
    dist, idx = top_k_search(queries, gallery, 50, metric="manhattan")
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(dist, ref_d)
    _, idx = top_k_search(queries, gallery, 1, metric="chebyshev", chunk_size=2)
    np.testing.assert_array_equal(idx, _reference_top_k(queries, gallery, 1, "linf")[1])
    with pytest.raises(ValueError, match="unknown distance metric 'l3'"):
        top_k_search(queries, gallery, 3, metric="l3")
    with pytest.raises(ValueError, match="k must be a positive int"):
        top_k_search(queries, gallery, 0)
    with pytest.raises(ValueError, match=r"queries has 4 feature dims but gallery has \d+"):
        top_k_search(queries[:, :4], gallery, 3)
    with pytest.raises(ValueError, match="gallery: non-finite value at row 0, column 1"):
        top_k_search(queries, np.where(np.arange(gallery.shape[1]) == 1, np.inf, gallery), 3)


def _gallery(rng, n=130):
    return Gallery(
        rng.normal(size=(n, 12)).astype(np.float32),
        ids=rng.integers(0, 20, n),
        cams=rng.integers(1, 5, n),
        modality=np.where(np.arange(n) % 2 == 0, "rgb", "depth"),
        filenames=[f"cam{i % 3}/pérson_{i:04d}.png" for i in range(n)],
        metric="cosine",
    )


def test_gallery_add_and_search_uses_its_metric():
    rng = np.random.default_rng(3)
    full = _gallery(rng)
    queries = rng.normal(size=(5, 12)).astype(np.float32)

    built = Gallery(dim=12, metric="cosine")
    built.add(
        full.embeddings[:50], full.ids[:50], full.cams[:50], full.modality[:50], full.filenames[:50]
    )
    first = built.search(queries, k=10, chunk_size=16)  # caches the device chunks
    np.testing.assert_array_equal(
        first[1], _reference_top_k(queries, full.embeddings[:50], 10, "cosine")[1]
    )
    built.add(
        full.embeddings[50:], full.ids[50:], full.cams[50:], full.modality[50:], full.filenames[50:]
    )
    assert len(built) == 130
    for name in ("embeddings", "ids", "cams", "modality", "filenames"):
        np.testing.assert_array_equal(getattr(built, name), getattr(full, name))

    dist, idx = built.search(queries, k=10, chunk_size=16)  # cache invalidated by add
    ref_d, ref_i = _reference_top_k(queries, full.embeddings, 10, "cosine")
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(dist, ref_d, rtol=1e-5, atol=1e-5)
    # metric override and a single [D] query
    _, idx_l2 = built.search(queries[0], k=3, metric="l2")
    np.testing.assert_array_equal(
        idx_l2, _reference_top_k(queries[:1], full.embeddings, 3, "euclidean")[1]
    )

    one = Gallery(np.ones((2, 3)), modality="rgb")
    np.testing.assert_array_equal(one.modality, ["rgb", "rgb"])
    np.testing.assert_array_equal(one.ids, [-1, -1])
    with pytest.raises(ValueError, match="ids: expected \\[2\\] integers"):
        Gallery(np.ones((2, 3)), ids=[1, 2, 3])
    with pytest.raises(ValueError, match="3 dims, the gallery has 12"):
        built.add(np.ones((1, 3)))


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    gallery = _gallery(rng)
    path = tmp_path / "gallery.npz"
    assert gallery.save(path) == str(path)
    assert os.listdir(tmp_path) == ["gallery.npz"]  # no temp file left behind

    loaded = Gallery.load(path)
    assert loaded.metric == "cosine"
    for name in ("embeddings", "ids", "cams", "modality", "filenames"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(gallery, name))
    assert loaded.filenames[1] == "cam1/pérson_0001.png"
    queries = rng.normal(size=(4, 12)).astype(np.float32)
    for a, b in zip(loaded.search(queries, k=5), gallery.search(queries, k=5)):
        np.testing.assert_array_equal(a, b)

    # overwriting replaces the file; a path without the .npz suffix is kept as given
    gallery.subset(np.arange(10)).save(path)
    assert len(Gallery.load(path)) == 10
    plain = tmp_path / "gallery.bin"
    gallery.save(plain)
    assert len(Gallery.load(plain)) == 130


def test_load_bad_files_name_file_and_key(tmp_path):
    rng = np.random.default_rng(5)
    gallery = _gallery(rng, n=4)
    no_ids = tmp_path / "no_ids.npz"
    np.savez(
        no_ids,
        format_version=1,
        metric="cosine",
        embeddings=gallery.embeddings,
        cams=gallery.cams,
        modality=gallery.modality,
        filenames=gallery.filenames,
    )
    with pytest.raises(ValueError) as err:
        Gallery.load(no_ids)
    assert str(no_ids) in str(err.value) and "missing key 'ids'" in str(err.value)

    wrong_rows = tmp_path / "wrong_rows.npz"
    np.savez(
        wrong_rows,
        format_version=1,
        metric="cosine",
        embeddings=gallery.embeddings,
        ids=gallery.ids[:3],
        cams=gallery.cams,
        modality=gallery.modality,
        filenames=gallery.filenames,
    )
    with pytest.raises(ValueError, match="wrong_rows.npz.*ids: expected \\[4\\]"):
        Gallery.load(wrong_rows)

    text = tmp_path / "notes.txt"
    text.write_text("not a gallery")
    with pytest.raises(ValueError, match="notes.txt.*not a .npz archive"):
        Gallery.load(text)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        Gallery.load(tmp_path / "missing.npz")
