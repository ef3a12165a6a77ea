"""'hafner_code': Hafner 2018 as the author's evaluation code computed it, against hand-worked
examples and an independent NumPy transcription of open-reid/reid/evaluation_metrics/
ranking.py (`mean_ap`, `cmc`) and evaluators.py (`get_rand`, `getsame`) of
frhf/cross-modal-distillation-reidentification."""

import numpy as np
import pytest

import jaxreid.evaluation as ev
from jaxreid.evaluation import hafner_code as hc

# --------------------------------------------------------------- the reference transcription


def sklearn_ap(y_true, y_score):
    """scikit-learn >= 0.19 `average_precision_score` for one binary ranking, written from its
    definition: precision and recall read at every distinct score threshold (every entry
    scoring >= t counts), AP = sum of (recall step) x precision, thresholds high to low."""
    y_true, y_score = np.asarray(y_true, bool), np.asarray(y_score, np.float64)
    ap, recall_before = 0.0, 0.0
    for t in sorted(set(y_score.tolist()), reverse=True):
        kept = y_score >= t
        precision = y_true[kept].sum() / kept.sum()
        recall = y_true[kept].sum() / y_true.sum()
        ap += (recall - recall_before) * precision
        recall_before = recall
    return ap


def reference(dist, q_ids, g_ids, q_cams, g_cams, *, use_all, same=None, quirk=False, width=6):
    """ranking.py `mean_ap` and the *expected* `cmc(separate_camera_set=True,
    single_gallery_shot=True)` (the mean over every one-entry-per-person subsample, computed
    exactly instead of from 15 random ones), CMC to rank `width`. `same[i, j]` False for the
    identical image (`getsame`), in gallery order; `quirk`: applied to ranked positions as
    the code does."""
    aps, cmcs = [], []
    for i in range(len(q_ids)):
        order = np.argsort(dist[i], kind="stable")
        ids, d = g_ids[order], dist[i][order]
        match = ids == q_ids[i]
        if use_all:
            valid_ap = same[i] if quirk else same[i][order]
            valid_cmc = valid_ap
        else:
            cams = g_cams[order]
            valid_ap = (ids != q_ids[i]) | (cams != q_cams[i])
            valid_cmc = valid_ap & (cams != q_cams[i])
        if match[valid_ap].any():
            aps.append(sklearn_ap(match[valid_ap], -d[valid_ap]))
        if not match[valid_cmc].any():
            continue
        vids = ids[valid_cmc]
        pos = {p: np.flatnonzero(vids == p) for p in np.unique(vids)}
        # P(rank of the true person <= r): the mean over its entry a of the Poisson-binomial
        # law of "person p's sampled entry is ranked before a", over the persons p != it.
        cmc = np.zeros(width)
        for a in pos[q_ids[i]]:
            law = np.array([1.0])
            for p, entries in pos.items():
                if p != q_ids[i]:
                    before = np.mean(entries < a)
                    law = np.convolve(law, [1 - before, before])
            cdf = np.r_[np.cumsum(law), np.ones(width)][:width]
            cmc += cdf / len(pos[q_ids[i]])
        cmcs.append(cmc)
    return np.mean(aps), np.mean(cmcs, axis=0)


def metrics(dist, q_ids, g_ids, q_cams, g_cams, *, use_all, same=None, quirk=False, n=4000):
    return hc.code_pair_metrics(
        dist,
        q_ids,
        g_ids,
        identical=None if same is None else ~same,
        query_cams=q_cams,
        gallery_cams=g_cams,
        camera_rule=not use_all,
        use_all_quirk=quirk,
        rng=np.random.default_rng(0),
        subsamples=n,
        max_rank=6,
    )


# Hand-made draws: 6 queries against 14 gallery entries of persons 1-4 on cameras 0/1, with
# repeated images (equal columns) and ties between different persons.
Q_IDS = np.array([1, 1, 2, 3, 4, 2])
Q_CAMS = np.array([0, 1, 0, 1, 0, 0])
G_IDS = np.array([1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 1, 2, 3])
G_CAMS = np.array([0, 0, 1, 0, 1, 1, 0, 1, 1, 0, 0, 1, 0, 1])
IMAGE = np.array([0, 0, 1, 2, 3, 3, 4, 5, 5, 6, 6, 7, 8, 9])  # entries 0, 1 one image, ...
# Query i is image Q_IMAGE[i] (a single-modal pair); image 10 was not drawn into the gallery.
Q_IMAGE = np.array([0, 7, 2, 5, 10, 3])


