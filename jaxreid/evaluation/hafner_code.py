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
# Elements of a query block's arrays: ~2M x 8 bytes, a few tens of MB at once.
_BLOCK_ELEMENTS = 1 << 21


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
    y = np.asarray(matches, bool)[None]
    ap, _ = _ranked_ap_inp(np.asarray(distances)[None], y, np.ones_like(y))
    return float(ap[0])


def tie_grouped_trapezoid_average_precision(distances, matches) -> float:
    """Average precision as scikit-learn 0.15's `average_precision_score(matches,
    -distances)` computed it (the release the author's `environment.yml` pins):
    `auc(recall, precision)` of `precision_recall_curve`, i.e. the trapezoid rule over the
    points (recall, precision) read at each distinct distance, nearest first, starting from
    (0, 1); equal distances are one point. Without ties this is Zheng et al. 2015's
    Market-1501 rule (`ap='trapezoid'` of the other protocols).

    Args:
      distances: [n] distances of the ranked gallery, ascending.
      matches: [n] bool, True for true matches; at least one.
    """
    y = np.asarray(matches, bool)[None]
    ap, _ = _ranked_ap_inp(np.asarray(distances)[None], y, np.ones_like(y), "trapezoid")
    return float(ap[0])


def _ranked_ap_inp(
    ranked_d, match, valid, ap_definition: str = "non_interpolated"
) -> tuple[np.ndarray, np.ndarray]:
    """Tie-grouped AP (`tie_grouped_average_precision`, or with ap_definition='trapezoid'
    `tie_grouped_trapezoid_average_precision`) and INP of each ranked row, over its valid
    entries only (as if the others were taken out of the row).

    Args:
      ranked_d: [B, n] distances, ascending along each row.
      match: [B, n] bool, true matches.
      valid: [B, n] bool, the entries that count.
      ap_definition: 'non_interpolated' (scikit-learn >= 0.19) or 'trapezoid' (0.15).

    Returns:
      ([B] AP, [B] INP) float64; NaN for a row without a valid true match.
    """
    b, n = ranked_d.shape
    ap, inp = np.full(b, np.nan), np.full(b, np.nan)
    if n == 0:
        return ap, inp
    true = match & valid
    # int32 counts (n < 2**31): half the memory traffic of int64 on these [B, n] passes.
    hits = np.cumsum(true, axis=1, dtype=np.int32)  # valid true matches up to here
    seen = np.cumsum(valid, axis=1, dtype=np.int32)  # valid entries so far: the valid rank
    # Equal distances are one step; sorted, they form a run. The last entry of each run, as
    # an index per entry (a reverse running minimum over the run ends).
    run_end = np.ones((b, n), bool)
    run_end[:, :-1] = ranked_d[:, 1:] != ranked_d[:, :-1]
    end_of_run = np.where(run_end, np.arange(n, dtype=np.int32), np.int32(n))
    end_of_run = np.minimum.accumulate(end_of_run[:, ::-1], axis=1)[:, ::-1]
    seen_at_end = np.take_along_axis(seen, end_of_run, axis=1)
    # A step of the valid list ends at a valid entry with no valid entry after it in its run.
    step = valid & (seen_at_end == seen)
    # Hits at the previous step (non-decreasing, so a running maximum over the steps).
    hits_before = np.zeros((b, n), np.int32)
    hits_before[:, 1:] = np.maximum.accumulate(np.where(step, hits, 0), axis=1)[:, :-1]
    total = hits[:, -1].astype(np.int64)
    rows = np.flatnonzero(total > 0)
    step[total == 0] = False
    per_row = step.sum(axis=1)[rows]
    # Per step, in ranked order, the same float64 operations on the same int64 counts as one
    # query's loop would do (so the AP is bit-identical to it).
    tp, rank = hits[step].astype(np.int64), seen[step].astype(np.int64)
    recall_gain = (tp - hits_before[step]) / np.repeat(total[rows], per_row)
    if ap_definition == "non_interpolated":
        terms = recall_gain * tp / rank
    elif ap_definition == "trapezoid":
        # The mean of this step's precision and the previous step's (1 before a row's first),
        # steps without a new match included: they only set the next step's "previous".
        precision = tp / rank
        previous = np.r_[1.0, precision[:-1]][: len(precision)]
        previous[np.cumsum(per_row)[:-1]] = 1.0
        terms = recall_gain * ((precision + previous) / 2)
    else:
        raise ValueError(
            f"ap_definition={ap_definition!r}; expected 'non_interpolated' or 'trapezoid'"
        )
    # Summed row by row: np.sum's pairwise order over each row's own steps, as per query.
    ap[rows] = [np.sum(t) for t in np.split(terms, np.cumsum(per_row)[:-1])]
    # INP: the last valid true match's rank, counted to the end of its tie group.
    last = n - 1 - np.argmax(true[rows, ::-1], axis=1)
    inp[rows] = total[rows] / seen_at_end[rows, last]
    return ap, inp


