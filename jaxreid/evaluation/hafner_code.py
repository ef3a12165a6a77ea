"""Hafner 2018's evaluation as the author's code computed the published tables ('hafner_code').

The thesis text (§4.3.1) and the journal paper (§4.2) describe a single-gallery-shot protocol
with 10 repeats; `jaxreid.evaluation.hafner.hafner2018` ('hafner_text') implements that text.
The tables were produced by the author's code, frhf/cross-modal-distillation-reidentification,
`open-reid/reid/evaluators.py` (`Evaluator.evaluate_cm`, `get_rand`, `getsame`,
`evaluate_all`) and `open-reid/reid/evaluation_metrics/ranking.py` (`cmc`, `mean_ap`), which
differ from the text as follows, and this module computes what that code computes:

  draws     per modality one query and one gallery draw of 50 images per person *with
            replacement* (`get_rand(query_am=50, gal_am=50)`: `np.random.choice(x, 50)`), so
            an image can appear several times and every person has exactly 50 entries; the
            rows are kept in dataset order (`np.sort(rand_)`). Each modality's draws serve
            every pair it appears in (evaluate_cm computes all four pairs from them).
  mAP       over that whole 50-per-person gallery (multi-shot: every valid gallery entry of
            the query's person is a true match), average precision as scikit-learn's
            `average_precision_score` computes it, >= 0.19: the sum over distinct distances,
            nearest first, of (recall gained) x (precision at that distance); entries at an
            equal distance (e.g. repeated draws of one image) form one step. This is why the
            published mAP is often below rank-1 (Table 10, Q:RGB G:RGB: 50.3 / 28.3).
  CMC       single-gallery-shot, only for the rank accuracies (journal §4.2): for each query,
            15 random subsamples of one valid gallery entry per person (`cmc`,
            `single_gallery_shot=True`, `repeat = 15`), the rank of the true person among
            them, averaged (not 10 repeats of one shared gallery).
  validity  `use_all=False` (the camera rule, thesis §4.3.1 "images from the same camera
            are taken out", CUHK03): AP without gallery entries of the same person *and*
            camera; CMC with `separate_camera_set=True`, i.e. only other cameras. This is
            `camera_rule=True`, for SYSU-MM01 test sets.
            `use_all=True` (the relaxation, BIWI, RobotPKU, the SYSU validation set; every
            example script of the author sets it): only the identical image is removed
            (`getsame`: the query itself in a single-modal pair, its paired frame across
            modalities). This is `camera_rule=False`.
  queries   a query whose valid gallery holds no true match is skipped (counted in neither
            mean); CMC and mAP may skip different queries under the camera rule.

Decisions on three quirks of that code (their measured effect: docs and the report of
issue #27):
  1. `get_rand` loops over `range(nums.max())` and so never draws the person with the
     largest id, in query or gallery. Not copied: every person is drawn.
  2. Under `use_all=True`, `cmc` and `mean_ap` replace the validity mask of the *ranked*
     list with `same[i]`, which `getsame` builds in *gallery* order: the entries removed are
     those whose rank equals the gallery position of an identical image, not the identical
     image itself, which stays in (distance 0 for a single-modal query). Corrected by
     default; `use_all_quirk=True` reproduces it (the published numbers include it).
  3. `evaluate_cm` masks the first modality's single-modal pair with
     `getsame(query2_r, gallery2_r)`, the second modality's draws. Reproduced only with
     `use_all_quirk=True` (it only matters there; corrected, each pair has its own mask).
Not taken from the code: ties in the ranked list are broken by gallery order (stable sort;
the code's `np.argsort` quicksort leaves them unspecified, which changes no AP since ties
form one step, and only CMC among equal distances of different persons); its RNG (the
global, unseeded `np.random`) is replaced by seeded NumPy generators (below); ranks past 20
are not kept (the code keeps 100).

mINP is jaxreid's addition (the code reports none): (true matches) / (rank of the last one)
on the mAP gallery, that rank counted to the end of its tie group.

Randomness: NumPy `default_rng([seed, 2, crc32(modality), 0])` draws the queries of a
modality and `[..., 1]` its gallery; `default_rng([seed, 3, crc32(query modality),
crc32(gallery modality)])` the CMC subsamples of a pair, query by query. The seed, rows and
settings are recorded in each pair's result.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import numpy as np

from jaxreid.evaluation.distances import canonical_metric, pairwise_distance

HAFNER_CODE_IMAGES_PER_ID = 50  # evaluators.py, get_rand(query_am=50, gal_am=50)
HAFNER_CODE_CMC_SUBSAMPLES = 15  # ranking.py, cmc: `repeat = 15`


def _modality_key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def draw_with_replacement(ids, per_id: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of `per_id` images per person drawn with replacement, every person, in ascending
    row order (as `get_rand` sorts them).

    Args:
      ids: [N] person ids.
      per_id: draws per person (50 in the author's code).
      rng: the generator to draw with.

    Returns:
      [num_persons * per_id] int64 rows into `ids`; a row may repeat.
    """
    ids = np.asarray(ids)
    if int(per_id) < 1:
        raise ValueError(f"per_id must be >= 1, got {per_id}")
    order = np.argsort(ids, kind="stable")
    _, starts, counts = np.unique(ids[order], return_index=True, return_counts=True)
    picks = [order[s + rng.integers(c, size=int(per_id))] for s, c in zip(starts, counts)]
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, np.int64)


