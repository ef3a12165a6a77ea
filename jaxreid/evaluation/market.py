"""Market-1501-style single-modal evaluation (Zheng et al. 2015).

queries  every query image; gallery: every gallery image except junk (label -1 in
         Market-1501, "junk_index1" of the official MATLAB evaluation);
removal  gallery images of the query's identity taken by the query's camera
         ("junk_index2"); distractors (label 0) stay in the gallery as negatives;
CMC      standard (rank of the first true match); one pass, no trials.
AP       `ap='non_interpolated'` (the default; torchreid's `eval_market1501` gives the same
         numbers, it drops label -1 when loading) or `ap='trapezoid'` (the official
         MATLAB code of Zheng et al. 2015, compute_AP.m, which integrates precision over
         recall with the trapezoid rule); see `jaxreid.evaluation.ranking`. One query
         (id 1, camera 1) against the ranked gallery [id 1 cam 1 (junk: same camera),
         id 1 cam 2, label -1 (junk), id 2, label 0 (distractor), id 1 cam 3] has its
         matches at ranks 1 and 4: non-interpolated AP (1/1 + 2/4) / 2 = 0.75,
         trapezoid AP 1/2 (1 + 1) / 2 + 1/2 (1/3 + 2/4) / 2 = 0.708333.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from jaxreid.evaluation import ranking
from jaxreid.evaluation import rerank as rerank_lib
from jaxreid.evaluation.distances import canonical_metric

MARKET_JUNK_IDS = (-1,)


def market1501(
    query_feats,
    query_ids,
    query_cams,
    gallery_feats,
    gallery_ids,
    gallery_cams,
    *,
    metric: str = "euclidean",
    max_rank: int = 20,
    junk_ids: Sequence = MARKET_JUNK_IDS,
    distmat=None,
    algorithm: str = "auto",
    rerank: rerank_lib.RerankParams | None = None,
    ap: str = "non_interpolated",
) -> dict:
    """Market-1501 protocol on features (or on a precomputed distance matrix).

    The result names its AP definition under 'ap_definition'.

    Args:
      query_feats, gallery_feats: [Q, D], [G, D] features (ignored if `distmat` is given;
        then pass None).
      query_ids, query_cams, gallery_ids, gallery_cams: [Q], [G] labels.
      metric: distance, see `jaxreid.evaluation.distances.METRICS`.
      junk_ids: gallery labels dropped before ranking (Market-1501: -1).
      distmat: optional precomputed [Q, G] distances.
      rerank: None (default: off) or RerankParams: rank by k-reciprocal re-ranked distances
        (Zhong et al. 2017) over the queries and the non-junk gallery; needs features.
      ap: 'non_interpolated' (default, torchreid) or 'trapezoid' (Zheng et al. 2015's code).

    Returns:
      rank result (cmc, mAP, mINP, num_valid, num_queries) plus rank1/5/10/20,
      num_junk, metric, protocol, rerank, rerank_tag.

    Raises:
      ValueError: `rerank` with `distmat` but no features.
    """
    gallery_ids = np.asarray(gallery_ids)
    gallery_cams = np.asarray(gallery_cams)
    keep = (
        ~np.isin(gallery_ids, np.asarray(list(junk_ids), dtype=gallery_ids.dtype))
        if len(junk_ids)
        else np.ones(len(gallery_ids), bool)
    )
    kw = dict(removal="same_camera", cmc="standard", max_rank=max_rank, algorithm=algorithm, ap=ap)
    if rerank is not None:
        if query_feats is None or gallery_feats is None or distmat is not None:
            raise ValueError(
                "market1501: rerank re-ranks features: pass query_feats and gallery_feats, "
                "not distmat"
            )
        metric = canonical_metric(metric)
        distmat = rerank_lib.k_reciprocal_distances(
            query_feats, np.asarray(gallery_feats)[keep], rerank, metric=metric
        )
        out = ranking.rank(
            distmat, query_ids, gallery_ids[keep], query_cams, gallery_cams[keep], **kw
        )
    elif distmat is not None:
        distmat = np.asarray(distmat)
        if not keep.all():
            distmat = distmat[:, keep]
        out = ranking.rank(
            distmat, query_ids, gallery_ids[keep], query_cams, gallery_cams[keep], **kw
        )
        metric = None
    else:
        metric = canonical_metric(metric)
        gallery_feats = np.asarray(gallery_feats)
        if not keep.all():
            gallery_feats = gallery_feats[keep]
        out = ranking.rank_features(
            query_feats,
            gallery_feats,
            query_ids,
            gallery_ids[keep],
            query_cams,
            gallery_cams[keep],
            metric=metric,
            **kw,
        )
    out.update(ranking.cmc_at(out))
    out.update(num_junk=int((~keep).sum()), metric=metric, protocol="market1501", ap_definition=ap)
    return rerank_lib.annotate(out, rerank)
