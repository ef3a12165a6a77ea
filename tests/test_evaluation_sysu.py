"""SYSU-MM01 protocol: permutation file reader, gallery samplers and metrics.

References: the official MATLAB code (wuancong/SYSU-MM01, evaluation/get_testing_set.m,
get_cmc_multi_cam.m, get_map_multi_cam.m) and the seeded Python re-implementation
(mangye16/Cross-Modal-Re-ID-baseline, data_manager.process_gallery_sysu), both re-written
below as plain loops.
"""

import os
import random

import numpy as np
import pytest
from scipy.io import savemat, whosmat

import jaxreid.evaluation as ev

# The official files live beside the repository in ../shared (never committed here).
REAL_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "..",
    "shared",
    "reference",
    "sysu_mm01",
)
CAM_LOCATION = {1: 1, 2: 2, 3: 2, 4: 4, 5: 5, 6: 6}  # evaluation_SYSU_MM01.m: cam_id


def write_perm_file(path, perms, trials):
    """rand_perm_cam.mat in the official structure: 6 x 1 cell of (persons x 1) cells."""
    cams = np.empty((6, 1), dtype=object)
    for c in range(1, 7):
        n_persons = max([p for (cam, p) in perms if cam == c], default=0)
        inner = np.empty((n_persons, 1), dtype=object)
        for p in range(1, n_persons + 1):
            inner[p - 1, 0] = np.asarray(perms.get((c, p), np.zeros((trials, 0))), np.uint8)
        cams[c - 1, 0] = inner
    savemat(path, {"rand_perm_cam": cams})
    return path


# ----------------------------------------------------------------- a small worked example
# Persons 1 and 2, 1-D features. Gallery (RGB) images by (camera, person), in file order:
GALLERY = {
    (1, 1): [1.0, 5.0, 9.0],
    (1, 2): [2.0, 8.0],
    (2, 1): [0.0, 7.0],
    (2, 2): [3.0, 6.0],
    (4, 2): [2.95],
}
# Two trials; row t = trial t, 1-based image indices.
PERMS = {
    (1, 1): [[3, 1, 2], [2, 3, 1]],
    (1, 2): [[2, 1], [1, 2]],
    (2, 1): [[1, 2], [2, 1]],
    (2, 2): [[2, 1], [1, 2]],
    (4, 2): [[1], [1]],
}


def example_arrays():
    ids, cams, index, feats = [], [], [], []
    for (cam, pid), values in GALLERY.items():
        for k, v in enumerate(values, start=1):
            ids.append(pid), cams.append(cam), index.append(k), feats.append([v])
    return (np.array(feats, np.float32), np.array(ids), np.array(cams), np.array(index))


@pytest.fixture
def perm_file(tmp_path):
    return write_perm_file(tmp_path / "rand_perm_cam.mat", PERMS, trials=2)


def test_reader_reads_matlab_structure(perm_file):
    assert whosmat(perm_file) == [("rand_perm_cam", (6, 1), "cell")]  # as the official file
    perms = ev.load_sysu_permutations(perm_file)
    assert set(perms) == set(PERMS)
    for key, value in PERMS.items():
        assert perms[key].dtype == np.int64  # widened from the file's uint8
        np.testing.assert_array_equal(perms[key], value)


def test_official_selection_order(perm_file):
    _, ids, cams, index = example_arrays()
    perms = ev.load_sysu_permutations(perm_file)
    sel = ev.sysu_gallery_selection(
        ids, cams, index, mode="indoor", shots=2, trial=0, permutations=perms
    )
    # camera 1: person 1 images 3, 1; person 2 images 2, 1; camera 2: person 1 images 1, 2;
    # person 2 images 2, 1 (get_testing_set.m: cameras, persons, permutation order)
    want = [(1, 1, 3), (1, 1, 1), (1, 2, 2), (1, 2, 1), (2, 1, 1), (2, 1, 2), (2, 2, 2), (2, 2, 1)]
    assert list(zip(cams[sel], ids[sel], index[sel])) == want
    sel = ev.sysu_gallery_selection(
        ids, cams, index, mode="all", shots=1, trial=1, permutations=perms
    )
    assert list(zip(cams[sel], ids[sel], index[sel])) == [
        (1, 1, 2),
        (1, 2, 1),
        (2, 1, 2),
        (2, 2, 1),
        (4, 2, 1),
    ]