def hand_distances():
    rng = np.random.default_rng(7)
    per_image = rng.integers(0, 5, (len(Q_IDS), IMAGE.max() + 1)).astype(np.float32)
    dist = per_image[:, IMAGE]  # repeated images tie exactly; integers tie across persons
    for i, image in enumerate(Q_IMAGE):
        dist[i, IMAGE == image] = 0.0  # the query itself, wherever it was drawn
    return dist


SAME = Q_IMAGE[:, None] != IMAGE[None, :]  # getsame: False for the identical image


def test_tie_grouped_ap_matches_sklearn_definition():
    # Hand-worked: distances 1, 2, 2, 3 with matches at the first and at one of the tied
    # pair: thresholds 1 (P 1/1, R 1/2), 2 (P 2/3, R 1): AP = 1/2 * 1 + 1/2 * 2/3 = 5/6,
    # whichever of the tied pair is the match (unlike a per-entry AP: 1/2 (1 + 2/2) or
    # 1/2 (1 + 2/3)).
    for y in ([1, 1, 0, 0], [1, 0, 1, 0]):
        assert hc.tie_grouped_average_precision([1, 2, 2, 3], y) == pytest.approx(5 / 6)
    # mINP reads the last true match's rank at the end of its tie group too: 2 / 3.
    res = hc.code_pair_metrics(
        np.array([[1, 2, 2, 3]], np.float32), [1], [1, 1, 2, 2], rng=np.random.default_rng(0)
    )
    assert res["mAP"] == pytest.approx(5 / 6) and res["mINP"] == pytest.approx(2 / 3)
    rng = np.random.default_rng(3)
    for _ in range(200):
        d = np.sort(rng.integers(0, 5, 12)).astype(np.float32)
        y = rng.random(12) < 0.4
        if y.any():
            # Both float64 sums over the same steps, in another order: rounding only (1e-12).
            assert hc.tie_grouped_average_precision(d, y) == pytest.approx(
                sklearn_ap(y, -d), abs=1e-12
            )


def sklearn_015_ap(y_true, y_score):
    """scikit-learn 0.15's `average_precision_score` (the release the author's
    environment.yml pins), written from its code's algebra: `precision_recall_curve` reads
    (recall, precision) at every distinct score threshold, high to low, keeps the points up to
    the first with recall 1 and appends (0, 1); `auc` integrates precision over recall with
    the trapezoid rule."""
    y_true, y_score = np.asarray(y_true, bool), np.asarray(y_score, np.float64)
    points = [(0.0, 1.0)]
    for t in sorted(set(y_score.tolist()), reverse=True):
        kept = y_score >= t
        points.append((y_true[kept].sum() / y_true.sum(), y_true[kept].sum() / kept.sum()))
        if points[-1][0] == 1.0:
            break
    r, p = np.array(points).T
    return float(np.sum(np.diff(r) * (p[1:] + p[:-1]) / 2))


def test_trapezoid_ap_is_scikit_learn_015s():
    # Hand-worked: matches at ranks 1 and 3 of 3, no ties: points (0, 1), (1/2, 1),
    # (1/2, 1/2), (1, 2/3): AP = 1/2 (1 + 1) / 2 + 0 + 1/2 (1/2 + 2/3) / 2 = 19/24, where the
    # step sum (scikit-learn >= 0.19) gives 1/2 + 1/2 * 2/3 = 5/6.
    d, y = [1.0, 2.0, 3.0], [True, False, True]
    assert hc.tie_grouped_trapezoid_average_precision(d, y) == pytest.approx(19 / 24)
    assert hc.tie_grouped_average_precision(d, y) == pytest.approx(5 / 6)
    rng = np.random.default_rng(5)
    for _ in range(300):
        d = np.sort(rng.integers(0, 5, 12)).astype(np.float32)  # ties, and false-match steps
        y = rng.random(12) < 0.4
        if y.any():
            # Both float64 sums over the same points, in another order: rounding only.
            assert hc.tie_grouped_trapezoid_average_precision(d, y) == pytest.approx(
                sklearn_015_ap(y, -d), abs=1e-12
            )
    # Through the protocol: each query's AP over its valid entries, rows in blocks.
    dist = rng.integers(0, 6, (40, 30)).astype(np.float32)
    q_ids, g_ids = rng.integers(0, 5, 40), rng.integers(0, 5, 30)
    same = rng.random((40, 30)) > 0.1
    got = hc.code_pair_metrics(
        dist, q_ids, g_ids, identical=~same, ap_definition="trapezoid",
        rng=np.random.default_rng(0),
    )
    aps = []
    for i in range(40):
        order = np.argsort(dist[i], kind="stable")
        valid = same[i][order]
        match = (g_ids[order] == q_ids[i])[valid]
        if match.any():
            aps.append(sklearn_015_ap(match, -dist[i][order][valid]))
    assert got["mAP"] == pytest.approx(np.mean(aps), abs=1e-12)  # rounding only
    with pytest.raises(ValueError, match="ap_definition"):
        hc.code_pair_metrics(dist, q_ids, g_ids, ap_definition="11point", rng=rng)