def tie_grouped_average_precision(distances, matches) -> float:
    """Average precision as scikit-learn's `average_precision_score(matches, -distances)`
    (>= 0.19): sum over distinct distances d, nearest first, of
    (recall at d - recall before d) x (precision at d), where "at d" counts every entry no
    farther than d; equal distances are one step.

    Args:
      distances: [n] distances of the ranked gallery, ascending.
      matches: [n] bool, True for true matches; at least one.
    """
    d = np.asarray(distances)
    y = np.asarray(matches, bool)
    hits = np.cumsum(y)
    # The last entry of each group of equal distances: where precision and recall are read.
    ends = np.flatnonzero(np.r_[d[1:] != d[:-1], True])
    tp = hits[ends]
    gained = np.diff(np.r_[0, tp])
    return float(np.sum(gained / hits[-1] * tp / (ends + 1)))


def _cmc_subsample_ranks(
    ranked_ids: np.ndarray, query_id, subsamples: int, rng: np.random.Generator
) -> np.ndarray:
    """0-based rank of the query's person among one random entry per person, per subsample.

    `ranked_ids`: [n] person ids of the valid gallery in ranked order (holds `query_id`).
    """
    persons, inverse, sizes = np.unique(ranked_ids, return_inverse=True, return_counts=True)
    # Ranked positions grouped by person (ascending within a person).
    by_person = np.argsort(inverse, kind="stable")
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    pick = np.floor(rng.random((int(subsamples), len(persons))) * sizes).astype(np.int64)
    chosen = by_person[starts + pick]  # [subsamples, persons] ranked positions
    true = int(np.searchsorted(persons, query_id))
    return np.sum(chosen < chosen[:, true : true + 1], axis=1)


