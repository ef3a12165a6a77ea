"""Hafner 2018 protocol for paired RGB-depth data as the text describes it ('hafner_text';
thesis §4.3.1, journal paper §4.2), the dispatch over all modality pairs and fold aggregation.

Two protocols carry the paper's name (`PAIR_PROTOCOLS`):
  'hafner_text'  this module's `hafner2018`: what the thesis text says (below);
  'hafner_code'  `jaxreid.evaluation.hafner_code`: what the author's evaluation code
                 computed, and so what the published tables hold; the paper grids use it.
They differ in: queries (text: at most 50 per person without replacement; code: exactly 50
drawn with replacement), the gallery of the mAP (text: the single-shot gallery, one true
match per query, so mAP >= rank-1; code: 50 draws per person, so mAP can fall below rank-1),
the CMC (text: 10 repeats of one shared single-shot gallery; code: 15 single-shot
subsamples per query of the 50-per-person gallery) and removal (text: only the identical
image; code: also the camera rule on SYSU-MM01 test sets, `camera_rule`).

For one test set and one (query modality, gallery modality) pair, 'hafner_text':
  queries   at most 50 images per person, chosen at random once (thesis §4.3.1: "a
            maximum of 50 random images of each person in the probe");
  gallery   single-gallery-shot: one random image per person, drawn anew in each of 10
            repeats (thesis §4.3.1: "only one of the images of one instance in the gallery
            ... the evaluation is repeated 10 times");
  removal   across modalities only the exact paired frame of the query (journal §4.2:
            "The only exception to this is the removal of the exactly same corresponding
            image in the parallel modality"); within one modality only the query image
            itself (the camera constraint is relaxed for BIWI and RobotPKU, thesis §4.3.1);
  metrics   standard CMC (rank-1/5/10) and non-interpolated mAP on that gallery, averaged
            over the repeats; all four query/gallery modality pairs are reported, and
            means ± standard deviations over the 3 cross-validation folds (journal §4.2)
            come from `aggregate_folds`.
Randomness: NumPy `default_rng([seed, 0])` picks the queries and `default_rng([seed, 1, r])`
the gallery of repeat r; the seed and the chosen rows are recorded in the result, and the
same seed picks the same queries of a modality for every pair it appears in.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from jaxreid.config import choices
from jaxreid.evaluation import hafner_code, ranking
from jaxreid.evaluation import rerank as rerank_lib
from jaxreid.evaluation.distances import canonical_metric, is_collapsed, pairwise_distance

HAFNER_REPEATS = 10  # thesis §4.3.1
HAFNER_MAX_QUERIES_PER_ID = 50  # thesis §4.3.1
HAFNER_FOLDS = 3  # journal §4.2: 3-fold cross-validation
PAIR_PROTOCOLS = choices.PAIR_PROTOCOLS
FOLD_METRICS = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")


def _identity_groups(ids: np.ndarray) -> list[np.ndarray]:
    """Row indices of each identity (ascending identity, ascending rows)."""
    order = np.argsort(ids, kind="stable")
    _, starts = np.unique(ids[order], return_index=True)
    return np.split(order, starts[1:])


def select_queries(ids, max_per_id: int | None, seed: int) -> np.ndarray:
    """Rows of at most `max_per_id` random images per identity (all if None), ascending."""
    groups = _identity_groups(np.asarray(ids))
    rng = np.random.default_rng([int(seed), 0])
    chosen = []
    for rows in groups:
        if max_per_id is not None and len(rows) > max_per_id:
            rows = np.sort(rng.choice(rows, size=int(max_per_id), replace=False))
        chosen.append(rows)
    return np.concatenate(chosen) if chosen else np.zeros(0, np.int64)


def select_single_shot_gallery(ids, seed: int, repeat: int) -> np.ndarray:
    """Rows of one random image per identity (identities ascending) for one repeat."""
    rng = np.random.default_rng([int(seed), 1, int(repeat)])
    return np.array(
        [rows[rng.integers(len(rows))] for rows in _identity_groups(np.asarray(ids))], np.int64
    )


def hafner2018(
    query_feats,
    query_ids,
    gallery_feats,
    gallery_ids,
    *,
    query_frames=None,
    gallery_frames=None,
    same_images: bool = False,
    seed: int = 0,
    repeats: int = HAFNER_REPEATS,
    max_queries_per_id: int | None = HAFNER_MAX_QUERIES_PER_ID,
    metric: str = "euclidean",
    max_rank: int = 20,
    rerank: rerank_lib.RerankParams | None = None,
) -> dict:
    """Hafner 2018 single-gallery-shot evaluation of one query/gallery modality pair.

    Args:
      query_feats, gallery_feats: [Nq, D], [Ng, D] features of all test images of the query
        and the gallery modality.
      query_ids, gallery_ids: [Nq], [Ng] person ids.
      query_frames, gallery_frames: [Nq], [Ng] frame keys linking simultaneous frames of the
        two modalities ('' = unpaired); the gallery image with the query's key is removed.
      same_images: query and gallery are the same images (single-modal pair); then only the
        query image itself is removed (by position; frames are ignored).
      seed: seeds query and gallery selection (see module docstring).
      repeats: gallery draws (10 in the protocol).
      max_queries_per_id: query images per person (50 in the protocol; None = all).
      metric: distance, see `jaxreid.evaluation.distances.METRICS`.
      rerank: None (default: off) or RerankParams: each repeat ranked by k-reciprocal
        re-ranked distances (Zhong et al. 2017) over the queries and that repeat's gallery.

    Returns:
      dict with the means over repeats: cmc, mAP, mINP, rank1/5/10/20; 'trials': per-repeat
      rank results; seed, query_rows, gallery_rows (per repeat), num_queries, metric.
    """
    metric = canonical_metric(metric)
    query_ids = np.asarray(query_ids)
    gallery_ids = np.asarray(gallery_ids)
    if same_images and len(query_ids) != len(gallery_ids):
        raise ValueError(
            f"same_images=True needs one image set, got {len(query_ids)} queries and "
            f"{len(gallery_ids)} gallery images"
        )
    if int(repeats) < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    q_rows = select_queries(query_ids, max_queries_per_id, seed)
    g_rows = [select_single_shot_gallery(gallery_ids, seed, r) for r in range(int(repeats))]
    union = np.unique(np.concatenate(g_rows))
    if rerank is None:
        dist = pairwise_distance(
            np.asarray(query_feats)[q_rows], np.asarray(gallery_feats)[union], metric
        )
    if same_images:
        removal, q_keys, g_keys = "paired_frame", q_rows, np.arange(len(gallery_ids))
    elif query_frames is not None and gallery_frames is not None:
        removal = "paired_frame"
        q_keys, g_keys = np.asarray(query_frames)[q_rows], np.asarray(gallery_frames)
    else:
        removal, q_keys, g_keys = "none", None, None
    results = []
    for rows in g_rows:
        if rerank is None:
            blocks, cols = dist, np.searchsorted(union, rows)
        else:
            blocks = rerank_lib.k_reciprocal_distances(
                np.asarray(query_feats)[q_rows],
                np.asarray(gallery_feats)[rows],
                rerank,
                metric=metric,
            )
            cols = np.arange(len(rows))
        results.append(
            ranking._rank_blocks(
                ranking._column_blocks(blocks, cols),
                len(q_rows),
                len(rows),
                query_ids[q_rows],
                gallery_ids[rows],
                removal=removal,
                cmc="standard",
                max_rank=max_rank,
                query_frames=q_keys,
                gallery_frames=None if g_keys is None else g_keys[rows],
            )
        )
    out = ranking.average_results(results)
    out.update(
        protocol="hafner2018",
        seed=int(seed),
        metric=metric,
        removal=removal,
        num_queries=int(len(q_rows)),
        query_rows=q_rows,
        gallery_rows=g_rows,
        max_queries_per_id=max_queries_per_id,
    )
    return rerank_lib.annotate(out, rerank)


def pair_name(query_modality: str, gallery_modality: str) -> str:
    """'Q:rgb G:depth' style key of a query/gallery modality pair."""
    return f"Q:{query_modality} G:{gallery_modality}"


def modality_pairs(modalities: Sequence[str]) -> list[tuple[str, str]]:
    """Cross-modal pairs first, then single-modal ones (the row order of thesis Table 5)."""
    cross = [(a, b) for a in modalities for b in modalities if a != b]
    return cross + [(a, a) for a in modalities]


def _modality_arrays(name: str, entry: Mapping) -> dict:
    for key in ("feats", "ids"):
        if key not in entry:
            raise ValueError(
                f"features_by_modality[{name!r}] lacks {key!r}; expected keys feats, ids "
                "and optionally cams, frames"
            )
    out = {"feats": np.asarray(entry["feats"]), "ids": np.asarray(entry["ids"])}
    if len(out["ids"]) != len(out["feats"]):
        raise ValueError(
            f"features_by_modality[{name!r}]: {len(out['feats'])} features but "
            f"{len(out['ids'])} ids"
        )
    for key in ("frames", "cams"):
        value = entry.get(key)
        out[key] = None if value is None else np.asarray(value)
        if value is not None and len(out[key]) != len(out["ids"]):
            raise ValueError(
                f"features_by_modality[{name!r}]: {len(out['ids'])} ids but {len(out[key])} {key}"
            )
    return out


def evaluate_modality_pairs(
    features_by_modality: Mapping[str, Mapping],
    *,
    protocol: str = "hafner_text",
    seed: int = 0,
    metric: str = "euclidean",
    repeats: int = HAFNER_REPEATS,
    max_queries_per_id: int | None = HAFNER_MAX_QUERIES_PER_ID,
    max_rank: int = 20,
    rerank: rerank_lib.RerankParams | None = None,
    camera_rule: bool = False,
    use_all_quirk: bool = False,
    ap_definition: str = "non_interpolated",
) -> dict[str, dict]:
    """All query/gallery modality pairs of a paired test set (e.g. RGB and depth).

    Args:
      features_by_modality: {modality: {'feats': [N, D], 'ids': [N], 'cams': [N] camera ids
        (used by 'hafner_code' with camera_rule), 'frames': [N] frame keys linking
        simultaneous frames ('' = unpaired)}}; modalities in config.data.modalities order.
      protocol: 'hafner_text' (`hafner2018`: single-gallery-shot, `repeats` draws, at most
        `max_queries_per_id` queries per person), 'hafner_code' (`hafner_code`: as the
        author's code computed the published tables; `max_queries_per_id` images per person
        drawn with replacement for the queries and the gallery, 15 CMC subsamples;
        `repeats` unused) or 'full' (every image is a query against every gallery image;
        deterministic, e.g. for validation). All remove the paired frame across modalities
        and the query image itself within a modality ('hafner_code' with camera_rule: the
        camera rule instead).
      seed: seed of the 'hafner_text' / 'hafner_code' draws.
      rerank: None (default: off) or RerankParams: rank by k-reciprocal re-ranked
        distances (Zhong et al. 2017); results then carry rerank / rerank_tag. Not defined
        for 'hafner_code' (ValueError).
      camera_rule, use_all_quirk: 'hafner_code' only (ValueError otherwise when True), see
        `hafner_code.code_pair_metrics`: the camera rule of SYSU-MM01 test sets, and the
        author's gallery-order masking.
      ap_definition: 'hafner_code' only: 'non_interpolated' (scikit-learn >= 0.19) or
        'trapezoid' (scikit-learn 0.15, the release the author's environment.yml pins), see
        `hafner_code.code_pair_metrics`.

    Returns:
      {'Q:<query modality> G:<gallery modality>': result with rank1, rank5, rank10, rank20,
       mAP, mINP, cmc, ..., and 'collapsed' (True when the query or gallery features are all
       one point, see `distances.is_collapsed`: the tables print n/a)}, cross-modal pairs
       first.
    """
    if protocol not in PAIR_PROTOCOLS:
        raise ValueError(f"protocol={protocol!r}; expected one of {PAIR_PROTOCOLS}")
    if protocol != "hafner_code" and (
        camera_rule or use_all_quirk or ap_definition != "non_interpolated"
    ):
        raise ValueError(
            "camera_rule / use_all_quirk / ap_definition belong to protocol='hafner_code', "
            f"got {protocol!r}"
        )
    if protocol == "hafner_code" and rerank is not None:
        raise ValueError("protocol='hafner_code' has no re-ranking (the author's code has none)")
    metric = canonical_metric(metric)
    data = {name: _modality_arrays(name, entry) for name, entry in features_by_modality.items()}
    if not data:
        raise ValueError("features_by_modality is empty")
    pairs = modality_pairs(list(data))
    if protocol == "hafner_code":
        code = hafner_code.evaluate_modality_pairs_code(
            data,
            pairs,
            seed=seed,
            metric=metric,
            camera_rule=camera_rule,
            use_all_quirk=use_all_quirk,
            ap_definition=ap_definition,
            images_per_id=max_queries_per_id or hafner_code.HAFNER_CODE_IMAGES_PER_ID,
            max_rank=max_rank,
        )
    out = {}
    for qm, gm in pairs:
        q, g = data[qm], data[gm]
        same = qm == gm
        frames_ok = q["frames"] is not None and g["frames"] is not None
        if protocol == "hafner_code":
            res = code[(qm, gm)]
        elif protocol == "hafner_text":
            res = hafner2018(
                q["feats"],
                q["ids"],
                g["feats"],
                g["ids"],
                query_frames=q["frames"] if frames_ok and not same else None,
                gallery_frames=g["frames"] if frames_ok and not same else None,
                same_images=same,
                seed=seed,
                repeats=repeats,
                max_queries_per_id=max_queries_per_id,
                metric=metric,
                max_rank=max_rank,
                rerank=rerank,
            )
        else:
            if same:
                removal, qk, gk = "paired_frame", np.arange(len(q["ids"])), np.arange(len(g["ids"]))
            elif frames_ok:
                removal, qk, gk = "paired_frame", q["frames"], g["frames"]
            else:
                removal, qk, gk = "none", None, None
            kw = dict(
                removal=removal,
                cmc="standard",
                max_rank=max_rank,
                query_frames=qk,
                gallery_frames=gk,
            )
            if rerank is None:
                res = ranking.rank_features(
                    q["feats"], g["feats"], q["ids"], g["ids"], metric=metric, **kw
                )
            else:
                dist = rerank_lib.k_reciprocal_distances(
                    q["feats"], g["feats"], rerank, metric=metric
                )
                res = ranking.rank(dist, q["ids"], g["ids"], **kw)
            res.update(ranking.cmc_at(res))
            res.update(protocol="full", metric=metric, removal=removal)
            rerank_lib.annotate(res, rerank)
        res.update(query_modality=qm, gallery_modality=gm)
        res["collapsed"] = is_collapsed(q["feats"]) or is_collapsed(g["feats"])
        out[pair_name(qm, gm)] = res
    return out


def _aggregate(results: Sequence[Mapping], metrics: Sequence[str], ddof: int) -> dict:
    out: dict = {"num_folds": len(results), "folds": {}}
    collapsed = sum(bool(r.get("collapsed")) for r in results)
    if collapsed:  # A fold whose network failed to train makes the row n/a (Hafner 2018 §4.3.2).
        out.update(collapsed=True, collapsed_folds=collapsed)
    for m in metrics:
        values = [float(r[m]) for r in results if m in r]
        if len(values) != len(results):
            continue
        out[m] = float(np.mean(values))
        out[f"{m}_std"] = float(np.std(values, ddof=ddof)) if len(values) > ddof else float("nan")
        out["folds"][m] = values
    if all("cmc" in r for r in results):
        out["cmc"] = np.mean(np.stack([np.asarray(r["cmc"], np.float64) for r in results]), axis=0)
    seeds = [r.get("seed") for r in results]
    if any(s is not None for s in seeds):
        out["seeds"] = seeds
    return out


def aggregate_folds(
    fold_results: Sequence[Mapping], *, metrics: Sequence[str] = FOLD_METRICS, ddof: int = 0
) -> dict:
    """Mean and standard deviation over cross-validation folds (Hafner 2018 tables).

    Args:
      fold_results: one entry per fold: either a result dict (with 'mAP', 'rank1', ...) or a
        mapping pair name -> result dict (as returned by `evaluate_modality_pairs`).
      metrics: keys to aggregate.
      ddof: delta degrees of freedom of the standard deviation (0: NumPy's default; the
        thesis does not say which it used).

    Returns:
      For result dicts: {metric: mean, metric + '_std': std, 'cmc': mean curve, 'num_folds',
      'folds': {metric: per-fold values}, 'seeds', and 'collapsed': True with
      'collapsed_folds' when any fold's features collapsed (the tables print n/a)}; for pair
      mappings: {pair: that dict}.
    """
    fold_results = list(fold_results)
    if not fold_results:
        raise ValueError("aggregate_folds: got no folds")
    if "mAP" in fold_results[0]:
        return _aggregate(fold_results, metrics, ddof)
    keys = list(fold_results[0])
    for i, fold in enumerate(fold_results):
        if list(fold) != keys:
            raise ValueError(f"aggregate_folds: fold {i} has keys {list(fold)}, fold 0 has {keys}")
    return {k: _aggregate([fold[k] for fold in fold_results], metrics, ddof) for k in keys}
