"""RegDB evaluation protocol (Nguyen et al. 2017; as in Ye et al. 2018 and Tekeli 2019, §4.3).

RegDB has 412 persons with 10 visible and 10 thermal images each. Each of the 10 trials
uses its own random split into 206 training and 206 test persons (a model is trained per
trial). In a trial every test image of one modality is a query against every test image of
the other modality:
  visible -> thermal   visible queries, thermal gallery;
  thermal -> visible   thermal queries, visible gallery;
  removal  none (query and gallery are different modalities of one camera pair; the
           reference code's same-identity-and-camera rule never applies);
  CMC      standard; AP non-interpolated over all gallery images.
The reported numbers are means over the trials (mangye16/Cross-Modal-Re-ID-baseline,
test.py and eval_metrics.eval_regdb).
"""

from __future__ import annotations

from typing import Mapping, Sequence

from jaxreid.evaluation import ranking
from jaxreid.evaluation import rerank as rerank_lib
from jaxreid.evaluation.distances import canonical_metric, pairwise_distance

REGDB_TRIALS = 10
DIRECTIONS = ("visible_to_thermal", "thermal_to_visible")


def regdb_trial(
    visible_feats,
    visible_ids,
    thermal_feats,
    thermal_ids,
    *,
    metric: str = "euclidean",
    max_rank: int = 20,
    rerank: rerank_lib.RerankParams | None = None,
) -> dict[str, dict]:
    """Both RegDB directions for one trial's test split.

    Args:
      visible_feats, thermal_feats: [Nv, D], [Nt, D] features of the trial's test images.
      visible_ids, thermal_ids: [Nv], [Nt] person ids.
      metric: distance, see `jaxreid.evaluation.distances.METRICS`.
      rerank: None (default: off) or RerankParams: each direction ranked by k-reciprocal
        re-ranked distances (Zhong et al. 2017; not symmetric, so computed per direction).

    Returns:
      {'visible_to_thermal': rank result, 'thermal_to_visible': rank result}, each with
      rerank and rerank_tag.
    """
    metric = canonical_metric(metric)
    if rerank is None:
        v2t_dist = pairwise_distance(visible_feats, thermal_feats, metric)  # [Nv, Nt]
        t2v_dist = v2t_dist.T
    else:
        v2t_dist = rerank_lib.k_reciprocal_distances(
            visible_feats, thermal_feats, rerank, metric=metric
        )
        t2v_dist = rerank_lib.k_reciprocal_distances(
            thermal_feats, visible_feats, rerank, metric=metric
        )
    v2t = ranking.rank(v2t_dist, visible_ids, thermal_ids, removal="none", max_rank=max_rank)
    t2v = ranking.rank(t2v_dist, thermal_ids, visible_ids, removal="none", max_rank=max_rank)
    return {
        "visible_to_thermal": rerank_lib.annotate(v2t, rerank),
        "thermal_to_visible": rerank_lib.annotate(t2v, rerank),
    }


def regdb(
    trials: Sequence[Mapping],
    *,
    metric: str = "euclidean",
    max_rank: int = 20,
    rerank: rerank_lib.RerankParams | None = None,
) -> dict:
    """RegDB protocol: both directions averaged over the trials.

    Args:
      trials: one mapping per trial (10 in the protocol) with keys 'visible_feats',
        'visible_ids', 'thermal_feats', 'thermal_ids' (that trial's test split, embedded
        by that trial's model).
      metric: distance, see `jaxreid.evaluation.distances.METRICS`.
      rerank: None (default: off) or RerankParams, see `regdb_trial`.

    Returns:
      {'visible_to_thermal': averaged result, 'thermal_to_visible': averaged result,
       'num_trials': int, 'metric': str}; each averaged result holds cmc, mAP, mINP,
      rank1/5/10/20 and the per-trial results under 'trials'.
    """
    metric = canonical_metric(metric)
    trials = list(trials)
    if not trials:
        raise ValueError("regdb: got no trials")
    keys = ("visible_feats", "visible_ids", "thermal_feats", "thermal_ids")
    per_trial = []
    for i, trial in enumerate(trials):
        missing = [k for k in keys if k not in trial]
        if missing:
            raise ValueError(f"regdb: trial {i} lacks keys {missing}; expected {keys}")
        per_trial.append(
            regdb_trial(*(trial[k] for k in keys), metric=metric, max_rank=max_rank, rerank=rerank)
        )
    out = {
        d: rerank_lib.annotate(ranking.average_results([t[d] for t in per_trial]), rerank)
        for d in DIRECTIONS
    }
    out.update(num_trials=len(trials), metric=metric, protocol="regdb")
    return rerank_lib.annotate(out, rerank)