def run_example(perm_file, query_feats, query_ids, query_cams, **kw):
    feats, ids, cams, index = example_arrays()
    return ev.sysu_mm01(
        np.array(query_feats, np.float32)[:, None],
        query_ids,
        query_cams,
        feats,
        ids,
        cams,
        index,
        perm_file=perm_file,
        **kw,
    )


def test_hand_worked_indoor_single_shot(perm_file):
    res = run_example(
        perm_file, [0.1, 2.9], [1, 2], [3, 6], mode="indoor", shots=1, trials=2, max_rank=2
    )
    # trial 0, gallery 9.0 (c1 p1), 8.0 (c1 p2), 0.0 (c2 p1), 6.0 (c2 p2):
    #   query 0.1 (camera 3, person 1): camera 2 removed -> 8.0 (p2), 9.0 (p1): rank 2,
    #     AP 1/2, INP 1/2
    #   query 2.9 (camera 6, person 2): 0.0 (p1), 6.0 (p2), 8.0 (p2), 9.0 (p1): matches at
    #     2 and 3: AP (1/2 + 2/3)/2, INP 2/3; identity list p1, p2: rank 2
    # trial 1, gallery 5.0 (c1 p1), 2.0 (c1 p2), 7.0 (c2 p1), 3.0 (c2 p2):
    #   query 0.1: 2.0 (p2), 5.0 (p1): rank 2, AP 1/2, INP 1/2
    #   query 2.9: 3.0 (p2), 2.0 (p2), 5.0, 7.0: rank 1, AP 1, INP 1
    t0, t1 = res["trials"]
    # float64 metrics vs hand-worked fractions (2/3, 2.5/3): rounding only, approx's rel 1e-6.
    np.testing.assert_allclose(t0["cmc"], [0, 1])
    assert t0["mAP"] == pytest.approx((0.5 + (1 / 2 + 2 / 3) / 2) / 2)
    assert t0["mINP"] == pytest.approx((0.5 + 2 / 3) / 2)
    np.testing.assert_allclose(t1["cmc"], [0.5, 1])
    assert t1["mAP"] == pytest.approx(0.75) and t1["mINP"] == pytest.approx(0.75)
    np.testing.assert_allclose(res["cmc"], [0.25, 1])
    assert res["rank1"] == pytest.approx(0.25)
    assert res["mAP"] == pytest.approx(((0.5 + (1 / 2 + 2 / 3) / 2) / 2 + 0.75) / 2)
    assert res["num_trials"] == 2 and [t["gallery_size"] for t in res["trials"]] == [4, 4]
    assert res["sampler"] == "official" and res["perm_file"] == os.fspath(perm_file)


def test_hand_worked_indoor_multi_shot(perm_file):
    res = run_example(
        perm_file, [0.1, 2.9], [1, 2], [3, 6], mode="indoor", shots=2, trials=1, max_rank=2
    )
    # gallery 9.0, 1.0 (c1 p1); 8.0, 2.0 (c1 p2); 0.0, 7.0 (c2 p1); 6.0, 3.0 (c2 p2)
    # query 0.1 (cam 3): camera 2 removed -> 1.0 (p1), 2.0, 8.0 (p2), 9.0 (p1): matches at 1
    #   and 4: AP (1 + 2/4)/2 = 0.75, INP 2/4
    # query 2.9 (cam 6): 3.0 (p2), 2.0 (p2), 1.0 (p1), 0.0 (p1), 6.0 (p2), 7.0 (p1),
    #   8.0 (p2), 9.0 (p1): matches at 1, 2, 5, 7: AP (1 + 1 + 3/5 + 4/7)/4, INP 4/7
    ap1 = (1 + 1 + 3 / 5 + 4 / 7) / 4
    np.testing.assert_allclose(res["cmc"], [1, 1])
    assert res["mAP"] == pytest.approx((0.75 + ap1) / 2)
    # float64 metrics vs hand-worked fractions (2/3, 2.5/3): rounding only, approx's rel 1e-6.
    assert res["mINP"] == pytest.approx((0.5 + 4 / 7) / 2)