@pytest.mark.parametrize(
    "use_all, quirk",
    [(False, False), (True, False), (True, True)],
    ids=["camera_rule", "relaxed", "relaxed_use_all_quirk"],
)
def test_code_metrics_against_numpy_transcription(use_all, quirk):
    dist = hand_distances()
    got = metrics(dist, Q_IDS, G_IDS, Q_CAMS, G_CAMS, use_all=use_all, same=SAME, quirk=quirk)
    want_map, want_cmc = reference(
        dist, Q_IDS, G_IDS, Q_CAMS, G_CAMS, use_all=use_all, same=SAME, quirk=quirk
    )
    # mAP: exact but for float64 summation order.
    assert got["mAP"] == pytest.approx(want_map, abs=1e-12)
    # CMC: the mean of 4,000 random subsamples per query against the exact expectation; each
    # query's value has a standard deviation <= 0.5 / sqrt(4000) = 0.008, the mean over 5-6
    # queries about 0.0035, so 0.02 is over 5 standard deviations (and the seed is fixed).
    np.testing.assert_allclose(got["cmc"], want_cmc, atol=0.02)


def test_camera_rule_and_relaxation_differ_as_the_code_does():
    dist = hand_distances()
    rule = metrics(dist, Q_IDS, G_IDS, Q_CAMS, G_CAMS, use_all=False)
    relaxed = metrics(dist, Q_IDS, G_IDS, Q_CAMS, G_CAMS, use_all=True, same=SAME)
    # Query 4 (person 4, camera 0): all of person 4's entries are on camera 0, so the
    # camera rule leaves it no true match; relaxed, only identical images go (none for it).
    assert rule["num_valid"] == rule["num_valid_cmc"] == 5
    assert relaxed["num_valid"] == relaxed["num_valid_cmc"] == 6


def test_deterministic_cmc_under_the_camera_rule():
    # One gallery entry per person on another camera than the query: the single-shot
    # subsample is the whole valid gallery, so the CMC is the plain first-match CMC. The
    # same-camera entries of other persons stay in the AP (mean_ap removes only same person
    # *and* camera) but not in the CMC (separate_camera_set).
    q_ids, q_cams = np.array([1]), np.array([0])
    g_ids = np.array([2, 3, 1, 1])
    g_cams = np.array([0, 1, 1, 0])
    dist = np.array([[0.5, 1.0, 2.0, 0.1]], np.float32)
    # Ranked: g3 (1, cam 0: removed) g0 (2, cam 0) g1 (3) g2 (1): AP 1/3; CMC among cameras
    # != 0: g1 (3), g2 (1): rank 2.
    res = metrics(dist, q_ids, g_ids, q_cams, g_cams, use_all=False, n=15)
    assert res["mAP"] == pytest.approx(1 / 3)
    np.testing.assert_allclose(res["cmc"], [0, 1, 1, 1, 1, 1])
    assert res["mINP"] == pytest.approx(1 / 3)