def code_pair_metrics(
    dist,
    query_ids,
    gallery_ids,
    *,
    identical=None,
    query_cams=None,
    gallery_cams=None,
    camera_rule: bool = False,
    use_all_quirk: bool = False,
    rng: np.random.Generator,
    subsamples: int = HAFNER_CODE_CMC_SUBSAMPLES,
    max_rank: int = 20,
) -> dict:
    """CMC and mAP of one query/gallery draw as `ranking.cmc` / `ranking.mean_ap` of the
    author's code compute them (module docstring).

    Args:
      dist: [M, N] distances, rows the drawn queries, columns the drawn gallery (repeats
        included), columns in gallery order.
      query_ids, gallery_ids: [M], [N] person ids.
      identical: [M, N] bool, True where gallery entry j is the same image as query i (or its
        paired frame); None = none. Used when `camera_rule` is False.
      query_cams, gallery_cams: [M], [N] camera ids; needed when `camera_rule` is True.
      camera_rule: True: `use_all=False` (same person and camera out of the AP, CMC on other
        cameras only); False: `use_all=True` (only identical images out).
      use_all_quirk: apply `identical[i]` to the ranked list position by position, as the
        code does (quirk 2); only with camera_rule False.
      rng: draws the CMC subsamples, query by query.
      subsamples: single-shot subsamples per query (15 in the code).
      max_rank: length of the CMC curve.

    Returns:
      dict(cmc [max_rank] float64, mAP, mINP, rank1/5/10/20 (those <= max_rank),
      num_valid (queries in the mAP and mINP), num_valid_cmc (queries in the CMC)), metrics
      as fractions in [0, 1]; NaN where no query is valid.

    Raises:
      ValueError: shapes disagree, or camera ids are missing under the camera rule.
    """
    dist = np.asarray(dist)
    q_ids, g_ids = np.asarray(query_ids), np.asarray(gallery_ids)
    m, n = dist.shape if dist.ndim == 2 else (-1, -1)
    if (m, n) != (len(q_ids), len(g_ids)):
        raise ValueError(
            f"dist has shape {dist.shape}; expected [{len(q_ids)}, {len(g_ids)}] "
            "(queries x gallery entries)"
        )
    if int(max_rank) < 1 or int(subsamples) < 1:
        raise ValueError(f"max_rank and subsamples must be >= 1, got {max_rank}, {subsamples}")
    if camera_rule:
        if query_cams is None or gallery_cams is None:
            raise ValueError("camera_rule=True needs query_cams and gallery_cams")
        if use_all_quirk:
            raise ValueError("use_all_quirk=True belongs to the relaxed rule (camera_rule=False)")
        q_cams, g_cams = np.asarray(query_cams), np.asarray(gallery_cams)
    keep = None if identical is None else ~np.asarray(identical, bool)
    if keep is not None and keep.shape != dist.shape:
        raise ValueError(f"identical has shape {keep.shape}; expected {dist.shape}")
    max_rank = int(max_rank)
    cmc_counts = np.zeros(max_rank)
    aps, inps, num_cmc = [], [], 0
    for i in range(m):
        order = np.argsort(dist[i], kind="stable")
        ranked_ids, ranked_d = g_ids[order], dist[i, order]
        match = ranked_ids == q_ids[i]
        if camera_rule:
            ranked_cams = g_cams[order]
            ap_valid = (ranked_ids != q_ids[i]) | (ranked_cams != q_cams[i])
            cmc_valid = ranked_cams != q_cams[i]  # separate_camera_set
        else:
            if keep is None:
                ap_valid = np.ones(n, bool)
            elif use_all_quirk:
                ap_valid = keep[i]  # Quirk 2: a gallery-order mask on ranked positions.
            else:
                ap_valid = keep[i, order]
            cmc_valid = ap_valid
        if match[ap_valid].any():
            y, d = match[ap_valid], ranked_d[ap_valid]
            aps.append(tie_grouped_average_precision(d, y))
            last = np.flatnonzero(y)[-1]
            last = np.flatnonzero(d == d[last])[-1]  # to the end of its tie group
            inps.append(np.count_nonzero(y) / (last + 1))
        if match[cmc_valid].any():
            num_cmc += 1
            ranks = _cmc_subsample_ranks(ranked_ids[cmc_valid], q_ids[i], subsamples, rng)
            np.add.at(cmc_counts, ranks[ranks < max_rank], 1.0 / int(subsamples))
    out = {
        "cmc": np.cumsum(cmc_counts) / num_cmc if num_cmc else np.full(max_rank, np.nan),
        "mAP": float(np.mean(aps)) if aps else float("nan"),
        "mINP": float(np.mean(inps)) if inps else float("nan"),
        "num_valid": len(aps),
        "num_valid_cmc": num_cmc,
    }
    out.update({f"rank{r}": float(out["cmc"][r - 1]) for r in (1, 5, 10, 20) if r <= max_rank})
    return out


def _paired_frames(q_rows, g_rows, q_frames, g_frames):
    """[M, N] True where the drawn gallery entry is the drawn query's paired frame ('' =
    unpaired), the identical image across modalities (`getsame` compares file names, which
    the two modalities of a frame share); None when frames are unknown."""
    if q_frames is None or g_frames is None:
        return None
    qf, gf = np.asarray(q_frames)[q_rows], np.asarray(g_frames)[g_rows]
    return (qf[:, None] == gf[None, :]) & (qf[:, None] != "")