def test_hand_worked_all_search_identity_cmc(perm_file):
    res = run_example(
        perm_file, [0.1, 2.9], [1, 2], [3, 6], mode="all", shots=1, trials=1, max_rank=3
    )
    # gallery 9.0 (c1 p1), 8.0 (c1 p2), 0.0 (c2 p1), 6.0 (c2 p2), 2.95 (c4 p2)
    # query 0.1 (cam 3): camera 2 removed -> 2.95 (p2), 8.0 (p2), 9.0 (p1): first match at
    #   rank 3, identity list p2, p1 -> rank 2; AP 1/3, INP 1/3
    # query 2.9 (cam 6): 2.95 (p2), 0.0 (p1), 6.0 (p2), 8.0 (p2), 9.0: matches at 1, 3, 4:
    #   AP (1 + 2/3 + 3/4)/3, INP 3/4; rank 1
    np.testing.assert_allclose(res["cmc"], [0.5, 1, 1])
    assert res["mAP"] == pytest.approx((1 / 3 + (1 + 2 / 3 + 3 / 4) / 3) / 2)
    assert res["mINP"] == pytest.approx((1 / 3 + 3 / 4) / 2)


def test_ties_follow_official_gallery_order(perm_file):
    # query 4.0 (camera 6, person 1), trial 0 gallery 9.0 (c1 p1), 8.0 (c1 p2), 0.0 (c2 p1),
    # 6.0 (c2 p2): distances 5, 4, 4, 2. The tie at 4 keeps gallery order: c1 p2 before
    # c2 p1, so the ranked ids are p2, p2, p1, p1: matches at 3 and 4, AP (1/3 + 2/4)/2.
    # (Breaking it the other way would give AP (1/2 + 2/4)/2.) Identity list p2, p1: rank 2.
    res = run_example(perm_file, [4.0], [1], [6], mode="indoor", shots=1, trials=1, max_rank=2)
    assert res["mAP"] == pytest.approx((1 / 3 + 2 / 4) / 2)
    assert res["mINP"] == pytest.approx(0.5)
    # CMC fractions of 0/1 counts in float64: exact (default rtol 1e-7).
    np.testing.assert_allclose(res["cmc"], [0, 1])


# ----------------------------------------------------------------- reference loops


def matlab_reference(
    q_feats, q_ids, q_cams, g_feats, g_ids, g_cams, g_index, perms, mode, shots, trial, max_rank=20
):
    """evaluation_SYSU_MM01.m for one trial, written as plain loops."""
    cams = (1, 2, 4, 5) if mode == "all" else (1, 2)
    rows = []
    for cam in cams:  # get_testing_set.m
        for pid in sorted(set(g_ids[g_cams == cam].tolist())):
            for k in perms[(cam, pid)][trial, :shots]:
                rows.append(np.flatnonzero((g_cams == cam) & (g_ids == pid) & (g_index == k))[0])
    rows = np.array(rows)
    gal_ids, gal_loc = g_ids[rows], np.array([CAM_LOCATION[c] for c in g_cams[rows]])
    diff = q_feats[:, None, :].astype(np.float64) - g_feats[rows][None, :, :]
    dist = np.sqrt((diff**2).sum(-1))
    counter = np.zeros(max_rank)
    aps, valid = [], 0
    for i in range(len(q_ids)):
        order = np.argsort(dist[i], kind="stable")  # MATLAB's sort is stable
        kept = gal_ids[order][gal_loc[order] != CAM_LOCATION[q_cams[i]]]
        unique = []
        for x in kept:  # unique(..., 'stable')
            if x not in unique:
                unique.append(x)
        match = np.array(unique) == q_ids[i]
        if match.any():
            valid += 1
            r = int(np.flatnonzero(match)[0])
            if r < max_rank:
                counter[r] += 1
            true_rank = np.flatnonzero(kept == q_ids[i]) + 1
            aps.append(np.mean(np.arange(1, len(true_rank) + 1) / true_rank))
    return np.cumsum(counter) / valid, np.mean(aps), rows


