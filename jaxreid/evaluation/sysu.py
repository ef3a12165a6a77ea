"""SYSU-MM01 evaluation protocol (Wu et al. 2017; used by Tekeli 2019, §4.3).

Follows the official MATLAB code (repository wuancong/SYSU-MM01, folder evaluation/):
  queries   every infrared test image of cameras 3 and 6 (3,803 images, 96 identities);
  gallery   RGB test images of cameras 1, 2, 4, 5 ('all' search) or 1, 2 ('indoor'),
            per trial `shots` images (1: single-shot, 10: multi-shot) of every
            (camera, identity), chosen by the permutation file rand_perm_cam.mat;
  removal   every gallery image at the query camera's location (camera 3 is in the room
            of camera 2, `cam_id = [1 2 2 4 5 6]`): queries from camera 3 never see camera 2;
  CMC       identity level (repeated gallery identities dropped, get_cmc_multi_cam.m);
  AP        non-interpolated over all kept gallery images (get_map_multi_cam.m);
  trials    10; the reported numbers are means over trials.

Gallery selection ('official' permutation files or the 'seeded' re-implementation) and the
split files: jaxreid.evaluation.sysu_gallery.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from jaxreid.evaluation import ranking
from jaxreid.evaluation import rerank as rerank_lib
from jaxreid.evaluation.distances import canonical_metric, pairwise_distance

from jaxreid.evaluation.sysu_gallery import (  # noqa: F401 (re-exported)
    SAMPLERS,
    SYSU_GALLERY_CAMERAS,
    SYSU_QUERY_CAMERAS,
    SYSU_SETTINGS,
    SYSU_SHOTS,
    SYSU_TRIALS,
    Permutations,
    _image_groups,
    _select,
    load_sysu_ids,
    load_sysu_permutations,
    sysu_gallery_selection,
)


def _check_query_cams(query_cams):
    cams = set(np.unique(np.asarray(query_cams)).tolist())
    if not cams <= set(SYSU_QUERY_CAMERAS):
        raise ValueError(
            f"query_cams: SYSU-MM01 queries are infrared images of cameras {SYSU_QUERY_CAMERAS}, "
            f"got cameras {sorted(cams)}"
        )


def _check_gallery_cams(gallery_cams):
    cams = set(np.unique(np.asarray(gallery_cams)).tolist())
    allowed = set(SYSU_GALLERY_CAMERAS["all"])
    if not cams <= allowed:
        raise ValueError(
            f"gallery_cams: SYSU-MM01 galleries are RGB images of cameras {sorted(allowed)}, "
            f"got cameras {sorted(cams)}"
        )


def _selections(groups, mode, shots, sampler, perms, trials):
    if int(trials) < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    return [_select(groups, mode, shots, t, sampler, perms) for t in range(int(trials))]


def _evaluate(
    distmat_union,
    union,
    selections,
    query_ids,
    query_cams,
    gallery_ids,
    gallery_cams,
    max_rank,
    algorithm,
):
    gallery_ids = np.asarray(gallery_ids)
    gallery_cams = np.asarray(gallery_cams)
    trial_results = []
    for sel in selections:
        # Store the columns grouped by identity (one pass computes the identity minima of the
        # identity-level CMC); ties are still broken by the reference gallery order.
        by_id = np.argsort(gallery_ids[sel], kind="stable")
        stored = sel[by_id]
        blocks = ranking._column_blocks(distmat_union, np.searchsorted(union, stored))
        res = ranking._rank_blocks(
            blocks,
            distmat_union.shape[0],
            len(sel),
            query_ids,
            gallery_ids[stored],
            query_cams,
            gallery_cams[stored],
            removal="same_location",
            cmc="identity",
            max_rank=max_rank,
            locations=ranking.SYSU_LOCATIONS,
            algorithm=algorithm,
            gallery_order=by_id,
        )
        res["gallery_size"] = int(len(sel))
        trial_results.append(res)
    return trial_results


def _resolve_permutations(sampler, perm_file):
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r}; expected one of {SAMPLERS}")
    if sampler == "seeded":
        return None
    if perm_file is None:
        raise ValueError(
            "sampler='official' needs perm_file: the path of rand_perm_cam.mat from the "
            "official SYSU-MM01 evaluation code (evaluation/data_split/)"
        )
    if isinstance(perm_file, Mapping):
        return perm_file
    return load_sysu_permutations(perm_file)


def _union_distances(query_feats, gallery_feats, selections, metric, distmat, num_q, num_g):
    """(union of the selected gallery rows, [Q, len(union)] distances to them)."""
    union = np.unique(np.concatenate(selections))
    if distmat is None:
        return union, pairwise_distance(query_feats, np.asarray(gallery_feats)[union], metric)
    distmat = np.asarray(distmat)
    if distmat.shape != (num_q, num_g):
        raise ValueError(
            f"distmat: expected shape {(num_q, num_g)} (queries x all gallery images), "
            f"got {distmat.shape}"
        )
    if not (np.isfinite(distmat.min()) and np.isfinite(distmat.max())):
        raise ValueError("distmat: contains non-finite distances")
    return np.arange(num_g), distmat


def _reranked_trials(
    query_feats,
    query_ids,
    query_cams,
    gallery_feats,
    gallery_ids,
    gallery_cams,
    selections,
    metric,
    rerank,
    max_rank,
    algorithm,
    distmat=None,
):
    """Per-trial results on k-reciprocal re-ranked distances; each trial's pool is the
    queries and that trial's gallery (the gallery differs between trials)."""
    if query_feats is None or gallery_feats is None or distmat is not None:
        raise ValueError(
            "sysu_mm01: rerank re-ranks features: pass query_feats and gallery_feats, not distmat"
        )
    gallery_feats = np.asarray(gallery_feats)
    results = []
    for sel in selections:
        cols = np.unique(sel)
        dist = rerank_lib.k_reciprocal_distances(
            query_feats, gallery_feats[cols], rerank, metric=metric
        )
        results += _evaluate(
            dist,
            cols,
            [sel],
            query_ids,
            query_cams,
            gallery_ids,
            gallery_cams,
            max_rank,
            algorithm,
        )
    return results