def test_map_below_rank1_hand_worked():
    # One query of person A. Ranked gallery: B (0.1), A (0.2), A (0.3), then B at 0.4 ... 1.2
    # (10 B entries in all). AP = 1/2 * (1/2 + 2/3) = 7/12 = 0.583 (scikit-learn, no ties).
    # Single-gallery-shot CMC: the sampled B entry is the first one with probability 1/10,
    # otherwise A is first: expected rank-1 = 0.9 > mAP, as in the thesis tables (e.g.
    # Table 10 Q:RGB G:RGB, rank-1 50.3, mAP 28.3).
    d = np.r_[0.1, 0.2, 0.3, np.linspace(0.4, 1.2, 9)].astype(np.float32)[None]
    g_ids = np.array([2, 1, 1] + [2] * 9)
    res = hc.code_pair_metrics(
        d, [1], g_ids, rng=np.random.default_rng(0), subsamples=2000, max_rank=2
    )
    assert res["mAP"] == pytest.approx(7 / 12)
    # 2,000 subsamples: standard deviation sqrt(0.09 / 2000) = 0.0067; 0.03 is 4.5 of them.
    assert res["rank1"] == pytest.approx(0.9, abs=0.03)
    assert res["rank1"] > res["mAP"]


def test_query_blocks_change_no_bit(monkeypatch):
    # The queries are ranked in blocks; the CMC subsamples must come from the one random
    # stream in query order whatever the block size, and every metric must be bit-identical
    # to a one-query-at-a-time run (blocks of one query = the former per-query loop).
    rng = np.random.default_rng(4)
    q_ids, g_ids = rng.integers(0, 6, 40), np.repeat(np.arange(6), 9)
    q_cams, g_cams = rng.integers(0, 2, 40), rng.integers(0, 2, 54)
    dist = rng.integers(0, 7, (40, 54)).astype(np.float32)  # many ties
    same = rng.random((40, 54)) > 0.05
    for use_all, quirk in ((False, False), (True, False), (True, True)):
        args = (dist, q_ids, g_ids, q_cams, g_cams)
        got = metrics(*args, use_all=use_all, same=same, quirk=quirk, n=15)
        monkeypatch.setattr(hc, "_BLOCK_ELEMENTS", 1)  # one query per block
        one = metrics(*args, use_all=use_all, same=same, quirk=quirk, n=15)
        monkeypatch.undo()
        for key in ("mAP", "mINP", "num_valid", "num_valid_cmc"):
            assert got[key] == one[key], key
        np.testing.assert_array_equal(got["cmc"], one["cmc"])


def test_ranking_is_a_stable_argsort():
    # The float32 fast path (a sort of packed integer keys) against NumPy's stable argsort:
    # negative distances (cosine), -0.0 tying with 0.0, repeated values, infinities.
    rng = np.random.default_rng(5)
    values = np.array([-1.5, -0.0, 0.0, 1e-30, 0.25, 0.25, 3.0, np.inf, -np.inf], np.float32)
    dist = rng.choice(values, (7, 40))
    for d in (dist, dist.astype(np.float64), np.where(dist == 3.0, np.nan, dist)):
        order, ranked = hc._rank_rows(d)
        want = np.argsort(d, axis=1, kind="stable")
        np.testing.assert_array_equal(order, want)
        np.testing.assert_array_equal(ranked, np.take_along_axis(d, want, axis=1))


# ------------------------------------------------------------------------------- the draws


def test_draws_with_replacement_include_the_largest_id():
    ids = np.array([3] * 60 + [9] * 2 + [0] * 5)
    rows = hc.draw_with_replacement(ids, 50, np.random.default_rng(0))
    assert len(rows) == 150 and np.all(np.diff(rows) >= 0)  # ascending, as get_rand sorts
    for person in (0, 3, 9):  # 9, the largest id, is drawn (get_rand's range(max) is not)
        assert np.sum(ids[rows] == person) == 50
    assert len(np.unique(rows[ids[rows] == 9])) == 2  # drawn with replacement
    assert len(np.unique(rows[ids[rows] == 3])) < 50  # repeats even with 60 images
    again = hc.draw_with_replacement(ids, 50, np.random.default_rng(0))
    np.testing.assert_array_equal(rows, again)


def one_image_per_person():
    # Person A and B, one image each per modality, so every draw is 50 copies of it.
    return {
        "rgb": dict(feats=np.array([[0.0], [5.0]]), ids=np.array([1, 2]), cams=[0, 0]),
        "depth": dict(feats=np.array([[4.0], [1.0]]), ids=np.array([1, 2]), cams=[1, 1]),
    }


