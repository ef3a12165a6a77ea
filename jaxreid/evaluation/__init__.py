"""Re-identification evaluation: distances, rank metrics, protocols, tables and plots.

NumPy in, NumPy out (JAX computes the distances). Imports JAX, NumPy and, for reading
SYSU-MM01's .mat files and for plots, SciPy and Matplotlib lazily; never TensorFlow.

  distances  pairwise_distance, euclidean, sqeuclidean, l1/manhattan, linf/chebyshev, cosine,
             is_collapsed (every image embedded in one point: metrics print n/a)
  ranking    rank (from a distance matrix), rank_features (from features, block by block)
             (its parts: relations = true matches and removal rules, match_ranks = rank
             of each true match and per-query AP / INP / CMC rank)
  protocols  sysu_mm01, sysu_mm01_settings, regdb, market1501, llcm, hafner2018,
             evaluate_modality_pairs ('hafner_text' | 'hafner_code' (hafner_code.py: as
             the thesis author's code computed the tables) | 'full'), aggregate_folds
             (each takes rerank=None|RerankParams; 'hafner_code' has none)
  rerank     RerankParams, k_reciprocal_distances, k_reciprocal_from_distances (Zhong et
             al. 2017 k-reciprocal re-ranking; off unless asked for)
  output     format_table, modality_pairs_table, sysu_table, metric_grid_table, plot_cmc
"""

from jaxreid.evaluation.distances import (
    METRICS,
    canonical_metric,
    chebyshev,
    cosine,
    distance_chunks,
    euclidean,
    is_collapsed,
    l1,
    linf,
    manhattan,
    pairwise_distance,
    sqeuclidean,
)
from jaxreid.evaluation.hafner import (
    aggregate_folds,
    evaluate_modality_pairs,
    hafner2018,
    modality_pairs,
    pair_name,
    select_queries,
    select_single_shot_gallery,
)
from jaxreid.evaluation.llcm import (
    LLCM_DIRECTIONS,
    LLCM_IR_CAMERAS,
    LLCM_TRIALS,
    LLCM_VIS_CAMERAS,
    LLCM_VIS_TO_IR_ROLES,
    llcm,
    llcm_selection,
)
from jaxreid.evaluation.market import market1501
from jaxreid.evaluation.plots import plot_cmc
from jaxreid.evaluation.ranking import (
    CMC_MODES,
    REMOVAL_RULES,
    SYSU_LOCATIONS,
    average_results,
    cmc_at,
    rank,
    rank_features,
)
from jaxreid.evaluation.regdb import regdb, regdb_trial
from jaxreid.evaluation.rerank import (
    RerankParams,
    k_reciprocal_distances,
    k_reciprocal_from_distances,
)
from jaxreid.evaluation.sysu import (
    SYSU_GALLERY_CAMERAS,
    SYSU_QUERY_CAMERAS,
    SYSU_SETTINGS,
    load_sysu_ids,
    load_sysu_permutations,
    sysu_gallery_selection,
    sysu_mm01,
    sysu_mm01_settings,
)
from jaxreid.evaluation.tables import (
    TEKELI_METRICS,
    THESIS_METRICS,
    format_table,
    metric_grid_table,
    modality_pairs_table,
    sysu_table,
)

__all__ = [
    "METRICS",
    "canonical_metric",
    "chebyshev",
    "cosine",
    "distance_chunks",
    "euclidean",
    "is_collapsed",
    "l1",
    "linf",
    "manhattan",
    "pairwise_distance",
    "sqeuclidean",
    "CMC_MODES",
    "REMOVAL_RULES",
    "SYSU_LOCATIONS",
    "average_results",
    "cmc_at",
    "rank",
    "rank_features",
    "SYSU_GALLERY_CAMERAS",
    "SYSU_QUERY_CAMERAS",
    "SYSU_SETTINGS",
    "load_sysu_ids",
    "load_sysu_permutations",
    "sysu_gallery_selection",
    "sysu_mm01",
    "sysu_mm01_settings",
    "regdb",
    "regdb_trial",
    "RerankParams",
    "k_reciprocal_distances",
    "k_reciprocal_from_distances",
    "market1501",
    "LLCM_DIRECTIONS",
    "LLCM_IR_CAMERAS",
    "LLCM_TRIALS",
    "LLCM_VIS_CAMERAS",
    "LLCM_VIS_TO_IR_ROLES",
    "llcm",
    "llcm_selection",
    "aggregate_folds",
    "evaluate_modality_pairs",
    "hafner2018",
    "modality_pairs",
    "pair_name",
    "select_queries",
    "select_single_shot_gallery",
    "TEKELI_METRICS",
    "THESIS_METRICS",
    "format_table",
    "metric_grid_table",
    "modality_pairs_table",
    "sysu_table",
    "plot_cmc",
]
