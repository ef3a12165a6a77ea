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

Gallery selection:
  'official'  rand_perm_cam{camera}{person}(trial, 1:shots): 1-based indices of the chosen
              images among that (camera, person)'s images in file-name order. Gallery order:
              camera, then person id, then the order of the permutation (get_testing_set.m).
  'seeded'    the widely used Python re-implementation (mangye16/Cross-Modal-Re-ID-baseline,
              data_manager.process_gallery_sysu): `random.seed(trial)`, then for each person
              id in ascending order and each gallery camera in order, `random.choice` over that
              folder's files sorted by name; trials are seeded 0..trials-1. That code has no
              multi-shot; for shots > 1 jaxreid draws `random.sample(files, shots)` at the same
              place in the same loop (a jaxreid extension, not a published protocol).
"""

from __future__ import annotations

import os
import random
from typing import Mapping, Sequence

import numpy as np

from jaxreid.evaluation import ranking
from jaxreid.evaluation import rerank as rerank_lib
from jaxreid.evaluation.distances import canonical_metric, pairwise_distance

SYSU_QUERY_CAMERAS = (3, 6)  # Wu et al. 2017, evaluation_SYSU_MM01.m: probe_cam_list
SYSU_GALLERY_CAMERAS = {"all": (1, 2, 4, 5), "indoor": (1, 2)}  # gallery_cam_list
SYSU_SHOTS = (1, 10)  # setting.number_shot: 1 single-shot, 10 multi-shot
SYSU_TRIALS = 10  # rows of rand_perm_cam{c}{p}
SYSU_SETTINGS = {  # the grid of Tekeli 2019, Table 3
    "all_single": ("all", 1),
    "all_multi": ("all", 10),
    "indoor_single": ("indoor", 1),
    "indoor_multi": ("indoor", 10),
}
SAMPLERS = ("official", "seeded")

Permutations = Mapping[tuple[int, int], np.ndarray]


def _loadmat(path, variable: str):
    from scipy.io import loadmat  # local: scipy is only needed to read the .mat files

    path = os.fspath(path)
    try:
        content = loadmat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    if variable not in content:
        found = sorted(k for k in content if not k.startswith("__"))
        raise ValueError(f"{path}: variable {variable!r} not found (found {found})")
    return content[variable]


def load_sysu_permutations(perm_file) -> dict[tuple[int, int], np.ndarray]:
    """Reads rand_perm_cam.mat of the official SYSU-MM01 evaluation code.

    The file holds `rand_perm_cam`, a 6 x 1 MATLAB cell (one per camera) of cells indexed
    by person id (1-based); entry {c}{p} is a [trials, n] array whose row t is a 1-based
    permutation of the n images of person p in camera c, in file-name order.

    Returns:
      {(camera, person_id): [trials, n] int64 array of 1-based image indices}, for every
      non-empty entry.
    """
    cells = _loadmat(perm_file, "rand_perm_cam")
    cameras = np.asarray(cells, dtype=object).reshape(-1)
    out: dict[tuple[int, int], np.ndarray] = {}
    for cam_index, cam_cell in enumerate(cameras, start=1):
        persons = np.asarray(cam_cell, dtype=object).reshape(-1)
        for person, perm in enumerate(persons, start=1):
            perm = np.asarray(perm)
            if perm.size == 0:
                continue
            if perm.ndim != 2:
                raise ValueError(
                    f"{os.fspath(perm_file)}: rand_perm_cam{{{cam_index}}}{{{person}}} has shape "
                    f"{perm.shape}; expected [trials, n_images]"
                )
            # stored as uint8 in the official file: widen before any arithmetic
            perm = perm.astype(np.int64)
            if perm.min() < 1 or perm.max() > perm.shape[1]:
                raise ValueError(
                    f"{os.fspath(perm_file)}: rand_perm_cam{{{cam_index}}}{{{person}}} holds "
                    f"indices {perm.min()}..{perm.max()}; expected 1..{perm.shape[1]}"
                )
            out[(cam_index, person)] = perm
    return out


def load_sysu_ids(path) -> np.ndarray:
    """Person ids of a SYSU-MM01 split file (test_id.mat / train_id.mat, variable `id`)."""
    return np.asarray(_loadmat(path, "id")).reshape(-1).astype(np.int64)


def _image_groups(gallery_ids, gallery_cams, gallery_index) -> dict[tuple[int, int], np.ndarray]:
    """{(camera, person): gallery rows ordered by their 1-based file-name position}."""
    ids = np.asarray(gallery_ids).astype(np.int64)
    cams = np.asarray(gallery_cams).astype(np.int64)
    index = np.asarray(gallery_index).astype(np.int64)
    if not (ids.shape == cams.shape == index.shape) or ids.ndim != 1:
        raise ValueError(
            "gallery_ids, gallery_cams and gallery_index must be 1-D arrays of one length, got "
            f"shapes {ids.shape}, {cams.shape}, {index.shape}"
        )
    order = np.lexsort((index, ids, cams))
    keys = np.stack([cams[order], ids[order]], axis=1)
    starts = np.flatnonzero(np.r_[True, np.any(keys[1:] != keys[:-1], axis=1)])
    ends = np.r_[starts[1:], len(order)]
    groups = {}
    for a, b in zip(starts, ends):
        cam, pid = int(keys[a, 0]), int(keys[a, 1])
        rows = order[a:b]
        expected = np.arange(1, b - a + 1)
        if not np.array_equal(index[rows], expected):
            raise ValueError(
                f"gallery_index of camera {cam}, person {pid}: expected the 1-based positions "
                f"1..{b - a} (file-name order), got {sorted(index[rows].tolist())}"
            )
        groups[(cam, pid)] = rows
    return groups


def sysu_gallery_selection(
    gallery_ids,
    gallery_cams,
    gallery_index,
    *,
    mode: str = "all",
    shots: int = 1,
    trial: int = 0,
    sampler: str = "official",
    permutations: Permutations | None = None,
) -> np.ndarray:
    """Gallery rows of one SYSU-MM01 trial, in the reference code's gallery order.

    Args:
      gallery_ids, gallery_cams, gallery_index: [N] person id, camera (1-6) and 1-based
        position in its (camera, person) folder in file-name order, of every RGB test image.
      mode: 'all' (cameras 1, 2, 4, 5) or 'indoor' (cameras 1, 2).
      shots: images per (camera, person): 1 (single-shot) or 10 (multi-shot).
      trial: 0-based trial (row of the permutation file; seed of the 'seeded' sampler).
      sampler: 'official' (needs `permutations`) or 'seeded' (see module docstring).
      permutations: result of `load_sysu_permutations`.

    Returns:
      [n_selected] int64 indices into the gallery arrays.
    """
    groups = _image_groups(gallery_ids, gallery_cams, gallery_index)
    return _select(groups, mode, shots, trial, sampler, permutations)


def _select(groups, mode, shots, trial, sampler, permutations) -> np.ndarray:
    """sysu_gallery_selection on the result of _image_groups."""
    if mode not in SYSU_GALLERY_CAMERAS:
        raise ValueError(f"mode={mode!r}; expected one of {tuple(SYSU_GALLERY_CAMERAS)}")
    if int(shots) < 1:
        raise ValueError(f"shots must be >= 1, got {shots}")
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r}; expected one of {SAMPLERS}")
    shots, trial = int(shots), int(trial)
    cams = SYSU_GALLERY_CAMERAS[mode]
    persons = sorted({pid for (cam, pid) in groups if cam in cams})

    def check_shots(cam, pid, n):
        if shots > n:
            raise ValueError(
                f"camera {cam}, person {pid} has {n} gallery images, fewer than shots={shots}"
            )

    selected = []
    if sampler == "official":
        if permutations is None:
            raise ValueError("sampler='official' needs the permutation file rand_perm_cam.mat")
        for cam in cams:  # get_testing_set.m: cameras, then person ids, then permutation order
            for pid in persons:
                rows = groups.get((cam, pid))
                perm = permutations.get((cam, pid))
                if rows is None:
                    if perm is not None and perm.shape[1] > 0:
                        raise ValueError(
                            f"the permutation file lists {perm.shape[1]} images of person {pid} "
                            f"in camera {cam}, but the gallery has none; pass all RGB test images"
                        )
                    continue
                if perm is None:
                    raise ValueError(
                        f"the permutation file has no entry for camera {cam}, person {pid} "
                        f"({len(rows)} gallery images)"
                    )
                if perm.shape[1] != len(rows):
                    raise ValueError(
                        f"the permutation file has {perm.shape[1]} images for camera {cam}, "
                        f"person {pid}, but the gallery has {len(rows)}"
                    )
                if trial >= perm.shape[0]:
                    raise ValueError(
                        f"trial {trial} requested but the permutation file has {perm.shape[0]} "
                        f"trials (camera {cam}, person {pid})"
                    )
                check_shots(cam, pid, len(rows))
                # entries are 1..n: checked by load_sysu_permutations
                selected.append(rows[perm[trial, :shots] - 1])
    else:
        rng = random.Random(trial)  # == random.seed(trial) on the module-level generator
        for pid in persons:  # data_manager.process_gallery_sysu: ids sorted, then cameras
            for cam in cams:
                rows = groups.get((cam, pid))
                if rows is None:
                    continue
                check_shots(cam, pid, len(rows))
                if shots == 1:
                    # random.choice(files) == files[rng._randbelow(len(files))]: only the length
                    # matters, so choosing from range(n) picks the same file
                    selected.append(rows[[rng.choice(range(len(rows)))]])
                else:
                    selected.append(rows[rng.sample(range(len(rows)), shots)])
    if not selected:
        return np.zeros(0, np.int64)
    return np.concatenate(selected).astype(np.int64)


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
    metric = canonical_metric(metric) if distmat is None else None
    _check_query_cams(query_cams)
    _check_gallery_cams(gallery_cams)
    perms = _resolve_permutations(sampler, perm_file)
    groups = _image_groups(gallery_ids, gallery_cams, gallery_index)
    selections = _selections(groups, mode, shots, sampler, perms, trials)
    if rerank is not None:
        trial_results = _reranked_trials(
            query_feats,
            query_ids,
            query_cams,
            gallery_feats,
            gallery_ids,
            gallery_cams,
            selections,
            metric or "euclidean",
            rerank,
            max_rank,
            algorithm,
            distmat,
        )
    else:
        union, distmat = _union_distances(
            query_feats,
            gallery_feats,
            selections,
            metric,
            distmat,
            len(query_ids),
            len(gallery_ids),
        )
        trial_results = _evaluate(
            distmat,
            union,
            selections,
            query_ids,
            query_cams,
            gallery_ids,
            gallery_cams,
            max_rank,
            algorithm,
        )
    return _package(
        trial_results,
        selections,
        mode=mode,
        shots=shots,
        sampler=sampler,
        perm_file=perm_file,
        metric=metric,
        rerank=rerank,
    )


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
    metric = canonical_metric(metric) if distmat is None else None
    for key in settings:
        if key not in SYSU_SETTINGS:
            raise ValueError(f"unknown SYSU-MM01 setting {key!r}; expected {tuple(SYSU_SETTINGS)}")
    _check_query_cams(query_cams)
    _check_gallery_cams(gallery_cams)
    perms = _resolve_permutations(sampler, perm_file)
    groups = _image_groups(gallery_ids, gallery_cams, gallery_index)
    selections = {
        key: _selections(groups, *SYSU_SETTINGS[key], sampler, perms, trials) for key in settings
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
    for key in settings:
        mode, shots = SYSU_SETTINGS[key]
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
