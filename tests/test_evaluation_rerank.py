"""k-reciprocal re-ranking against a NumPy implementation of Zhong et al. 2017, Eqs. 7-14."""

import numpy as np
import pytest

from jaxreid import evaluation
from jaxreid.evaluation import rerank


def reference_rerank(q_g, q_q, g_g, k1, k2, lam):
    """Zhong et al. 2017 written from the paper, one image at a time (dense N x N).

    Conventions of the authors' released code where the paper leaves a choice: distances
    squared and divided by their row maximum, N(i, k) = the k + 1 nearest including i, the
    half-size neighbourhood round(k1 / 2), and a strict '> 2/3' in the expansion test.
    """
    d = np.block([[q_q, q_g], [q_g.T, g_g]]).astype(np.float64) ** 2
    d = d / d.max(axis=1, keepdims=True)
    n, num_q = len(d), len(q_q)
    order = np.argsort(d, axis=1, kind="stable")

    def neighbours(i, k):  # Eq. 7: N(i, k)
        return set(order[i, : k + 1].tolist())

    def reciprocal(i, k):  # Eq. 8: R(i, k)
        return {j for j in neighbours(i, k) if i in neighbours(j, k)}

    half = int(np.around(k1 / 2.0))
    v = np.zeros((n, n))
    for i in range(n):
        r = reciprocal(i, k1)
        expanded = set(r)
        for c in r:  # Eq. 9
            rc = reciprocal(c, half)
            if len(rc & r) > 2.0 / 3.0 * len(rc):
                expanded |= rc
        idx = sorted(expanded)
        w = np.exp(-d[i, idx])  # Eq. 12
        v[i, idx] = w / w.sum()
    if k2 > 1:  # Eq. 14: local query expansion over N(i, k2) (k2 images including i)
        v = np.stack([v[order[i, :k2]].mean(axis=0) for i in range(n)])
    jaccard = np.empty((num_q, n - num_q))
    for p in range(num_q):  # Eq. 13
        for g in range(n - num_q):
            a, b = v[p], v[num_q + g]
            jaccard[p, g] = 1.0 - np.minimum(a, b).sum() / np.maximum(a, b).sum()
    return (1 - lam) * jaccard + lam * d[:num_q, num_q:]


def _features(rng, num_ids, per_id, dim, spread=0.6):
    centres = rng.normal(size=(num_ids, dim))
    ids = np.repeat(np.arange(num_ids), per_id)
    return (centres[ids] + spread * rng.normal(size=(len(ids), dim))).astype(np.float32), ids


def _dist(a, b):
    return np.sqrt(((a[:, None, :].astype(np.float64) - b[None]) ** 2).sum(-1)).astype(np.float32)


@pytest.mark.parametrize("k1,k2,lam", [(20, 6, 0.3), (5, 3, 0.5), (4, 1, 0.0)])
def test_rerank_matches_the_paper_equations(k1, k2, lam, monkeypatch):
    rng = np.random.default_rng(k1)
    feats, _ = _features(rng, num_ids=9, per_id=7, dim=6)
    q, g = feats[::4], np.delete(feats, np.arange(0, len(feats), 4), axis=0)
    q_g, q_q, g_g = _dist(q, g), _dist(q, q), _dist(g, g)
    expected = reference_rerank(q_g, q_q, g_g, k1, k2, lam)
    params = rerank.RerankParams(k1=k1, k2=k2, lambda_value=lam)
    got = rerank.k_reciprocal_from_distances(q_g, q_q, g_g, params)
    # float32 sums of a few hundred terms in another order than float64: ~1e-6 relative.
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-5)
    # Small blocks (padding, several gallery and query blocks) and distances computed twice
    # instead of kept between the passes (as for pools too large to keep) give the same.
    monkeypatch.setattr(rerank, "_CACHE_ELEMENTS", 0)
    small = rerank.k_reciprocal_from_distances(q_g, q_q, g_g, params, block_elements=300)
    # The same float32 sums in other block shapes / orders: within the 2e-5 bound above.
    np.testing.assert_allclose(small, expected, rtol=0, atol=2e-5)
    # Both Jaccard paths: the gallery's inverted index and dense gallery blocks.
    for factor in (0, 10**9):
        monkeypatch.setattr(rerank, "_SPARSE_FACTOR", factor)
        got = rerank.k_reciprocal_from_distances(q_g, q_q, g_g, params, block_elements=400)
        np.testing.assert_allclose(got, expected, rtol=0, atol=2e-5)
    # From features: the same neighbourhoods; distances differ only by float32 rounding.
    from_feats = rerank.k_reciprocal_distances(q, g, params, block_elements=500)
    np.testing.assert_allclose(from_feats, expected, rtol=0, atol=5e-5)