def random_sysu(rng, layout, dim=2):
    """Integer features: many exact ties, and float32 distances rank like float64 ones."""
    q, g = {"ids": [], "cams": []}, {"ids": [], "cams": [], "index": []}
    for (cam, pid), n in sorted(layout.items()):
        target = q if cam in (3, 6) else g
        target["ids"] += [pid] * n
        target["cams"] += [cam] * n
        if target is g:
            target["index"] += list(range(1, n + 1))
    q = {k: np.array(v) for k, v in q.items()}
    g = {k: np.array(v) for k, v in g.items()}
    q["feats"] = rng.integers(0, 4, (len(q["ids"]), dim)).astype(np.float32)
    g["feats"] = rng.integers(0, 4, (len(g["ids"]), dim)).astype(np.float32)
    return q, g


@pytest.mark.parametrize("mode,shots", [("all", 1), ("all", 3), ("indoor", 2)])
def test_against_matlab_reference_loop(tmp_path, mode, shots):
    rng = np.random.default_rng(7)
    layout = {}
    for pid in (1, 2, 4, 5, 9):
        for cam in (1, 2, 3, 4, 5, 6):
            if rng.random() < 0.8:
                layout[(cam, pid)] = int(rng.integers(3, 6))
    trials = 3
    perms = {
        k: np.stack([rng.permutation(n) + 1 for _ in range(trials)]) for k, n in layout.items()
    }
    path = write_perm_file(tmp_path / "perm.mat", perms, trials)
    q, g = random_sysu(rng, layout)
    res = ev.sysu_mm01(
        q["feats"],
        q["ids"],
        q["cams"],
        g["feats"],
        g["ids"],
        g["cams"],
        g["index"],
        mode=mode,
        shots=shots,
        perm_file=path,
        trials=trials,
    )
    for t in range(trials):
        cmc, m, rows = matlab_reference(
            q["feats"],
            q["ids"],
            q["cams"],
            g["feats"],
            g["ids"],
            g["cams"],
            g["index"],
            perms,
            mode,
            shots,
            t,
        )
        np.testing.assert_array_equal(res["gallery_rows"][t], rows)
        # float64 metrics vs an independent float64 reference: sum order only (~1e-16).
        np.testing.assert_allclose(res["trials"][t]["cmc"], cmc, atol=1e-12)
        assert res["trials"][t]["mAP"] == pytest.approx(m, abs=1e-12)


def mangye16_reference(root, ids, mode, trial, shots):
    """data_manager.process_gallery_sysu of mangye16/Cross-Modal-Re-ID-baseline, as a loop
    over real folders (shots > 1: jaxreid's random.sample extension)."""
    random.seed(trial)
    cams = ["cam1", "cam2", "cam4", "cam5"] if mode == "all" else ["cam1", "cam2"]
    files = []
    for pid in sorted("%04d" % x for x in ids):
        for cam in cams:
            img_dir = os.path.join(root, cam, pid)
            if os.path.isdir(img_dir):
                new_files = sorted(img_dir + "/" + f for f in os.listdir(img_dir))
                if shots == 1:
                    files.append(random.choice(new_files))
                else:
                    files.extend(random.sample(new_files, shots))
    return files


