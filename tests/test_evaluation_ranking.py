"""rank(): hand-worked examples and a per-query NumPy loop on random data."""

import numpy as np
import pytest

from jaxreid.evaluation import match_ranks, pairwise_distance, rank, rank_features, ranking

ALGORITHMS = ("count", "filter", "sort")


@pytest.fixture(autouse=True)
def always_filter(monkeypatch):
    """'filter' falls back to sorting when many images are candidates, which is always the
    case in these tiny examples; lift the limit so that the filter itself is tested."""
    monkeypatch.setattr(match_ranks, "_FILTER_MAX_FRACTION", 1.0)


def per_query_loop(
    dist,
    q_ids,
    g_ids,
    q_cams=None,
    g_cams=None,
    removal="none",
    cmc="standard",
    max_rank=10,
    q_frames=None,
    g_frames=None,
    locations=None,
):
    """Straightforward reference: stable argsort per query, remove, then count."""
    locations = {3: 2} if locations is None else locations
    curve = np.zeros(max_rank)
    aps, inps = [], []
    for i in range(len(q_ids)):
        order = np.argsort(dist[i], kind="stable")
        if removal == "same_camera":
            removed = (g_ids[order] == q_ids[i]) & (g_cams[order] == q_cams[i])
        elif removal == "same_location":
            loc = np.array([locations.get(c, c) for c in g_cams[order]])
            removed = loc == locations.get(q_cams[i], q_cams[i])
        elif removal == "paired_frame":
            removed = (g_frames[order] == q_frames[i]) & (g_frames[order] != "")
        else:
            removed = np.zeros(len(order), bool)
        ranked = g_ids[order][~removed]
        match = ranked == q_ids[i]
        if not match.any():
            continue
        pos = np.flatnonzero(match)
        if cmc == "standard":
            r = pos[0]
        else:  # keep each identity's first occurrence
            seen = []
            for x in ranked:
                if x not in seen:
                    seen.append(x)
            r = seen.index(q_ids[i])
        if r < max_rank:
            curve[r:] += 1
        aps.append(np.mean(np.arange(1, len(pos) + 1) / (pos + 1)))
        inps.append(len(pos) / (pos[-1] + 1))
    n = len(aps)
    return {
        "cmc": curve / max(n, 1),
        "mAP": np.mean(aps) if n else np.nan,
        "mINP": np.mean(inps) if n else np.nan,
        "num_valid": n,
    }