def test_rerank_changes_the_ranking_and_defaults_are_the_paper_values():
    p = rerank.RerankParams()
    assert (p.k1, p.k2, p.lambda_value) == (20, 6, 0.3)  # Zhong et al. 2017, §4.3
    rng = np.random.default_rng(1)
    feats, _ = _features(rng, num_ids=6, per_id=5, dim=4)
    out = rerank.k_reciprocal_distances(feats[:6], feats[6:], p)
    assert out.shape == (6, 24) and out.dtype == np.float32
    # Re-ranking changes distances by O(0.1): far outside allclose's 1e-5 / 1e-8.
    assert not np.allclose(out, evaluation.sqeuclidean(feats[:6], feats[6:]))
    with pytest.raises(ValueError, match="k1"):
        rerank.RerankParams(k1=0)
    with pytest.raises(ValueError, match="lambda"):
        rerank.RerankParams(lambda_value=1.5)
    with pytest.raises(ValueError, match="q_q"):
        rerank.k_reciprocal_from_distances(np.zeros((2, 3)), np.zeros((3, 3)), np.zeros((3, 3)))


def test_rerank_is_off_by_default_and_tagged_when_on():
    from jaxreid.config import default_config

    config = default_config()
    assert config.eval.rerank is False
    assert rerank.RerankParams.from_config(config.eval) is None
    config.eval.rerank = True
    params = rerank.RerankParams.from_config(config.eval)
    assert params == rerank.RerankParams(20, 6, 0.3)

    rng = np.random.default_rng(2)
    feats, ids = _features(rng, num_ids=5, per_id=6, dim=4, spread=1.2)
    cams = np.tile([1, 2], len(ids) // 2)
    q, g = slice(0, None, 3), np.setdiff1d(np.arange(len(ids)), np.arange(0, len(ids), 3))
    args = (feats[q], ids[q], cams[q], feats[g], ids[g], cams[g])
    plain = evaluation.market1501(*args)
    assert plain["rerank"] is None and plain["rerank_tag"] == ""
    # Off by default: the ranking comes from the plain distances.
    direct = evaluation.market1501(
        None,
        ids[q],
        cams[q],
        None,
        ids[g],
        cams[g],
        distmat=evaluation.euclidean(feats[q], feats[g]),
    )
    assert plain["mAP"] == direct["mAP"]
    on = evaluation.market1501(*args, rerank=params)
    expected = evaluation.market1501(
        None,
        ids[q],
        cams[q],
        None,
        ids[g],
        cams[g],
        distmat=rerank.k_reciprocal_distances(feats[q], feats[g], params),
    )
    assert on["mAP"] == expected["mAP"] and on["mAP"] != plain["mAP"]
    assert on["rerank"] == {"k1": 20, "k2": 6, "lambda": 0.3}
    assert "k1=20, k2=6, lambda=0.3" in on["rerank_tag"]
    assert rerank.tag(params) == "rerank-k1_20-k2_6-l0.3" and rerank.tag(None) == ""


def test_every_protocol_ranks_reranked_distances_when_asked():
    params = rerank.RerankParams(k1=4, k2=2, lambda_value=0.3)
    rng = np.random.default_rng(3)
    vis, vis_ids = _features(rng, num_ids=6, per_id=4, dim=5, spread=1.0)
    th = vis + rng.normal(scale=0.8, size=vis.shape).astype(np.float32)
    # RegDB: each direction re-ranked with its own query set.
    res = evaluation.regdb_trial(vis, vis_ids, th, vis_ids, rerank=params)
    for key, (q, g) in {"visible_to_thermal": (vis, th), "thermal_to_visible": (th, vis)}.items():
        want = evaluation.rank(
            rerank.k_reciprocal_distances(q, g, params), vis_ids, vis_ids, removal="none"
        )
        assert res[key]["mAP"] == want["mAP"] and res[key]["rerank"]["k1"] == 4
    plain = evaluation.regdb_trial(vis, vis_ids, th, vis_ids)
    assert plain["visible_to_thermal"]["rerank"] is None
    # Pairs ('full'): the cross-modal pair ranks re-ranked distances.
    pairs = evaluation.evaluate_modality_pairs(
        {"rgb": {"feats": vis, "ids": vis_ids}, "depth": {"feats": th, "ids": vis_ids}},
        protocol="full",
        rerank=params,
    )
    want = evaluation.rank(
        rerank.k_reciprocal_distances(vis, th, params), vis_ids, vis_ids, removal="none"
    )
    assert pairs["Q:rgb G:depth"]["mAP"] == want["mAP"]
    assert pairs["Q:rgb G:depth"]["rerank_tag"]
    # SYSU-MM01: each trial re-ranked over the queries and that trial's gallery.
    cams = np.array([1, 2, 4, 5] * 6)
    index = np.zeros(len(cams), np.int64)
    for c in (1, 2, 4, 5):
        for p in np.unique(vis_ids):
            rows = np.flatnonzero((cams == c) & (vis_ids == p))
            index[rows] = np.arange(1, len(rows) + 1)
    q_cams = np.array([3, 6] * 12)
    res = evaluation.sysu_mm01(
        th, vis_ids, q_cams, vis, vis_ids, cams, index, sampler="seeded", trials=2, rerank=params
    )
    for trial, sel in enumerate(res["gallery_rows"]):
        d = rerank.k_reciprocal_distances(th, vis[sel], params)
        want = evaluation.rank(
            d, vis_ids, vis_ids[sel], q_cams, cams[sel], removal="same_location", cmc="identity"
        )
        # The same float32 re-ranked distances ranked by the same float64 code: ~1e-16.
        assert res["trials"][trial]["mAP"] == pytest.approx(want["mAP"], abs=1e-12)
    assert res["rerank"] == {"k1": 4, "k2": 2, "lambda": 0.3}
