"""Distances of jaxreid.evaluation against hand-worked values and a NumPy loop."""

import numpy as np
import pytest

from jaxreid.evaluation import distances
from jaxreid.evaluation.distances import pairwise_distance


def numpy_loop(q, g, metric):
    """Straightforward double loop in float64."""
    out = np.zeros((len(q), len(g)))
    for i, a in enumerate(q.astype(np.float64)):
        for j, b in enumerate(g.astype(np.float64)):
            diff = a - b
            if metric == "euclidean":
                out[i, j] = np.sqrt(np.sum(diff**2))
            elif metric == "sqeuclidean":
                out[i, j] = np.sum(diff**2)
            elif metric == "l1":
                out[i, j] = np.sum(np.abs(diff))
            elif metric == "linf":
                out[i, j] = np.max(np.abs(diff))
            elif metric == "cosine":
                out[i, j] = 1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    return out


def test_hand_worked_values():
    # q = (0, 0, 0), g = (3, 4, 0) and (1, -2, 2)
    q = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], np.float32)
    g = np.array([[3.0, 4.0, 0.0], [1.0, -2.0, 2.0]], np.float32)
    np.testing.assert_allclose(distances.euclidean(q, g)[0], [5.0, 3.0], atol=1e-6)
    # Small integers: float32 exact except the expansion ||q||^2 - 2qg + ||g||^2 (1e-5).
    np.testing.assert_allclose(distances.sqeuclidean(q, g)[0], [25.0, 9.0], atol=1e-5)
    np.testing.assert_allclose(distances.l1(q, g)[0], [7.0, 5.0], atol=1e-6)
    np.testing.assert_allclose(distances.linf(q, g)[0], [4.0, 2.0], atol=1e-6)
    # second query (1, 0, 0): |(2, 4, 0)| = sqrt(20), |(0, -2, 2)| = sqrt(8)
    np.testing.assert_allclose(distances.euclidean(q, g)[1], [np.sqrt(20), np.sqrt(8)], rtol=1e-6)
    np.testing.assert_allclose(distances.l1(q, g)[1], [6.0, 4.0], atol=1e-6)
    # cos((1,0,0), (3,4,0)) = 3/5; cos((1,0,0), (1,-2,2)) = 1/3
    np.testing.assert_allclose(distances.cosine(q, g)[1], [1 - 0.6, 1 - 1 / 3], atol=1e-6)
    assert distances.manhattan is distances.l1 and distances.chebyshev is distances.linf


@pytest.mark.parametrize("metric", distances.METRICS)
def test_against_numpy_loop(metric):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((7, 5)).astype(np.float32)
    g = rng.standard_normal((11, 5)).astype(np.float32)
    got = pairwise_distance(q, g, metric)
    assert got.shape == (7, 11) and got.dtype == np.float32
    # float32 kernels vs a float64 NumPy loop: the expansion's cancellation, ~1e-6.
    np.testing.assert_allclose(got, numpy_loop(q, g, metric), rtol=1e-5, atol=1e-5)


def test_chunks_equal_one_block():
    rng = np.random.default_rng(1)
    q = rng.standard_normal((7, 5)).astype(np.float32)
    g = rng.standard_normal((11, 5)).astype(np.float32)
    whole = pairwise_distance(q, g, "l2")
    for chunk in (1, 3, 7, 100):  # 3 pads the last chunk of 1 row
        # the matmul's blocking may change the last bit with the chunk shape
        np.testing.assert_allclose(
            pairwise_distance(q, g, "euclidean", chunk_size=chunk), whole, rtol=1e-6
        )
    starts = [s for s, _ in distances.distance_chunks(q, g, chunk_size=3)]
    assert starts == [0, 3, 6]


def test_aliases_and_errors():
    assert distances.canonical_metric("Manhattan") == "l1"
    assert distances.canonical_metric("chebyshev") == "linf"
    assert distances.canonical_metric("l2_squared") == "sqeuclidean"
    with pytest.raises(ValueError, match="unknown distance metric 'hamming'"):
        pairwise_distance(np.zeros((1, 2)), np.zeros((1, 2)), "hamming")
    with pytest.raises(ValueError, match="3 feature dims but gallery_feats has 2"):
        pairwise_distance(np.zeros((1, 3)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="gallery_feats: non-finite value at row 1, column 0"):
        pairwise_distance(np.zeros((1, 2)), np.array([[0.0, 0.0], [np.nan, 0.0]]))
    assert pairwise_distance(np.zeros((2, 3)), np.zeros((0, 3))).shape == (2, 0)


def test_zero_vector_cosine_is_finite():
    d = distances.cosine(np.zeros((1, 3)), np.array([[1.0, 0.0, 0.0]]))
    # 1 - 0 / (clamped norm): exactly 1, so the default rtol 1e-7 is only a formality.
    np.testing.assert_allclose(d, [[1.0]])


def test_is_collapsed():
    rng = np.random.default_rng(0)
    assert distances.is_collapsed(np.zeros((5, 3)))  # every ReLU unit off
    assert distances.is_collapsed(np.tile([[4.0, -2.0, 7.0]], (6, 1)))
    # one part in 10^7 of the features' scale is numerical noise, not a ranking
    same = np.tile([[1000.0, 3.0]], (4, 1)) + 1e-4 * rng.standard_normal((4, 2))
    assert distances.is_collapsed(same)
    assert not distances.is_collapsed(rng.standard_normal((4, 8)))
    assert not distances.is_collapsed(np.array([[0.0, 0.0], [0.0, 0.01]]))
    assert not distances.is_collapsed(np.zeros((1, 3)))  # one image ranks nothing
