"""LLCM evaluation protocol (Zhang & Wang, CVPR 2023; the released DEEN code,
github.com/ZYK100/LLCM, DEEN/test.py, data_manager.py and eval_metrics.eval_llcm).

The test set has 351 identities seen by 9 cameras that record visible (VIS) and near-infrared
(IR) images; IR has no camera 3. Two directions are reported, each a mean over 10 trials:
  'ir_to_vis'  queries: every IR test image; gallery of trial t: one VIS image per (person,
               camera) drawn by `random.seed(t)` then, for each person id in ascending order
               and each camera 1..9 with images, `random.choice` over that cam<c>/<pid>/
               folder's files sorted by name (process_gallery_llcm; test_mode [1, 2]).
  'vis_to_ir'  as the released test.py computes it (test_mode [2, 1]): the same draw over the
               IR folders (cameras 1, 2, 4-9) gives the trial's sampled IR images, and the
               distances are transposed before ranking, so the sampled IR images are the
               ranked queries and every VIS test image is the gallery ('released', the
               setting behind the published VIS->IR figures). 'vis_queries' ranks instead
               every VIS image against the sampled IR gallery (a jaxreid option, what the
               name says; no published figures).
  removal      gallery images of the query's identity and camera (a VIS and an IR image of
               camera c share camera c);
  CMC          identity level (repeated gallery identities dropped, eval_llcm's `new_cmc`);
  AP           non-interpolated over all kept gallery images; queries without a true match
               are not counted.
The released code ranks by the negative inner product of its features; here `metric` says
which distance (an L2-normalised feature makes euclidean and cosine rank alike).
"""

from __future__ import annotations

import random
from typing import Sequence

import numpy as np

from jaxreid.config import choices
from jaxreid.evaluation import ranking
from jaxreid.evaluation import rerank as rerank_lib
from jaxreid.evaluation.distances import canonical_metric, pairwise_distance
from jaxreid.evaluation.sysu_gallery import _image_groups

LLCM_TRIALS = 10  # DEEN/test.py: `for trial in range(10)`
LLCM_VIS_CAMERAS = (1, 2, 3, 4, 5, 6, 7, 8, 9)  # data_manager.py: test_vis/cam1 ... cam9
LLCM_IR_CAMERAS = (1, 2, 4, 5, 6, 7, 8, 9)  # test_nir: no cam3
LLCM_DIRECTIONS = ("ir_to_vis", "vis_to_ir")
LLCM_VIS_TO_IR_ROLES = choices.LLCM_VIS_TO_IR_ROLES


def llcm_selection(ids, cams, file_index, cameras: Sequence[int], trial: int) -> np.ndarray:
    """Rows of one image per (person, camera) as process_gallery_llcm draws them.

    Args:
      ids, cams, file_index: [N] person id, camera and 1-based position of the file in its
        cam<c>/<pid>/ folder in file-name order (the dataset's `file_index`), of every test
        image of one modality.
      cameras: the modality's cameras in the released order (LLCM_VIS_CAMERAS / _IR_).
      trial: 0-based trial, the seed of `random.seed`.

    Returns:
      [n] int64 row indices in draw order (person id ascending, then camera).

    Raises:
      ValueError: arrays of different lengths, or file_index not 1..n per (camera, person).
    """
    groups = _image_groups(ids, cams, file_index)
    rng = random.Random(int(trial))  # == random.seed(trial) on the module-level generator
    persons = sorted({pid for (_, pid) in groups})
    rows = []
    for pid in persons:
        for cam in cameras:
            group = groups.get((cam, pid))
            if group is not None:
                # random.choice(files) == files[rng._randbelow(len(files))]: only the length
                # matters, so choosing from range(n) picks the same file
                rows.append(group[rng.choice(range(len(group)))])
    return np.asarray(rows, np.int64)


def _check_cams(cams, allowed, name):
    found = set(np.unique(np.asarray(cams)).tolist())
    if not found <= set(allowed):
        raise ValueError(f"{name}: LLCM cameras are {allowed}, got {sorted(found)}")