def assert_result(got, cmc, mAP, mINP, num_valid):
    # float64 metrics vs an independent float64 reference: sum order only (~1e-16).
    np.testing.assert_allclose(got["cmc"], cmc, atol=1e-12)
    assert got["mAP"] == pytest.approx(mAP, abs=1e-9)
    assert got["mINP"] == pytest.approx(mINP, abs=1e-9)
    assert got["num_valid"] == num_valid


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_hand_worked_ap_cmc_minp(algorithm):
    g_ids = np.array([2, 1, 3, 1, 2])
    dist = np.float32(
        [
            # query id 1: ranked ids 2, 1, 3, 1, 2 -> matches at ranks 2 and 4
            # AP = (1/2 + 2/4) / 2 = 0.5; INP = 2 / 4 = 0.5; first match at rank 2
            [0.1, 0.2, 0.3, 0.4, 0.5],
            # query id 3: ranked g2 (id 3), g4, g3, g1, g0 -> match at rank 1: AP 1, INP 1
            [0.5, 0.4, 0.1, 0.3, 0.2],
        ]
    )
    got = rank(dist, [1, 3], g_ids, removal="none", max_rank=5, algorithm=algorithm)
    assert_result(got, [0.5, 1, 1, 1, 1], mAP=0.75, mINP=0.75, num_valid=2)
    assert got["num_queries"] == 2


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_multi_shot_gallery(algorithm):
    # ranked: match, non, match, non, non, match -> AP = (1/1 + 2/3 + 3/6) / 3 = 0.7222..
    # INP = 3 / 6 = 0.5
    g_ids = np.array([7, 8, 7, 9, 8, 7])
    dist = np.float32([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    got = rank(dist, [7], g_ids, removal="none", max_rank=3, algorithm=algorithm)
    assert_result(got, [1, 1, 1], mAP=(1 + 2 / 3 + 3 / 6) / 3, mINP=0.5, num_valid=1)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_ties_follow_gallery_order(algorithm):
    # all distances equal: the ranked list is the gallery order
    got = rank(
        np.float32([[1.0, 1.0, 1.0]]),
        [1],
        [2, 1, 2],
        removal="none",
        max_rank=3,
        algorithm=algorithm,
    )
    assert_result(got, [0, 1, 1], mAP=0.5, mINP=0.5, num_valid=1)
    got = rank(
        np.float32([[1.0, 1.0, 1.0]]),
        [1],
        [1, 2, 2],
        removal="none",
        max_rank=3,
        algorithm=algorithm,
    )
    assert_result(got, [1, 1, 1], mAP=1.0, mINP=1.0, num_valid=1)
    # ranked g0 (0.5, id 2), g1 (1, id 2), g2 (1, id 1), g3 (1, id 1): matches at 3 and 4
    # AP = (1/3 + 2/4) / 2; INP = 2 / 4
    got = rank(
        np.float32([[0.5, 1.0, 1.0, 1.0]]),
        [1],
        [2, 2, 1, 1],
        removal="none",
        max_rank=4,
        algorithm=algorithm,
    )
    assert_result(got, [0, 0, 1, 1], mAP=(1 / 3 + 2 / 4) / 2, mINP=0.5, num_valid=1)


def test_query_without_match_is_not_counted():
    dist = [[0.1, 0.2], [0.3, 0.4]]
    got = rank(dist, [1, 9], [1, 2], removal="none", max_rank=2, per_query=True)
    assert_result(got, [1, 1], mAP=1.0, mINP=1.0, num_valid=1)
    assert got["num_queries"] == 2
    np.testing.assert_array_equal(got["per_query"]["valid"], [True, False])
    np.testing.assert_array_equal(got["per_query"]["match_rank"], [1, 0])
    none = rank(dist, [8, 9], [1, 2], removal="none", max_rank=2)
    assert none["num_valid"] == 0 and np.isnan(none["mAP"]) and np.all(np.isnan(none["cmc"]))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_same_camera_rule(algorithm):
    g_ids = np.array([1, 2, 1, 1])
    g_cams = np.array([1, 1, 2, 1])
    dist = np.float32([[0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4]])
    # query 0 (id 1, cam 1): g0 and g3 removed (same id and camera), g1 (other id, same
    # camera) kept -> ranked g1, g2 -> match at 2: AP 1/2, INP 1/2
    # query 1 (id 1, cam 2): g2 removed -> ranked g0, g1, g3 -> matches at 1 and 3:
    # AP = (1 + 2/3) / 2, INP = 2/3
    got = rank(
        dist, [1, 1], g_ids, [1, 2], g_cams, removal="same_camera", max_rank=3, algorithm=algorithm
    )
    assert_result(
        got, [0.5, 1, 1], mAP=(0.5 + (1 + 2 / 3) / 2) / 2, mINP=(0.5 + 2 / 3) / 2, num_valid=2
    )


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_sysu_location_rule(algorithm):
    #            g0  g1  g2  g3  g4
    g_ids = np.array([2, 1, 1, 3, 3])
    g_cams = np.array([2, 1, 2, 4, 2])
    dist = np.float32([[0.1, 0.5, 0.2, 0.3, 0.4]] * 3)
    q_ids, q_cams = [1, 1, 2], [3, 6, 3]
    # query 0 (cam 3, room of cam 2): every cam-2 image is removed, whatever its identity
    #   -> ranked g3 (id 3), g1 (id 1): match at 2; AP 0.5, INP 0.5
    # query 1 (cam 6): nothing removed -> ranked ids 2, 1, 3, 3, 1: matches at 2 and 5
    #   AP = (1/2 + 2/5) / 2 = 0.45, INP = 2/5; identity-level list 2, 1, 3: rank 2
    # query 2 (cam 3, id 2): its only match g0 is in camera 2 -> not counted
    got = rank(
        dist, q_ids, g_ids, q_cams, g_cams, removal="same_location", max_rank=3, algorithm=algorithm
    )
    assert_result(got, [0, 1, 1], mAP=(0.5 + 0.45) / 2, mINP=(0.5 + 0.4) / 2, num_valid=2)
    ident = rank(
        dist,
        q_ids,
        g_ids,
        q_cams,
        g_cams,
        removal="same_location",
        cmc="identity",
        max_rank=3,
        algorithm=algorithm,
    )
    assert_result(ident, [0, 1, 1], mAP=(0.5 + 0.45) / 2, mINP=(0.5 + 0.4) / 2, num_valid=2)
    # the Market rule would keep the other identities of camera 2 for query 0
    market = rank(
        dist[:1],
        q_ids[:1],
        g_ids,
        q_cams[:1],
        g_cams,
        removal="same_camera",
        max_rank=3,
        algorithm=algorithm,
    )
    # nothing removed (no camera-3 gallery image): matches at ranks 2 and 5
    assert_result(market, [0, 1, 1], mAP=0.45, mINP=0.4, num_valid=1)
    # a custom location map: camera 6 shares a room with camera 4
    custom = rank(
        dist[1:2],
        [1],
        g_ids,
        [6],
        g_cams,
        removal="same_location",
        locations={6: 4},
        max_rank=3,
        algorithm=algorithm,
    )
    # g3 removed -> ranked ids 2, 1, 3, 1: matches at 2 and 4: AP = (1/2 + 2/4) / 2
    assert_result(custom, [0, 1, 1], mAP=0.5, mINP=0.5, num_valid=1)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_identity_level_cmc(algorithm):
    # ranked ids 2, 2, 3, 2, 1, 1: first match at rank 5; after removing repeated
    # identities the list is 2, 3, 1 -> rank 3. AP = (1/5 + 2/6) / 2, INP = 2/6.
    g_ids = np.array([2, 2, 3, 2, 1, 1])
    dist = np.float32([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])
    standard = rank(dist, [1], g_ids, removal="none", max_rank=6, algorithm=algorithm)
    assert_result(standard, [0, 0, 0, 0, 1, 1], mAP=(1 / 5 + 2 / 6) / 2, mINP=2 / 6, num_valid=1)
    ident = rank(dist, [1], g_ids, removal="none", cmc="identity", max_rank=6, algorithm=algorithm)
    assert_result(ident, [0, 0, 1, 1, 1, 1], mAP=(1 / 5 + 2 / 6) / 2, mINP=2 / 6, num_valid=1)
    # a tie between identities: g0 (id 3) and g1 (id 1) at 0.2 -> gallery order puts id 3
    # first (rank 2); with the gallery reversed id 1 comes first (rank 1)
    tie = rank(
        np.float32([[0.2, 0.2]]),
        [1],
        [3, 1],
        removal="none",
        cmc="identity",
        max_rank=2,
        algorithm=algorithm,
    )
    # CMC fractions of 0/1 counts in float64: exact (default rtol 1e-7).
    np.testing.assert_allclose(tie["cmc"], [0, 1])
    tie = rank(
        np.float32([[0.2, 0.2]]),
        [1],
        [1, 3],
        removal="none",
        cmc="identity",
        max_rank=2,
        algorithm=algorithm,
    )
    # CMC fractions of 0/1 counts in float64: exact (default rtol 1e-7).
    np.testing.assert_allclose(tie["cmc"], [1, 1])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_paired_frame_rule(algorithm):
    g_ids = np.array([1, 1, 2, 1])
    g_frames = np.array(["f1", "f2", "", ""])
    dist = np.float32([[0.1, 0.2, 0.15, 0.3], [0.1, 0.2, 0.15, 0.3]])
    # query 0 (id 1, frame f1): only g0, its paired frame, is removed
    #   -> ranked g2 (id 2), g1, g3: matches at 2 and 3: AP = (1/2 + 2/3) / 2, INP 2/3
    # query 1 (id 1, unpaired ''): nothing removed -> ranked g0, g2, g1, g3: matches at
    #   1, 3, 4: AP = (1 + 2/3 + 3/4) / 3, INP 3/4
    got = rank(
        dist,
        [1, 1],
        g_ids,
        removal="paired_frame",
        query_frames=["f1", ""],
        gallery_frames=g_frames,
        max_rank=2,
        algorithm=algorithm,
    )
    ap0, ap1 = (1 / 2 + 2 / 3) / 2, (1 + 2 / 3 + 3 / 4) / 3
    assert_result(got, [0.5, 1], mAP=(ap0 + ap1) / 2, mINP=(2 / 3 + 3 / 4) / 2, num_valid=2)


def test_cmc_longer_than_gallery_saturates():
    got = rank([[0.3, 0.1]], [1], [1, 2], removal="none", max_rank=4)
    # CMC fractions of 0/1 counts in float64: exact (default rtol 1e-7).
    np.testing.assert_allclose(got["cmc"], [0, 1, 1, 1])


@pytest.mark.parametrize("removal", ranking.REMOVAL_RULES)
@pytest.mark.parametrize("cmc", ranking.CMC_MODES)
def test_against_per_query_loop(removal, cmc, monkeypatch):
    # small blocks and two threads, so block boundaries are exercised too
    monkeypatch.setattr(ranking, "_MIN_BLOCK_ROWS", 7)
    monkeypatch.setattr(ranking, "NUM_THREADS", 2)
    rng = np.random.default_rng(42)
    for trial in range(8):
        nq, ng = int(rng.integers(1, 40)), int(rng.integers(1, 50))
        # integer distances: many ties
        dist = rng.integers(0, 6, (nq, ng)).astype(np.float32)
        if trial % 2:
            dist = rng.random((nq, ng)).astype(np.float32 if trial % 4 == 1 else np.float64)
        if trial == 2:
            dist[:, ::3] = -0.0  # -0.0 and +0.0 are equal distances: a tie
            dist[:, 1::3] = 0.0
        q_ids, g_ids = rng.integers(0, 6, nq), rng.integers(0, 6, ng)
        q_cams, g_cams = rng.integers(1, 7, nq), rng.integers(1, 7, ng)
        q_frames = rng.integers(0, 8, nq).astype(str)
        g_frames = rng.integers(0, 8, ng).astype(str)
        g_frames[rng.random(ng) < 0.2] = ""
        want = per_query_loop(
            dist, q_ids, g_ids, q_cams, g_cams, removal, cmc, 10, q_frames, g_frames
        )
        # candidate limit 0: 'filter' sorts instead, identity CMC uses per-identity minima
        for algorithm, limit in [("auto", 1.0), ("auto", 0.0)] + [(a, 1.0) for a in ALGORITHMS]:
            monkeypatch.setattr(match_ranks, "_FILTER_MAX_FRACTION", limit)
            got = rank(
                dist,
                q_ids,
                g_ids,
                q_cams,
                g_cams,
                removal=removal,
                cmc=cmc,
                max_rank=10,
                query_frames=q_frames,
                gallery_frames=g_frames,
                algorithm=algorithm,
            )
            assert got["num_valid"] == want["num_valid"]
            if want["num_valid"]:
                # float64 metrics vs an independent float64 reference: sum order only (~1e-16).
                np.testing.assert_allclose(got["cmc"], want["cmc"], atol=1e-12)
                assert got["mAP"] == pytest.approx(want["mAP"], abs=1e-12)
                assert got["mINP"] == pytest.approx(want["mINP"], abs=1e-12)


def test_rank_features_equals_rank_of_distances(monkeypatch):
    monkeypatch.setattr(ranking, "_MIN_BLOCK_ROWS", 5)
    rng = np.random.default_rng(3)
    q, g = rng.standard_normal((23, 6)), rng.standard_normal((31, 6))
    q_ids, g_ids = rng.integers(0, 5, 23), rng.integers(0, 5, 31)
    q_cams, g_cams = rng.integers(1, 4, 23), rng.integers(1, 4, 31)
    for metric in ("euclidean", "cosine", "l1"):
        want = rank(pairwise_distance(q, g, metric, chunk_size=4), q_ids, g_ids, q_cams, g_cams)
        got = rank_features(q, g, q_ids, g_ids, q_cams, g_cams, metric=metric, chunk_size=4)
        np.testing.assert_array_equal(got["cmc"], want["cmc"])
        assert got["mAP"] == want["mAP"] and got["num_valid"] == want["num_valid"]


def test_string_ids_and_float64_distances():
    got = rank(
        np.array([[0.2, 0.1]], np.float64), ["bob"], ["bob", "amy"], removal="none", max_rank=2
    )
    assert_result(got, [0, 1], mAP=0.5, mINP=0.5, num_valid=1)


def test_errors():
    with pytest.raises(ValueError, match="removal='bogus'"):
        rank([[0.0]], [1], [1], removal="bogus")
    with pytest.raises(ValueError, match="needs query_cams and gallery_cams"):
        rank([[0.0]], [1], [1])
    with pytest.raises(ValueError, match="needs query_frames and gallery_frames"):
        rank([[0.0]], [1], [1], removal="paired_frame")
    with pytest.raises(ValueError, match="cmc='rank'"):
        rank([[0.0]], [1], [1], removal="none", cmc="rank")
    with pytest.raises(ValueError, match="gallery_ids: expected 2 entries"):
        rank([[0.0, 1.0]], [1], [1], removal="none")
    with pytest.raises(ValueError, match="non-finite distance nan at query 1, gallery 0"):
        rank([[0.0], [np.nan]], [1, 1], [1], removal="none")
    with pytest.raises(ValueError, match="max_rank must be >= 1"):
        rank([[0.0]], [1], [1], removal="none", max_rank=0)


def test_filter_falls_back_to_sorting(monkeypatch):
    monkeypatch.setattr(match_ranks, "_FILTER_MAX_FRACTION", 0.15)
    rng = np.random.default_rng(9)
    dist = rng.random((30, 40)).astype(np.float32)  # random: most images are candidates
    q_ids, g_ids = rng.integers(0, 3, 30), rng.integers(0, 3, 40)
    block = dist.copy()
    rows, cols = np.nonzero(q_ids[:, None] == g_ids[None, :])
    order = np.arange(40)
    assert match_ranks._filter_ranks(block, rows, cols, block[rows, cols], order) is None
    got = rank(dist, q_ids, g_ids, removal="none", cmc="identity", algorithm="filter")
    want = per_query_loop(dist, q_ids, g_ids, cmc="identity", max_rank=20)
    # float64 metrics vs an independent float64 reference: sum order only (~1e-16).
    np.testing.assert_allclose(got["cmc"], want["cmc"], atol=1e-12)
    assert got["mAP"] == pytest.approx(want["mAP"], abs=1e-12)
