"""Open-set answers: a distance threshold for "this person is not in the gallery".

Open-set re-identification (Liao et al. 2014, "Open-set person re-identification", §3;
ISO/IEC 19795-1's open-set identification rates) answers each query either with a gallery
identity or with "not in the gallery". With a distance threshold t, the nearest gallery row
of a query is reported as a match when its distance is below t (strictly), otherwise the
answer is "not in the gallery". Two rates describe t on queries with known identities:

  false-match rate  the fraction of queries whose person is NOT in the gallery that get a
                    match reported (Liao's false accept rate, FAR; FPIR in ISO terms)
  true-match rate   the fraction of queries whose person IS in the gallery whose nearest
                    row is that person and below t (Liao's detection and identification
                    rate at rank 1, DIR; 1 - FNIR)

`choose_threshold` picks the largest t whose false-match rate on validation queries does not
exceed a target, and reports the rate reached and the true-match rate at t. Choose it on
validation identities (never the test ones); `enrolled_split` makes the non-mated queries from a
validation set in which every identity has gallery images, by leaving some identities out of
the gallery. The false-match rate at a fixed threshold grows with the gallery size (more
people to be confused with): choose it on a validation gallery of about the deployed size.

    split = enrolled_split(val_gallery_ids, fraction=0.5, seed=0)
    threshold = choose_threshold(val_gallery[split], val_gallery_ids[split],
                                 val_queries, val_query_ids, target_false_match_rate=0.01)
    gallery.set_threshold(threshold)          # stored in the gallery's .npz
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxreid.evaluation.distances import canonical_metric
from jaxreid.search.topk import top_k_search


@dataclasses.dataclass(frozen=True)
class OpenSetThreshold:
    """A distance threshold and what it reached on the queries it was chosen on.

    Attributes:
      distance: report a match when the nearest gallery distance is < distance.
      metric: the distance it applies to (canonical name).
      target_false_match_rate: the requested rate, in [0, 1].
      false_match_rate: reached on the non-mated validation queries (<= the target).
      true_match_rate: reached on the mated validation queries (correct rank-1 and < distance).
      num_mated, num_non_mated: validation queries of people in / not in the gallery.
    """

    distance: float
    metric: str
    target_false_match_rate: float
    false_match_rate: float
    true_match_rate: float
    num_mated: int
    num_non_mated: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def enrolled_split(ids, fraction: float = 0.5, seed: int = 0) -> np.ndarray:
    """[N] bool: rows of the identities kept in the gallery, `fraction` of the distinct ids
    drawn at random (at least one left out, at least one kept)."""
    ids = np.asarray(ids)
    people = np.unique(ids)
    if len(people) < 2:
        raise ValueError(f"enrolled_split needs at least 2 identities, got {len(people)}")
    keep = int(np.clip(round(fraction * len(people)), 1, len(people) - 1))
    chosen = np.random.default_rng(seed).choice(people, keep, replace=False)
    return np.isin(ids, chosen)


def rates(nearest_distance, nearest_is_same, mated, threshold: float) -> tuple[float, float]:
    """(false-match rate, true-match rate) at `threshold` from each query's top-1.

    Args:
      nearest_distance: [Q] float distance of each query's nearest gallery row.
      nearest_is_same: [Q] bool, that row is the query's person.
      mated: [Q] bool, the query's person is in the gallery.
    """
    d = np.asarray(nearest_distance, np.float64)
    matched = d < threshold
    mated = np.asarray(mated, bool)
    fmr = float(matched[~mated].mean()) if (~mated).any() else float("nan")
    tmr = (
        float((matched & np.asarray(nearest_is_same, bool))[mated].mean())
        if mated.any()
        else float("nan")
    )
    return fmr, tmr


def choose_threshold(
    gallery_embeddings,
    gallery_ids,
    query_embeddings,
    query_ids,
    target_false_match_rate: float,
    *,
    metric: str = "euclidean",
) -> OpenSetThreshold:
    """The largest threshold whose false-match rate on these queries is <= the target.

    Args:
      gallery_embeddings: [N, D] float; gallery_ids: [N] int person ids.
      query_embeddings: [Q, D] float; query_ids: [Q] int. Queries whose id is in
        gallery_ids are mated, the others non-mated; both kinds are needed.
      target_false_match_rate: in [0, 1].
      metric: a `jaxreid.evaluation.distances` metric.

    With the non-mated queries' nearest distances sorted, d_(1) <= ... <= d_(M), the threshold
    is d_(m+1) with m = floor(target * M): at most m of them lie strictly below it (exactly m
    without ties), so the false-match rate reached is m / M <= target. A target of 1 gives
    +inf (every nearest row is a match).

    Raises:
      ValueError: target outside [0, 1], no mated or no non-mated query, mismatched shapes.
    """
    metric = canonical_metric(metric)
    target = float(target_false_match_rate)
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"target_false_match_rate={target!r}; expected a rate in [0, 1]")
    gallery_ids, query_ids = np.asarray(gallery_ids), np.asarray(query_ids)
    if len(query_ids) != len(np.asarray(query_embeddings)) or len(gallery_ids) != len(
        np.asarray(gallery_embeddings)
    ):
        raise ValueError("choose_threshold: one id per embedding expected (queries and gallery)")
    mated = np.isin(query_ids, gallery_ids)
    if mated.all() or not mated.any():
        raise ValueError(
            f"choose_threshold needs queries of people in the gallery and of people not in it; "
            f"got {int(mated.sum())} mated and {int((~mated).sum())} non-mated "
            "(leave some validation identities out of the gallery: enrolled_split)"
        )
    distances, indices = top_k_search(query_embeddings, gallery_embeddings, 1, metric=metric)
    nearest, same = distances[:, 0].astype(np.float64), gallery_ids[indices[:, 0]] == query_ids
    non_mated = np.sort(nearest[~mated])
    allowed = int(np.floor(target * len(non_mated) + 1e-9))
    threshold = float(non_mated[allowed]) if allowed < len(non_mated) else float("inf")
    fmr, tmr = rates(nearest, same, mated, threshold)
    return OpenSetThreshold(
        distance=threshold,
        metric=metric,
        target_false_match_rate=target,
        false_match_rate=fmr,
        true_match_rate=tmr,
        num_mated=int(mated.sum()),
        num_non_mated=int((~mated).sum()),
    )


__all__ = ["OpenSetThreshold", "choose_threshold", "enrolled_split", "rates"]