@pytest.mark.parametrize("mode,shots", [("all", 1), ("indoor", 1), ("all", 2)])
def test_seeded_sampler_matches_python_reimplementation(tmp_path, mode, shots):
    rng = np.random.default_rng(5)
    paths, ids, cams, index = [], [], [], []
    for pid in (12, 3, 7, 20):
        for cam in (1, 2, 4, 5):
            if (pid, cam) in ((12, 2), (7, 4)):
                continue  # these cameras never saw these persons
            n = int(rng.integers(2, 7))
            folder = tmp_path / f"cam{cam}" / f"{pid:04d}"
            folder.mkdir(parents=True)
            names = [f"{int(x):04d}.jpg" for x in rng.choice(9999, n, replace=False)]
            for name in names:
                (folder / name).touch()
            for k, name in enumerate(sorted(names), start=1):  # file_index: file-name order
                paths.append(f"{folder}/{name}"), ids.append(pid), cams.append(cam)
                index.append(k)
    paths, ids, cams, index = map(np.array, (paths, ids, cams, index))
    for trial in range(4):
        want = mangye16_reference(str(tmp_path), set(ids.tolist()), mode, trial, shots)
        sel = ev.sysu_gallery_selection(
            ids, cams, index, mode=mode, shots=shots, trial=trial, sampler="seeded"
        )
        assert paths[sel].tolist() == want


def test_settings_equal_single_calls(tmp_path):
    rng = np.random.default_rng(11)
    layout = {(c, p): int(rng.integers(3, 5)) for c in (1, 2, 3, 4, 5, 6) for p in (1, 2, 3)}
    q, g = random_sysu(rng, layout, dim=3)
    args = (q["feats"], q["ids"], q["cams"], g["feats"], g["ids"], g["cams"], g["index"])
    grid = ev.sysu_mm01_settings(
        *args, settings=("all_single", "indoor_single"), sampler="seeded", trials=2
    )
    assert list(grid) == ["all_single", "indoor_single"]
    single = ev.sysu_mm01(*args, mode="indoor", shots=1, sampler="seeded", trials=2)
    assert grid["indoor_single"]["mAP"] == single["mAP"]
    np.testing.assert_array_equal(grid["indoor_single"]["cmc"], single["cmc"])
    assert single["seeds"] == [0, 1]
    # precomputed distances to every gallery image give the same (integer features: exact)
    dist = ev.pairwise_distance(q["feats"], g["feats"])
    pre = ev.sysu_mm01(
        None,
        q["ids"],
        q["cams"],
        None,
        g["ids"],
        g["cams"],
        g["index"],
        mode="indoor",
        shots=1,
        sampler="seeded",
        trials=2,
        distmat=dist,
    )
    assert pre["mAP"] == single["mAP"] and pre["metric"] is None
    with pytest.raises(ValueError, match=r"distmat: expected shape \(\d+, \d+\)"):
        ev.sysu_mm01(
            None,
            q["ids"],
            q["cams"],
            None,
            g["ids"],
            g["cams"],
            g["index"],
            sampler="seeded",
            distmat=dist[:, :-1],
        )
    with pytest.raises(ValueError, match="fewer than shots=10"):
        ev.sysu_mm01(*args, mode="all", shots=10, sampler="seeded", trials=1)


