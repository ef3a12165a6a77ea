"""RegDB, Market-1501, Hafner 2018 protocols, modality pairs and fold aggregation."""

import numpy as np
import pytest

import jaxreid.evaluation as ev


def column(values):
    return np.array(values, np.float32)[:, None]


def loop_metrics(dist, q_ids, g_ids, removed=None):
    """Per-query loop: stable argsort, drop `removed[i]` gallery columns, standard CMC."""
    first, aps = [], []
    for i in range(len(q_ids)):
        order = np.argsort(dist[i], kind="stable")
        if removed is not None:
            order = order[~np.isin(order, removed[i])]
        match = g_ids[order] == q_ids[i]
        if match.any():
            pos = np.flatnonzero(match)
            first.append(pos[0])
            aps.append(np.mean(np.arange(1, len(pos) + 1) / (pos + 1)))
    first = np.array(first)
    return np.array([np.mean(first <= r) for r in range(20)]), np.mean(aps), len(aps)


# ----------------------------------------------------------------- RegDB


def test_regdb_hand_worked():
    trial1 = dict(
        visible_feats=column([0.0, 5.0]),
        visible_ids=[1, 2],
        thermal_feats=column([4.0, 9.0, 1.0]),
        thermal_ids=[1, 2, 1],
    )
    # visible -> thermal: query 0 (id 1): 1 (id 1), 4 (id 1), 9: AP 1
    #   query 5 (id 2): 1 (id 1), then a tie at 4: thermal 0 (id 1) before thermal 1 (id 2)
    #   in gallery order -> match at 2, AP 1/2
    # thermal -> visible: query 4 (id 1): 1 (id 2), 4 (id 1): AP 1/2; query 9 (id 2): AP 1;
    #   query 1 (id 1): AP 1
    trial2 = dict(
        visible_feats=column([0.0, 5.0]),
        visible_ids=[1, 2],
        thermal_feats=column([5.0, 0.0]),
        thermal_ids=[1, 2],
    )
    # every query sees the other identity first: AP 1/2 in both directions
    res = ev.regdb([trial1, trial2], max_rank=2)
    v2t, t2v = res["visible_to_thermal"], res["thermal_to_visible"]
    np.testing.assert_allclose(v2t["trials"][0]["cmc"], [0.5, 1])
    # float64 metrics vs hand-worked fractions (2/3, 2.5/3): rounding only, approx's rel 1e-6.
    assert v2t["trials"][0]["mAP"] == pytest.approx(0.75)
    assert t2v["trials"][0]["mAP"] == pytest.approx(2.5 / 3)
    np.testing.assert_allclose(v2t["cmc"], [0.25, 1])
    assert v2t["mAP"] == pytest.approx((0.75 + 0.5) / 2)
    np.testing.assert_allclose(t2v["cmc"], [1 / 3, 1])
    assert t2v["mAP"] == pytest.approx((2.5 / 3 + 0.5) / 2)
    assert res["num_trials"] == 2 and v2t["num_trials"] == 2
    with pytest.raises(ValueError, match=r"trial 0 lacks keys \['thermal_ids'\]"):
        ev.regdb([{k: v for k, v in trial1.items() if k != "thermal_ids"}])


def test_regdb_against_loop():
    rng = np.random.default_rng(0)
    v, t = rng.standard_normal((30, 4)), rng.standard_normal((25, 4))
    v_ids, t_ids = rng.integers(0, 6, 30), rng.integers(0, 6, 25)
    res = ev.regdb_trial(v, v_ids, t, t_ids)
    dist = ev.pairwise_distance(v, t)
    cmc, m, n = loop_metrics(dist, v_ids, t_ids)
    # float64 metrics vs an independent float64 reference: sum order only (~1e-16).
    np.testing.assert_allclose(res["visible_to_thermal"]["cmc"], cmc, atol=1e-12)
    assert res["visible_to_thermal"]["mAP"] == pytest.approx(m, abs=1e-12)
    cmc, m, n = loop_metrics(dist.T, t_ids, v_ids)
    assert res["thermal_to_visible"]["mAP"] == pytest.approx(m, abs=1e-12)


