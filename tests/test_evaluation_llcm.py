"""LLCM protocol against a re-implementation of the released DEEN test code written here
(folder dictionaries drawn with the `random` module, and eval_llcm's metric in NumPy)."""

import random

import numpy as np
import pytest

from jaxreid import evaluation


def released_gallery(folders, cameras, trial):
    """process_gallery_llcm: random.seed(trial); ids ascending, cameras in order, choice."""
    random.seed(trial)
    out = []
    for pid in sorted({p for (_, p) in folders}):
        for cam in cameras:
            if (cam, pid) in folders:
                out.append(random.choice(sorted(folders[(cam, pid)])))
    return out


def eval_llcm(dist, q_ids, g_ids, q_cams, g_cams, max_rank=20):
    """eval_llcm: same-id-and-camera removal, identity-level CMC, non-interpolated AP."""
    cmcs, aps = [], []
    for i in range(len(q_ids)):
        order = np.argsort(dist[i], kind="stable")
        keep = ~((g_ids[order] == q_ids[i]) & (g_cams[order] == q_cams[i]))
        labels = g_ids[order][keep]
        match = (labels == q_ids[i]).astype(float)
        if not match.any():
            continue
        _, first = np.unique(labels, return_index=True)
        dedup = labels[np.sort(first)]
        cmc = np.cumsum(dedup == q_ids[i])[:max_rank]
        cmcs.append(np.pad(cmc, (0, max_rank - len(cmc)), mode="edge"))
        hits = np.cumsum(match)
        aps.append(np.sum(hits / np.arange(1, len(match) + 1) * match) / match.sum())
    return np.mean(cmcs, axis=0), float(np.mean(aps))


def _test_set(rng, modality_cams, ids):
    rows = []
    for pid in ids:
        for cam in modality_cams:
            for k in range(int(rng.integers(0, 4))):  # 0-3 images, some folders absent
                rows.append((pid, cam, k + 1, f"cam{cam}/{pid:04d}/{k:04d}.jpg"))
    rows = [rows[i] for i in rng.permutation(len(rows))]  # any order in the arrays
    ids_, cams_, index, names = (np.array(c) for c in zip(*rows))
    return ids_, cams_, index, names


def test_llcm_matches_the_released_code():
    rng = np.random.default_rng(0)
    test_ids = [3, 5, 8, 13, 21]
    v_ids, v_cams, v_idx, v_names = _test_set(rng, evaluation.LLCM_VIS_CAMERAS, test_ids)
    i_ids, i_cams, i_idx, i_names = _test_set(rng, evaluation.LLCM_IR_CAMERAS, test_ids)
    centres = rng.normal(size=(30, 8))
    v_feats = (centres[v_ids] + rng.normal(size=(len(v_ids), 8))).astype(np.float32)
    i_feats = (centres[i_ids] + rng.normal(size=(len(i_ids), 8))).astype(np.float32)
    trials = 3
    res = evaluation.llcm(
        v_feats, v_ids, v_cams, v_idx, i_feats, i_ids, i_cams, i_idx, trials=trials
    )
    folders = lambda ids, cams, names: {
        key: [n for n, i, c in zip(names, ids, cams) if (c, i) == key]
        for key in set(zip(cams.tolist(), ids.tolist()))
    }
    v_row = {n: r for r, n in enumerate(v_names)}
    i_row = {n: r for r, n in enumerate(i_names)}
    d = np.sqrt(((i_feats[:, None].astype(np.float64) - v_feats[None]) ** 2).sum(-1))
    for t in range(trials):
        # IR -> VIS: every IR image against the drawn VIS gallery.
        g = [
            v_row[n]
            for n in released_gallery(
                folders(v_ids, v_cams, v_names), evaluation.LLCM_VIS_CAMERAS, t
            )
        ]
        assert res["ir_to_vis"]["gallery_rows"][t].tolist() == g
        cmc, ap = eval_llcm(d[:, g], i_ids, v_ids[g], i_cams, v_cams[g])
        # float64 metrics vs a hand-worked / NumPy reference: sum order only (~1e-16).
        np.testing.assert_allclose(res["ir_to_vis"]["trials"][t]["cmc"], cmc, atol=1e-12)
        assert res["ir_to_vis"]["trials"][t]["mAP"] == pytest.approx(ap, abs=1e-12)
        # VIS -> IR as test.py computes it: the drawn IR images rank all VIS images.
        q = [
            i_row[n]
            for n in released_gallery(
                folders(i_ids, i_cams, i_names), evaluation.LLCM_IR_CAMERAS, t
            )
        ]
        assert res["vis_to_ir"]["query_rows"][t].tolist() == q
        cmc, ap = eval_llcm(d[q], i_ids[q], v_ids, i_cams[q], v_cams)
        # float64 metrics vs a hand-worked / NumPy reference: sum order only (~1e-16).
        np.testing.assert_allclose(res["vis_to_ir"]["trials"][t]["cmc"], cmc, atol=1e-12)
        assert res["vis_to_ir"]["trials"][t]["mAP"] == pytest.approx(ap, abs=1e-12)
    assert res["ir_to_vis"]["num_trials"] == trials and res["protocol"] == "llcm"
    assert res["rerank"] is None
    # The other reading of VIS -> IR: every VIS image queries the drawn IR gallery.
    other = evaluation.llcm(
        v_feats,
        v_ids,
        v_cams,
        v_idx,
        i_feats,
        i_ids,
        i_cams,
        i_idx,
        trials=1,
        directions=("vis_to_ir",),
        vis_to_ir="vis_queries",
    )
    q = [
        i_row[n]
        for n in released_gallery(folders(i_ids, i_cams, i_names), evaluation.LLCM_IR_CAMERAS, 0)
    ]
    cmc, ap = eval_llcm(d[q].T, v_ids, i_ids[q], v_cams, i_cams[q])
    # float64 metrics vs a hand-worked / NumPy reference: sum order only (~1e-16).
    assert other["vis_to_ir"]["mAP"] == pytest.approx(ap, abs=1e-12)
    with pytest.raises(ValueError, match="ir_cams"):
        evaluation.llcm(
            v_feats, v_ids, v_cams, v_idx, i_feats, i_ids, np.full_like(i_cams, 3), i_idx
        )