def test_errors(perm_file, tmp_path):
    feats, ids, cams, index = example_arrays()
    q = np.zeros((1, 1), np.float32)
    with pytest.raises(ValueError, match=r"cameras \(3, 6\), got cameras \[1\]"):
        ev.sysu_mm01(q, [1], [1], feats, ids, cams, index, perm_file=perm_file)
    with pytest.raises(ValueError, match="needs perm_file"):
        ev.sysu_mm01(q, [1], [3], feats, ids, cams, index)
    bad = index.copy()
    bad[0] = 4
    with pytest.raises(ValueError, match="gallery_index of camera 1, person 1: expected"):
        ev.sysu_mm01(q, [1], [3], feats, ids, cams, bad, perm_file=perm_file)
    short = write_perm_file(
        tmp_path / "short.mat", {k: v for k, v in PERMS.items() if k != (1, 2)}, trials=2
    )
    with pytest.raises(ValueError, match="no entry for camera 1, person 2"):
        ev.sysu_mm01(q, [1], [3], feats, ids, cams, index, perm_file=short, trials=1)
    with pytest.raises(ValueError, match="trial 2 requested but the permutation file has 2"):
        ev.sysu_mm01(q, [1], [3], feats, ids, cams, index, perm_file=perm_file, trials=3)
    broken = write_perm_file(tmp_path / "broken.mat", {**PERMS, (1, 2): [[2, 0], [1, 2]]}, trials=2)
    with pytest.raises(
        ValueError,
        match=r"rand_perm_cam\{1\}\{2\} holds indices 0..2; "
        r"expected 1..2",
    ):
        ev.load_sysu_permutations(broken)
    with pytest.raises(FileNotFoundError, match="missing.mat: file not found"):
        ev.load_sysu_permutations(tmp_path / "missing.mat")


# ----------------------------------------------------------------- the real files


@pytest.mark.skipif(not os.path.isdir(REAL_DIR), reason=f"{REAL_DIR} not present")
def test_real_permutation_file():
    perms = ev.load_sysu_permutations(os.path.join(REAL_DIR, "rand_perm_cam.mat"))
    test_ids = ev.load_sysu_ids(os.path.join(REAL_DIR, "test_id.mat"))
    assert len(test_ids) == 96
    assert {cam for cam, _ in perms} == {1, 2, 3, 4, 5, 6}
    for (cam, pid), perm in perms.items():
        assert perm.shape[0] == 10
        assert all(sorted(row) == list(range(1, perm.shape[1] + 1)) for row in perm.tolist())
    layout = {k: v.shape[1] for k, v in perms.items() if k[1] in set(test_ids.tolist())}
    # published sizes: 3,803 infrared queries; galleries of 301 / 3,010 (all-search) and
    # 112 / 1,120 (indoor-search) images
    assert sum(n for (cam, _), n in layout.items() if cam in (3, 6)) == 3803
    rng = np.random.default_rng(0)
    q, g = random_sysu(rng, layout, dim=2)
    sizes = {}
    for mode, shots in (("all", 1), ("all", 10), ("indoor", 1), ("indoor", 10)):
        sel = ev.sysu_gallery_selection(
            g["ids"], g["cams"], g["index"], mode=mode, shots=shots, trial=3, permutations=perms
        )
        sizes[(mode, shots)] = len(sel)
    assert sizes == {("all", 1): 301, ("all", 10): 3010, ("indoor", 1): 112, ("indoor", 10): 1120}
    # first trial of all-search single-shot against the MATLAB reference loop
    res = ev.sysu_mm01(
        q["feats"],
        q["ids"],
        q["cams"],
        g["feats"],
        g["ids"],
        g["cams"],
        g["index"],
        mode="all",
        shots=1,
        trials=1,
        perm_file=perms,
    )
    cmc, m, rows = matlab_reference(
        q["feats"],
        q["ids"],
        q["cams"],
        g["feats"],
        g["ids"],
        g["cams"],
        g["index"],
        perms,
        "all",
        1,
        0,
    )
    np.testing.assert_array_equal(res["gallery_rows"][0], rows)
    # float64 metrics vs an independent float64 reference: sum order only (~1e-16).
    np.testing.assert_allclose(res["cmc"], cmc, atol=1e-12)
    assert res["mAP"] == pytest.approx(m, abs=1e-12)
    assert res["trials"][0]["num_valid"] == 3803
    indoor = ev.sysu_mm01(
        q["feats"],
        q["ids"],
        q["cams"],
        g["feats"],
        g["ids"],
        g["cams"],
        g["index"],
        mode="indoor",
        shots=1,
        trials=1,
        perm_file=perms,
    )
    assert indoor["trials"][0]["num_valid"] == 2208  # queries whose person cameras 1-2 saw