# ----------------------------------------------------------------- Market-1501


def test_market_hand_worked():
    q = column([0.0])
    g = column([0.5, 1.0, 0.2, 2.0])
    g_ids, g_cams = [-1, 0, 1, 1], [2, 2, 1, 2]
    # junk (-1) dropped, g2 (same id and camera) removed -> ranked distractor (id 0), match:
    # rank 2, AP 1/2
    res = ev.market1501(q, [1], [1], g, g_ids, g_cams, max_rank=2)
    np.testing.assert_allclose(res["cmc"], [0, 1])
    assert res["mAP"] == pytest.approx(0.5) and res["num_junk"] == 1
    # keeping the junk image as a negative: rank 3, AP 1/3
    kept = ev.market1501(q, [1], [1], g, g_ids, g_cams, max_rank=3, junk_ids=())
    np.testing.assert_allclose(kept["cmc"], [0, 0, 1])
    assert kept["mAP"] == pytest.approx(1 / 3)
    # the same from a precomputed distance matrix
    pre = ev.market1501(
        None, [1], [1], None, g_ids, g_cams, max_rank=2, distmat=ev.pairwise_distance(q, g)
    )
    assert pre["mAP"] == res["mAP"]


# ----------------------------------------------------------------- Hafner 2018


def test_query_and_gallery_selection():
    ids = np.array([5] * 60 + [7] * 10 + [2] * 3)
    rows = ev.select_queries(ids, 50, seed=0)
    assert np.sum(ids[rows] == 5) == 50 and np.sum(ids[rows] == 7) == 10
    assert np.sum(ids[rows] == 2) == 3 and len(np.unique(rows)) == len(rows)
    np.testing.assert_array_equal(rows, ev.select_queries(ids, 50, seed=0))  # seeded
    assert not np.array_equal(rows, ev.select_queries(ids, 50, seed=1))
    assert len(ev.select_queries(ids, None, seed=0)) == len(ids)
    gal = ev.select_single_shot_gallery(ids, seed=0, repeat=0)
    np.testing.assert_array_equal(ids[gal], [2, 5, 7])  # one per identity, ascending
    draws = {tuple(ev.select_single_shot_gallery(ids, 0, r)) for r in range(10)}
    assert len(draws) > 1  # repeats draw different galleries


def test_hafner_hand_worked_paired_frames():
    # RGB queries: a1 (A, 0.0), a2 (A, 1.0), b1 (B, 5.0), c2 (C, 2.0, unpaired)
    # depth gallery (one image per person, so every repeat draws the same):
    #   a1 (A, 0.2), b1 (B, 4.0), c1 (C, 0.9)
    # a1: its paired depth frame a1 is removed -> no true match left, not counted
    # a2: 0.9 (C), 0.2 (A), 4.0 -> rank 2, AP 1/2
    # b1: paired b1 removed -> not counted
    # c2: 0.9 (C) first -> AP 1
    res = ev.hafner2018(
        column([0.0, 1.0, 5.0, 2.0]),
        ["A", "A", "B", "C"],
        column([0.2, 4.0, 0.9]),
        ["A", "B", "C"],
        query_frames=["a1", "a2", "b1", ""],
        gallery_frames=["a1", "b1", "c1"],
        repeats=3,
        seed=4,
    )
    # float64 metrics vs hand-worked fractions (2/3, 2.5/3): rounding only, approx's rel 1e-6.
    assert res["cmc"][0] == pytest.approx(0.5) and res["cmc"][1] == pytest.approx(1.0)
    assert res["rank1"] == pytest.approx(0.5) and res["mAP"] == pytest.approx(0.75)
    assert [t["num_valid"] for t in res["trials"]] == [2, 2, 2]
    assert res["seed"] == 4 and res["removal"] == "paired_frame" and len(res["gallery_rows"]) == 3