def _package(trial_results, selections, *, mode, shots, sampler, perm_file, metric, rerank):
    out = rerank_lib.annotate(ranking.average_results(trial_results), rerank)
    out.update(
        protocol="sysu_mm01",
        mode=mode,
        shots=int(shots),
        sampler=sampler,
        metric=metric,
        perm_file=None
        if sampler == "seeded" or isinstance(perm_file, Mapping)
        else os.fspath(perm_file),
        seeds=list(range(len(selections))) if sampler == "seeded" else None,
        gallery_rows=selections,
    )
    return out


def _evaluate_settings(
    settings: Mapping[str, tuple[str, int]],
    query_feats,
    query_ids,
    query_cams,
    gallery_feats,
    gallery_ids,
    gallery_cams,
    gallery_index,
    *,
    sampler,
    perm_file,
    trials,
    metric,
    max_rank,
    distmat,
    algorithm,
    rerank,
) -> dict[str, dict]:
    """{key: `sysu_mm01` result} for each (mode, shots) of `settings`; the distances to the
    union of every setting's galleries are computed once (unless re-ranked per trial)."""
    metric = canonical_metric(metric) if distmat is None else None
    _check_query_cams(query_cams)
    _check_gallery_cams(gallery_cams)
    perms = _resolve_permutations(sampler, perm_file)
    groups = _image_groups(gallery_ids, gallery_cams, gallery_index)
    selections = {
        key: _selections(groups, mode, shots, sampler, perms, trials)
        for key, (mode, shots) in settings.items()
    }
    if rerank is None:
        union, distmat = _union_distances(
            query_feats,
            gallery_feats,
            [s for sels in selections.values() for s in sels],
            metric,
            distmat,
            len(query_ids),
            len(gallery_ids),
        )
    out = {}
    for key, (mode, shots) in settings.items():
        if rerank is not None:
            trial_results = _reranked_trials(
                query_feats,
                query_ids,
                query_cams,
                gallery_feats,
                gallery_ids,
                gallery_cams,
                selections[key],
                metric or "euclidean",
                rerank,
                max_rank,
                algorithm,
                distmat,
            )
        else:
            trial_results = _evaluate(
                distmat,
                union,
                selections[key],
                query_ids,
                query_cams,
                gallery_ids,
                gallery_cams,
                max_rank,
                algorithm,
            )
        out[key] = _package(
            trial_results,
            selections[key],
            mode=mode,
            shots=shots,
            sampler=sampler,
            perm_file=perm_file,
            metric=metric,
            rerank=rerank,
        )
    return out