def _cmc_subsample_rank_counts(
    ranked_person, match, valid, query_person, num_persons, subsamples, max_rank, rng
) -> tuple[np.ndarray, int]:
    """How often the query's person ranks r (0-based, r < max_rank) among one random valid
    entry per person, over `subsamples` subsamples of each query with a valid true match.

    Args:
      ranked_person: [B, n] int, person index (0 .. num_persons - 1) of each ranked entry.
      match, valid: [B, n] bool, true matches; entries that count.
      query_person: [B] int, the query's person index.
      rng: draws, query after query, `rng.random((subsamples, persons in its valid list))`,
        persons ascending: the stream a per-query loop would draw.

    Returns:
      ([max_rank] int64 counts, number of queries counted).
    """
    rows = np.flatnonzero(np.any(match & valid, axis=1))
    b, n = len(rows), ranked_person.shape[1]
    if b == 0:
        return np.zeros(max_rank, np.int64), 0
    person, valid = ranked_person[rows], valid[rows]
    flat = (np.arange(b)[:, None] * num_persons + person)[valid]
    sizes = np.bincount(flat, minlength=b * num_persons).reshape(b, num_persons)
    present = sizes > 0
    draws = np.zeros((b, subsamples, num_persons))
    shape = draws.shape
    draws[np.broadcast_to(present[:, None, :], shape)] = rng.random(subsamples * present.sum())
    pick = np.floor(draws * sizes[:, None, :]).astype(np.int64)
    # Ranked positions grouped by person, ascending within a person (invalid ones last).
    key = np.where(valid, person, num_persons)
    # int16 keys take NumPy's radix sort (stable sorts of <= 16-bit integers): several
    # times faster than a merge sort of int64.
    key = key.astype(np.int16) if num_persons < np.iinfo(np.int16).max else key
    by_person = np.argsort(key, axis=1, kind="stable")
    starts = np.cumsum(sizes, axis=1) - sizes
    at = np.minimum(starts[:, None, :] + pick, n - 1).reshape(b, -1)
    chosen = np.take_along_axis(by_person, at, axis=1).reshape(shape)
    chosen = np.where(present[:, None, :], chosen, n)  # absent persons rank after everyone
    true = np.take_along_axis(chosen, query_person[rows][:, None, None], axis=2)
    ranks = np.sum(chosen < true, axis=2)  # [b, subsamples]
    return np.bincount(ranks[ranks < max_rank], minlength=max_rank), b