def test_hafner_single_modal_against_loop():
    rng = np.random.default_rng(1)
    ids = np.repeat(np.arange(6), rng.integers(2, 9, 6))
    feats = rng.standard_normal((len(ids), 3))
    res = ev.hafner2018(
        feats, ids, feats, ids, same_images=True, seed=2, repeats=4, max_queries_per_id=3
    )
    q_rows = res["query_rows"]
    assert all(np.sum(ids[q_rows] == i) == min(3, np.sum(ids == i)) for i in range(6))
    for rows, trial in zip(res["gallery_rows"], res["trials"]):
        assert sorted(ids[rows]) == list(range(6))
        dist = ev.pairwise_distance(feats[q_rows], feats[rows])
        # only the query image itself is removed
        removed = [np.flatnonzero(rows == r) for r in q_rows]
        cmc, m, n = loop_metrics(dist, ids[q_rows], ids[rows], removed)
        np.testing.assert_allclose(trial["cmc"], cmc, atol=1e-12)
        # float64 metrics vs an independent float64 reference: sum order only (~1e-16).
        assert trial["mAP"] == pytest.approx(m, abs=1e-12) and trial["num_valid"] == n
    again = ev.hafner2018(
        feats, ids, feats, ids, same_images=True, seed=2, repeats=4, max_queries_per_id=3
    )
    assert again["mAP"] == res["mAP"]


def paired_set(rng, n_ids=5, per_id=6, dim=4):
    ids = np.repeat(np.arange(n_ids), per_id)
    frames = np.array([f"f{i}" for i in range(len(ids))])
    base = rng.standard_normal((n_ids, dim))[ids]
    rgb = base + 0.5 * rng.standard_normal(base.shape)
    depth = base + 0.5 * rng.standard_normal(base.shape)
    return {
        "rgb": {"feats": rgb, "ids": ids, "frames": frames},
        "depth": {"feats": depth, "ids": ids, "frames": frames},
    }


def test_evaluate_modality_pairs_hafner():
    data = paired_set(np.random.default_rng(3))
    res = ev.evaluate_modality_pairs(data, seed=5, repeats=3, max_queries_per_id=4)
    assert list(res) == ["Q:rgb G:depth", "Q:depth G:rgb", "Q:rgb G:rgb", "Q:depth G:depth"]
    for value in res.values():
        assert {"rank1", "rank5", "rank10", "mAP", "mINP", "cmc", "seed"} <= set(value)
    direct = ev.hafner2018(
        data["rgb"]["feats"],
        data["rgb"]["ids"],
        data["depth"]["feats"],
        data["depth"]["ids"],
        query_frames=data["rgb"]["frames"],
        gallery_frames=data["depth"]["frames"],
        seed=5,
        repeats=3,
        max_queries_per_id=4,
    )
    assert res["Q:rgb G:depth"]["mAP"] == direct["mAP"]
    # one seed picks the same queries of a modality in every pair
    np.testing.assert_array_equal(
        res["Q:rgb G:depth"]["query_rows"], res["Q:rgb G:rgb"]["query_rows"]
    )


def test_evaluate_modality_pairs_full_against_loop():
    data = paired_set(np.random.default_rng(4))
    res = ev.evaluate_modality_pairs(data, protocol="full")
    ids, n = data["rgb"]["ids"], len(data["rgb"]["ids"])
    # cross-modal: only the paired frame (same index here) is removed; single-modal: only
    # the query image itself
    for name, (qm, gm) in {
        "Q:rgb G:depth": ("rgb", "depth"),
        "Q:depth G:depth": ("depth", "depth"),
    }.items():
        dist = ev.pairwise_distance(data[qm]["feats"], data[gm]["feats"])
        cmc, m, valid = loop_metrics(dist, ids, ids, [np.array([i]) for i in range(n)])
        # float64 metrics vs an independent float64 reference: sum order only (~1e-16).
        np.testing.assert_allclose(res[name]["cmc"], cmc, atol=1e-12)
        assert res[name]["mAP"] == pytest.approx(m, abs=1e-12)
        assert res[name]["num_valid"] == valid == n
    with pytest.raises(ValueError, match="protocol='bogus'"):
        ev.evaluate_modality_pairs(data, protocol="bogus")
    with pytest.raises(ValueError, match=r"features_by_modality\['rgb'\] lacks 'ids'"):
        ev.evaluate_modality_pairs({"rgb": {"feats": np.zeros((2, 2))}})