def sysu_mm01(
    query_feats,
    query_ids,
    query_cams,
    gallery_feats,
    gallery_ids,
    gallery_cams,
    gallery_index,
    *,
    mode: str = "all",
    shots: int = 1,
    sampler: str = "official",
    perm_file=None,
    trials: int = SYSU_TRIALS,
    metric: str = "euclidean",
    max_rank: int = 20,
    distmat=None,
    algorithm: str = "auto",
    rerank: rerank_lib.RerankParams | None = None,
) -> dict:
    """SYSU-MM01 evaluation: infrared queries against per-trial RGB galleries.

    Args:
      query_feats: [Q, D] features of the infrared test images (cameras 3 and 6).
      query_ids, query_cams: [Q] person ids and cameras of the queries.
      gallery_feats: [N, D] features of *all* RGB test images (cameras 1, 2, 4, 5).
      gallery_ids, gallery_cams: [N] person ids and cameras.
      gallery_index: [N] 1-based position of each image in its (camera, person) folder,
        in file-name order (the dataset's `file_index`).
      mode: 'all' (gallery cameras 1, 2, 4, 5) or 'indoor' (1, 2).
      shots: 1 (single-shot) or 10 (multi-shot) gallery images per camera and person.
      sampler: 'official' (rand_perm_cam.mat) or 'seeded' (Python re-implementation).
      perm_file: path of rand_perm_cam.mat (or the dict of `load_sysu_permutations`).
      trials: number of trials (10 in the protocol).
      metric: distance, see `jaxreid.evaluation.distances.METRICS`.
      max_rank: length of the CMC curves.
      distmat: optional precomputed [Q, N] distances from every query to every gallery
        image (e.g. a learned metric, as the MATLAB code's `model.test_fun` allows); then
        `metric` is ignored and the feature arguments may be None.
      rerank: None (default: off) or RerankParams: rank each trial by k-reciprocal
        re-ranked distances (Zhong et al. 2017) over the queries and that trial's gallery;
        needs features, not `distmat`.

    Returns:
      dict with the means over trials: cmc [max_rank], mAP, mINP, rank1/5/10/20;
      'trials': per-trial dicts (cmc, mAP, mINP, num_valid, num_queries, gallery_size);
      'gallery_rows': per-trial gallery indices; mode, shots, sampler, metric, perm_file,
      seeds (seeded sampler), num_trials, rerank, rerank_tag.
    """
    return _evaluate_settings(
        {"": (mode, shots)},
        query_feats,
        query_ids,
        query_cams,
        gallery_feats,
        gallery_ids,
        gallery_cams,
        gallery_index,
        sampler=sampler,
        perm_file=perm_file,
        trials=trials,
        metric=metric,
        max_rank=max_rank,
        distmat=distmat,
        algorithm=algorithm,
        rerank=rerank,
    )[""]


def sysu_mm01_settings(
    query_feats,
    query_ids,
    query_cams,
    gallery_feats,
    gallery_ids,
    gallery_cams,
    gallery_index,
    *,
    settings: Sequence[str] = tuple(SYSU_SETTINGS),
    sampler: str = "official",
    perm_file=None,
    trials: int = SYSU_TRIALS,
    metric: str = "euclidean",
    max_rank: int = 20,
    distmat=None,
    algorithm: str = "auto",
    rerank: rerank_lib.RerankParams | None = None,
) -> dict[str, dict]:
    """`sysu_mm01` for several settings, computing the distances only once.

    Args:
      rerank: as for `sysu_mm01` (re-ranked per setting and trial).
      settings: keys of SYSU_SETTINGS ('all_single', 'all_multi', 'indoor_single',
        'indoor_multi'); default all four (the grid of Tekeli 2019, Table 3).
      Other arguments: as for `sysu_mm01`.

    Returns:
      {setting: sysu_mm01 result}.
    """
    for key in settings:
        if key not in SYSU_SETTINGS:
            raise ValueError(f"unknown SYSU-MM01 setting {key!r}; expected {tuple(SYSU_SETTINGS)}")
    return _evaluate_settings(
        {key: SYSU_SETTINGS[key] for key in settings},
        query_feats,
        query_ids,
        query_cams,
        gallery_feats,
        gallery_ids,
        gallery_cams,
        gallery_index,
        sampler=sampler,
        perm_file=perm_file,
        trials=trials,
        metric=metric,
        max_rank=max_rank,
        distmat=distmat,
        algorithm=algorithm,
        rerank=rerank,
    )