def _rank_rows(dist) -> tuple[np.ndarray, np.ndarray]:
    """([B, n] gallery order of each row, [B, n] its distances ascending), ties in gallery
    order (a stable argsort per row)."""
    n = dist.shape[1]
    if dist.dtype != np.float32 or n >= 2**31 or np.isnan(dist).any():
        order = np.argsort(dist, axis=1, kind="stable")
        return order, np.take_along_axis(dist, order, axis=1)
    # float32 (what pairwise_distance returns): one int64 key per entry, the distance's bits
    # made order-preserving above the column index, so a plain sort is the stable argsort,
    # about twice as fast (NumPy's vectorised integer sort).
    bits = (dist + np.float32(0.0)).view(np.int32)  # + 0.0: -0.0 ties with 0.0, as it should
    bits = bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))  # negative floats: reversed order
    keys = np.sort((bits.astype(np.int64) << 32) | np.arange(n), axis=1)
    order = keys & 0xFFFFFFFF
    return order, np.take_along_axis(dist, order, axis=1)


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
    ap_definition: str = "non_interpolated",
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
      ap_definition: 'non_interpolated' (scikit-learn >= 0.19, `tie_grouped_average_precision`)
        or 'trapezoid' (scikit-learn 0.15, which the author's environment.yml pins;
        `tie_grouped_trapezoid_average_precision`).
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
    max_rank, subsamples = int(max_rank), int(subsamples)
    persons, g_person = np.unique(g_ids, return_inverse=True)
    q_person = np.minimum(np.searchsorted(persons, q_ids), max(len(persons) - 1, 0))
    # Queries in blocks: the [block, n] rankings and [block, subsamples, persons] draws stay
    # near _BLOCK_ELEMENTS elements each, whatever the gallery.
    block = max(1, _BLOCK_ELEMENTS // max(n, subsamples * len(persons), 1))
    aps, inps, rank_counts, num_cmc = [], [], np.zeros(max_rank, np.int64), 0
    for lo in range(0, m, block):
        rows = slice(lo, lo + block)
        order, ranked_d = _rank_rows(dist[rows])
        match = g_ids[order] == q_ids[rows, None]
        if camera_rule:
            other_camera = g_cams[order] != q_cams[rows, None]
            ap_valid = ~match | other_camera
            cmc_valid = other_camera  # separate_camera_set
        else:
            if keep is None:
                ap_valid = np.ones_like(match)
            elif use_all_quirk:
                ap_valid = keep[rows]  # Quirk 2: a gallery-order mask on ranked positions.
            else:
                ap_valid = np.take_along_axis(keep[rows], order, axis=1)
            cmc_valid = ap_valid
        ap, inp = _ranked_ap_inp(ranked_d, match, ap_valid, ap_definition)
        aps.append(ap[~np.isnan(ap)])
        inps.append(inp[~np.isnan(inp)])
        counts, counted = _cmc_subsample_rank_counts(
            g_person[order],
            match,
            cmc_valid,
            q_person[rows],
            len(persons),
            subsamples,
            max_rank,
            rng,
        )
        rank_counts += counts
        num_cmc += counted
    aps, inps = np.concatenate([np.zeros(0)] + aps), np.concatenate([np.zeros(0)] + inps)
    # 1 / subsamples added once per subsample and rank, one after the other, as the code
    # adds it: the same float64 sums as its per-query loop (k / subsamples may differ from
    # them in the last bit).
    cmc_counts = np.array(
        [np.add.accumulate(np.full(k, 1.0 / subsamples))[-1] if k else 0.0 for k in rank_counts]
    )
    out = {
        "cmc": np.cumsum(cmc_counts) / num_cmc if num_cmc else np.full(max_rank, np.nan),
        "mAP": float(np.mean(aps)) if len(aps) else float("nan"),
        "mINP": float(np.mean(inps)) if len(inps) else float("nan"),
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
    ap_definition: str = "non_interpolated",
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
      camera_rule, use_all_quirk, ap_definition: see `code_pair_metrics`.
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
            raise ValueError(
                f"camera_rule=True needs 'cams' of every modality; {lacking} lack them"
            )
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
            ap_definition=ap_definition,
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
            ap_definition=ap_definition,
            images_per_id=int(images_per_id),
            cmc_subsamples=int(subsamples),
            num_queries=len(q_rows),
            num_gallery=len(g_rows),
            query_rows=q_rows,
            gallery_rows=g_rows,
        )
        out[(qm, gm)] = res
    return out