def test_aggregate_folds():
    folds = [
        {"Q:rgb G:depth": {"mAP": m, "rank1": r, "cmc": np.array([r, 1.0]), "seed": s}}
        for m, r, s in ((0.2, 0.1, 0), (0.4, 0.2, 1), (0.6, 0.6, 2))
    ]
    agg = ev.aggregate_folds(folds)["Q:rgb G:depth"]
    # float64 metrics vs hand-worked fractions (2/3, 2.5/3): rounding only, approx's rel 1e-6.
    assert agg["mAP"] == pytest.approx(0.4)
    # population std: sqrt((0.2^2 + 0 + 0.2^2) / 3)
    assert agg["mAP_std"] == pytest.approx(np.sqrt(0.08 / 3))
    assert agg["rank1"] == pytest.approx(0.3)
    assert agg["rank1_std"] == pytest.approx(np.sqrt((0.04 + 0.01 + 0.09) / 3))
    np.testing.assert_allclose(agg["cmc"], [0.3, 1.0])
    assert agg["num_folds"] == 3 and agg["seeds"] == [0, 1, 2]
    assert agg["folds"]["mAP"] == [0.2, 0.4, 0.6]
    sample = ev.aggregate_folds([f["Q:rgb G:depth"] for f in folds], ddof=1)
    assert sample["mAP_std"] == pytest.approx(0.2)  # sqrt(0.08 / 2)


def test_collapsed_features_are_flagged_and_fold_means_na():
    # Hafner 2018 §4.3.2: a network that embeds every image in one point is reported n/a;
    # every distance ties, so its metrics only reflect the gallery's order.
    data = paired_set(np.random.default_rng(6))
    data["depth"] = dict(data["depth"], feats=np.zeros_like(data["depth"]["feats"]))
    res = ev.evaluate_modality_pairs(data, seed=1, repeats=2, max_queries_per_id=4)
    assert {p: r["collapsed"] for p, r in res.items()} == {
        "Q:rgb G:depth": True,
        "Q:depth G:rgb": True,
        "Q:rgb G:rgb": False,
        "Q:depth G:depth": True,
    }
    fine = {"mAP": 0.5, "rank1": 0.4, "collapsed": False}
    failed = {"mAP": 0.1, "rank1": 0.1, "collapsed": True}
    agg = ev.aggregate_folds([fine, failed, fine])
    assert agg["collapsed"] is True and agg["collapsed_folds"] == 1
    assert "collapsed" not in ev.aggregate_folds([fine, fine])


@pytest.mark.parametrize("ap, expected", [("non_interpolated", 0.75), ("trapezoid", 0.708333)])
def test_market1501_average_precision_definitions(ap, expected):
    # Issue 13's hand example: query id 1, camera 1; ranked gallery [id 1 cam 1 (junk: same
    # camera), id 1 cam 2, label -1 (junk), id 2, label 0 (distractor), id 1 cam 3]. The
    # matches are at ranks 1 and 4 of the 4 kept images.
    # non-interpolated (torchreid): (1/1 + 2/4) / 2 = 0.75;
    # trapezoid (Zheng et al. 2015 compute_AP.m): precision 1 -> 1 over recall 0 -> 1/2, then
    # 1/3 -> 2/4 over 1/2 -> 1: 1/2 * 1 + 1/2 * (1/3 + 1/2) / 2 = 0.708333.
    distmat = np.array([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
    gallery_ids = np.array([1, 1, -1, 2, 0, 1])
    gallery_cams = np.array([1, 2, 1, 1, 1, 3])
    result = ev.market1501(None, [1], [1], None, gallery_ids, gallery_cams, distmat=distmat, ap=ap)
    # The expected values are written to 6 decimals (0.708333): abs 5e-7.
    assert result["mAP"] == pytest.approx(expected, abs=5e-7)
    assert result["ap_definition"] == ap
    # Feature input ranks the same way (1-D features at the distances above).
    feats = ev.market1501(np.zeros((1, 1)), [1], [1], distmat.T, gallery_ids, gallery_cams, ap=ap)
    assert feats["mAP"] == pytest.approx(expected, abs=5e-7)