def test_repeated_draws_tie_as_one_step_end_to_end():
    res = ev.evaluate_modality_pairs(one_image_per_person(), protocol="hafner_code", seed=0)
    cross = res["Q:rgb G:depth"]
    assert cross["num_queries"] == cross["num_gallery"] == 100
    # Query A (0.0): 50 copies of B at 1, then 50 of A at 4: one threshold step, AP = 50/100
    # (per-entry AP would be mean(k / (50 + k)) = 0.31); query B (5.0) likewise. Rank-1 0.
    assert cross["mAP"] == pytest.approx(0.5) and cross["rank1"] == 0.0
    # rank-2: 15 additions of 1/15 per query, exact but for float rounding.
    assert cross["rank5"] == pytest.approx(1.0) and cross["mINP"] == pytest.approx(0.5)
    # Single-modal: every copy of the query image is the identical image and goes; no true
    # match is left, so no query is valid.
    assert res["Q:rgb G:rgb"]["num_valid"] == 0 and np.isnan(res["Q:rgb G:rgb"]["mAP"])


def test_pairs_share_each_modality_draws_and_record_the_seed():
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(4), 6)
    data = {
        m: dict(feats=rng.standard_normal((24, 3)), ids=ids, frames=[f"f{i}" for i in range(24)])
        for m in ("rgb", "depth")
    }
    res = ev.evaluate_modality_pairs(data, protocol="hafner_code", seed=5, max_queries_per_id=7)
    a, b = res["Q:rgb G:depth"], res["Q:rgb G:rgb"]
    np.testing.assert_array_equal(a["query_rows"], b["query_rows"])
    np.testing.assert_array_equal(a["gallery_rows"], res["Q:depth G:depth"]["gallery_rows"])
    assert a["seed"] == 5 and a["protocol"] == "hafner_code" and a["num_queries"] == 28
    # The two modalities draw independently (evaluate_cm calls get_rand once per modality).
    assert not np.array_equal(a["query_rows"], res["Q:depth G:rgb"]["query_rows"])


def test_relaxed_rule_removes_the_paired_frame_across_modalities():
    # RGB: A (0.0, frame a), B (9.0, frame c). Depth: A (0.0, frame a, A's paired frame),
    # A (3.0, frame b), B (1.0, frame d). The gallery holds k copies of depth A-a and 50 - k
    # of depth A-b (random k; 0 < k < 50 but with probability 2**-49).
    data = {
        "rgb": dict(feats=np.array([[0.0], [9.0]]), ids=np.array([1, 2]), frames=["a", "c"]),
        "depth": dict(
            feats=np.array([[0.0], [3.0], [1.0]]), ids=np.array([1, 1, 2]), frames=["a", "b", "d"]
        ),
    }
    res = ev.evaluate_modality_pairs(data, protocol="hafner_code", seed=0)["Q:rgb G:depth"]
    k = int(np.sum(res["gallery_rows"] == 0))
    assert 0 < k < 50 and res["num_valid"] == 100
    # A's queries (0.0): the k copies of the paired frame go; B (1.0) x 50 before A-b (3.0)
    # x (50 - k): rank 2, AP (50 - k) / (100 - k). Were they kept, rank 1 and AP 0.5 + k/100.
    # B's queries (9.0): A-b (6) x (50 - k), B (8) x 50, A-a (9) x k: AP 50 / (100 - k);
    # the mean of the two APs is exactly 1/2. Single-shot rank-1 of B: the sampled A entry is
    # A-a with probability k / 50, so the expected rank-1 is (0 + k/50) / 2.
    assert res["mAP"] == pytest.approx(0.5)
    # 50 B queries x 15 subsamples: standard deviation <= 0.5 / sqrt(750) / 2 = 0.009.
    assert res["rank1"] == pytest.approx(k / 100, abs=0.04)


def test_use_all_quirk_masks_modality_1_with_modality_2_draws():
    rng = np.random.default_rng(1)
    ids = np.repeat(np.arange(3), 4)
    data = {m: dict(feats=rng.standard_normal((12, 2)), ids=ids) for m in ("rgb", "depth")}
    res = ev.evaluate_modality_pairs(data, protocol="hafner_code", use_all_quirk=True, seed=2)
    rgb, depth = res["Q:rgb G:rgb"], res["Q:depth G:depth"]
    # evaluate_cm: same = getsame(query2_r, gallery2_r) for "one modal 1".
    same = depth["query_rows"][:, None] != depth["gallery_rows"][None, :]
    dist = ev.pairwise_distance(data["rgb"]["feats"], data["rgb"]["feats"])
    dist = dist[rgb["query_rows"]][:, rgb["gallery_rows"]]
    q_ids, g_ids = ids[rgb["query_rows"]], ids[rgb["gallery_rows"]]
    want, _ = reference(dist, q_ids, g_ids, None, None, use_all=True, same=same, quirk=True)
    # The same float64 APs averaged by two code paths: rounding only (1e-12).
    assert rgb["mAP"] == pytest.approx(want, abs=1e-12)