def evaluate_modality_pairs_code(
    data: Mapping[str, Mapping],
    pairs,
    *,
    seed: int = 0,
    metric: str = "euclidean",
    camera_rule: bool = False,
    use_all_quirk: bool = False,
    images_per_id: int = HAFNER_CODE_IMAGES_PER_ID,
    subsamples: int = HAFNER_CODE_CMC_SUBSAMPLES,
    max_rank: int = 20,
) -> dict[tuple[str, str], dict]:
    """Every (query modality, gallery modality) pair of `pairs` as `evaluate_cm` computes it.

    Args:
      data: {modality: {'feats': [N, D] float, 'ids': [N], 'cams': [N] or None, 'frames':
        [N] frame keys linking simultaneous frames ('' = unpaired) or None}}, modalities in
        config.data.modalities order (the first is the code's "modality 1", quirk 3).
      pairs: (query modality, gallery modality) tuples.
      seed: seeds the draws and CMC subsamples (module docstring).
      metric: distance, see `jaxreid.evaluation.distances.METRICS` (the code ranks by
        squared Euclidean distance: the same ranking as 'euclidean').
      camera_rule, use_all_quirk: see `code_pair_metrics`.
      images_per_id: draws per person for queries and gallery (50 in the code).
      subsamples: CMC single-shot subsamples per query (15 in the code).

    Returns:
      {(qm, gm): `code_pair_metrics` result plus protocol='hafner_code', seed, metric,
       camera_rule, use_all_quirk, images_per_id, cmc_subsamples, num_queries, num_gallery,
       query_rows, gallery_rows (the drawn rows into that modality's arrays, repeats
       included)}.

    Raises:
      ValueError: camera_rule without 'cams'; use_all_quirk with camera_rule, or when quirk
        3 meets draws of different sizes (the code fails there too).
    """
    metric = canonical_metric(metric)
    if camera_rule and use_all_quirk:
        raise ValueError("use_all_quirk=True belongs to the relaxed rule (camera_rule=False)")
    if camera_rule:
        lacking = [name for name, d in data.items() if d.get("cams") is None]
        if lacking:
            raise ValueError(f"camera_rule=True needs 'cams' of every modality; {lacking} lack them")
    draws = {}
    for name, d in data.items():
        key = _modality_key(name)
        draws[name] = tuple(
            draw_with_replacement(d["ids"], images_per_id, np.random.default_rng([seed, 2, key, k]))
            for k in (0, 1)
        )
    names = list(data)
    out = {}
    for qm, gm in pairs:
        q, g = data[qm], data[gm]
        q_rows, g_rows = draws[qm][0], draws[gm][1]
        # Distances of each distinct image once, so repeated draws tie exactly.
        uq, q_inv = np.unique(q_rows, return_inverse=True)
        ug, g_inv = np.unique(g_rows, return_inverse=True)
        dist = pairwise_distance(np.asarray(q["feats"])[uq], np.asarray(g["feats"])[ug], metric)
        dist = dist[q_inv][:, g_inv]
        mask_q, mask_g = q_rows, g_rows
        if use_all_quirk and qm == gm == names[0] and len(names) > 1:
            mask_m = names[1]  # Quirk 3: getsame(query2_r, gallery2_r) for modality 1.
            mask_q, mask_g = draws[mask_m]
            if (len(mask_q), len(mask_g)) != dist.shape:
                raise ValueError(
                    f"use_all_quirk: the {mask_m!r} draws ({len(mask_q)} x {len(mask_g)}) "
                    f"cannot mask the {qm!r} pair ({dist.shape[0]} x {dist.shape[1]}), as in "
                    "the author's code, which fails there too"
                )
        if qm == gm:  # The identical image: the same row of the one image set.
            identical = mask_q[:, None] == mask_g[None, :]
        else:
            identical = _paired_frames(q_rows, g_rows, q.get("frames"), g.get("frames"))
        res = code_pair_metrics(
            dist,
            np.asarray(q["ids"])[q_rows],
            np.asarray(g["ids"])[g_rows],
            identical=identical,
            query_cams=None if q.get("cams") is None else np.asarray(q["cams"])[q_rows],
            gallery_cams=None if g.get("cams") is None else np.asarray(g["cams"])[g_rows],
            camera_rule=camera_rule,
            use_all_quirk=use_all_quirk,
            rng=np.random.default_rng([seed, 3, _modality_key(qm), _modality_key(gm)]),
            subsamples=subsamples,
            max_rank=max_rank,
        )
        res.update(
            protocol="hafner_code",
            seed=int(seed),
            metric=metric,
            camera_rule=bool(camera_rule),
            use_all_quirk=bool(use_all_quirk),
            images_per_id=int(images_per_id),
            cmc_subsamples=int(subsamples),
            num_queries=len(q_rows),
            num_gallery=len(g_rows),
            query_rows=q_rows,
            gallery_rows=g_rows,
        )
        out[(qm, gm)] = res
    return out