def llcm(
    vis_feats,
    vis_ids,
    vis_cams,
    vis_index,
    ir_feats,
    ir_ids,
    ir_cams,
    ir_index,
    *,
    directions: Sequence[str] = LLCM_DIRECTIONS,
    trials: int = LLCM_TRIALS,
    vis_to_ir: str = "released",
    metric: str = "euclidean",
    max_rank: int = 20,
    rerank: rerank_lib.RerankParams | None = None,
) -> dict:
    """LLCM protocol: both directions, means over `trials` gallery draws.

    Args:
      vis_feats, ir_feats: [Nv, D], [Ni, D] features of every VIS / IR test image.
      vis_ids, vis_cams, vis_index: [Nv] person id, camera (1-9) and file_index of the VIS
        images; ir_ids, ir_cams, ir_index: the same for IR (cameras 1, 2, 4-9).
      directions: subset of LLCM_DIRECTIONS.
      trials: draws (10 in the protocol); trial t is seeded with t.
      vis_to_ir: 'released' or 'vis_queries' (see the module docstring).
      metric: distance, see `jaxreid.evaluation.distances.METRICS`.
      rerank: None (default: off) or RerankParams: each trial ranked by k-reciprocal
        re-ranked distances (Zhong et al. 2017) over that trial's queries and gallery.

    Returns:
      {'ir_to_vis': result, 'vis_to_ir': result, 'protocol': 'llcm', 'metric', 'num_trials',
       'vis_to_ir_roles', 'rerank', 'rerank_tag'}; each result holds the means cmc, mAP,
      mINP, rank1/5/10/20, 'trials' (per-trial results), 'query_rows' and 'gallery_rows'
      (per trial, indices into the VIS or IR arrays; None = all), rerank, rerank_tag.

    Raises:
      ValueError: unknown direction / roles, cameras outside LLCM's, trials < 1.
    """
    metric = canonical_metric(metric)
    unknown = [d for d in directions if d not in LLCM_DIRECTIONS]
    if unknown:
        raise ValueError(f"llcm: directions {unknown}; expected some of {LLCM_DIRECTIONS}")
    if vis_to_ir not in LLCM_VIS_TO_IR_ROLES:
        raise ValueError(f"llcm: vis_to_ir={vis_to_ir!r}; expected one of {LLCM_VIS_TO_IR_ROLES}")
    if int(trials) < 1:
        raise ValueError(f"llcm: trials must be >= 1, got {trials}")
    _check_cams(vis_cams, LLCM_VIS_CAMERAS, "vis_cams")
    _check_cams(ir_cams, LLCM_IR_CAMERAS, "ir_cams")
    vis = dict(feats=np.asarray(vis_feats), ids=np.asarray(vis_ids), cams=np.asarray(vis_cams))
    ir = dict(feats=np.asarray(ir_feats), ids=np.asarray(ir_ids), cams=np.asarray(ir_cams))
    # [Ni, Nv] once: every trial's matrix is a slice of it (unless re-ranked).
    dist = None if rerank else pairwise_distance(ir["feats"], vis["feats"], metric)
    out = {}
    for direction in directions:
        results, q_rows_all, g_rows_all = [], [], []
        for t in range(int(trials)):
            if direction == "ir_to_vis":
                q, g = ir, vis
                q_rows, g_rows = (
                    None,
                    llcm_selection(vis_ids, vis_cams, vis_index, LLCM_VIS_CAMERAS, t),
                )
            else:
                sampled = llcm_selection(ir_ids, ir_cams, ir_index, LLCM_IR_CAMERAS, t)
                if vis_to_ir == "released":
                    q, g, q_rows, g_rows = ir, vis, sampled, None
                else:
                    q, g, q_rows, g_rows = vis, ir, None, sampled
            qi = np.arange(len(q["ids"])) if q_rows is None else q_rows
            gi = np.arange(len(g["ids"])) if g_rows is None else g_rows
            if rerank is not None:
                d = rerank_lib.k_reciprocal_distances(
                    q["feats"][qi], g["feats"][gi], rerank, metric=metric
                )
            elif q is ir:
                d = dist[np.ix_(qi, gi)]
            else:
                d = dist[np.ix_(gi, qi)].T
            res = ranking.rank(
                d,
                q["ids"][qi],
                g["ids"][gi],
                q["cams"][qi],
                g["cams"][gi],
                removal="same_camera",
                cmc="identity",
                max_rank=max_rank,
            )
            results.append(res)
            q_rows_all.append(q_rows)
            g_rows_all.append(g_rows)
        avg = ranking.average_results(results)
        avg.update(query_rows=q_rows_all, gallery_rows=g_rows_all)
        out[direction] = rerank_lib.annotate(avg, rerank)
    out.update(protocol="llcm", metric=metric, num_trials=int(trials), vis_to_ir_roles=vis_to_ir)
    return rerank_lib.annotate(out, rerank)


__all__ = [
    "LLCM_DIRECTIONS",
    "LLCM_IR_CAMERAS",
    "LLCM_TRIALS",
    "LLCM_VIS_CAMERAS",
    "LLCM_VIS_TO_IR_ROLES",
    "llcm",
    "llcm_selection",
]