def test_bad_input_is_refused():
    data = one_image_per_person()
    with pytest.raises(ValueError, match="camera_rule / use_all_quirk / ap_definition belong to"):
        ev.evaluate_modality_pairs(data, protocol="hafner_text", camera_rule=True)
    with pytest.raises(ValueError, match="use_all_quirk=True belongs to the relaxed rule"):
        ev.evaluate_modality_pairs(
            data, protocol="hafner_code", camera_rule=True, use_all_quirk=True
        )
    no_cams = {m: {k: v for k, v in d.items() if k != "cams"} for m, d in data.items()}
    with pytest.raises(ValueError, match=r"needs 'cams' of every modality; \['rgb', 'depth'\]"):
        ev.evaluate_modality_pairs(no_cams, protocol="hafner_code", camera_rule=True)
    with pytest.raises(ValueError, match=r"dist has shape \(1, 2\); expected \[1, 3\]"):
        hc.code_pair_metrics(np.zeros((1, 2)), [1], [1, 2, 3], rng=np.random.default_rng(0))


# ------------------------------------------------------------ as a config selects it


def test_config_selects_the_camera_rule_for_the_test_only():
    from jaxreid import config as config_lib
    from jaxreid.data.image_set import ImageSet
    from jaxreid.evaluation import experiment

    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(5), 8).astype(np.int32)
    cams = np.tile([0, 1], 20).astype(np.int32)
    sets = {
        m: ImageSet(
            modality=m,
            images=np.zeros((40, 4, 2, 1), np.uint8),
            person_ids=ids,
            camera_ids=cams + (2 if m == "depth" else 0),
            frame_ids=np.asarray([f"f{i}" for i in range(40)], object),
            file_index=np.arange(40, dtype=np.int32),
            filenames=np.asarray([f"{m}/{i}.png" for i in range(40)], object),
        )
        for m in ("rgb", "depth")
    }
    feats = {m: rng.normal(size=(40, 4)).astype(np.float32) + ids[:, None] for m in sets}
    embed = lambda modality, image_set: feats[modality]
    config = config_lib.default_config()
    config.eval.protocol, config.eval.camera_rule = "hafner_code", True
    data = {
        m: dict(feats=feats[m], ids=ids, cams=s.camera_ids, frames=s.frame_ids)
        for m, s in sets.items()
    }
    got = experiment.test(embed, sets, config.eval)
    want = ev.evaluate_modality_pairs(data, protocol="hafner_code", camera_rule=True)
    relaxed = ev.evaluate_modality_pairs(data, protocol="hafner_code")
    for pair in want:
        assert got[pair]["mAP"] == want[pair]["mAP"] and got[pair]["camera_rule"]
    # Single-modal pairs: the rule takes out the query's camera (half the gallery).
    assert got["Q:rgb G:rgb"]["mAP"] != relaxed["Q:rgb G:rgb"]["mAP"]
    # Validation (thesis §4.3.1: relaxed on every validation set) never applies the rule.
    val = experiment.evaluate_pairs(embed, sets, config.eval, "hafner_code")
    assert val["Q:rgb G:rgb"]["mAP"] == relaxed["Q:rgb G:rgb"]["mAP"]
    assert not val["Q:rgb G:rgb"]["camera_rule"]
    # eval.ap='trapezoid' selects scikit-learn 0.15's AP for the code protocol.
    config.eval.ap = "trapezoid"
    trapezoid = experiment.test(embed, sets, config.eval)
    want = ev.evaluate_modality_pairs(
        data, protocol="hafner_code", camera_rule=True, ap_definition="trapezoid"
    )
    for pair in want:
        assert trapezoid[pair]["mAP"] == want[pair]["mAP"] != got[pair]["mAP"]
        assert trapezoid[pair]["ap_definition"] == "trapezoid"
    config.eval.ap = "non_interpolated"
    config.eval.test_protocol = "pairs"
    assert "hafner_code (50 draws per person with replacement" in experiment.protocol_tag(config)
    assert "camera rule" in experiment.protocol_tag(config)
