"""Figures of the thesis's visual analyses (Hafner 2018): ranked lists and guided backprop.

  rank_list        plot_rank_list, plot_rank_lists (appendix C, Figures 39-50)
  guided_backprop  guided_relu, guided_backprop, activation_map, plot_activation_maps
                   (§4.2.5, Figures 27-30, 32, 34, 38)
  images           to_display_rgb (any modality -> RGB for display)

Imports JAX and NumPy; Matplotlib (Agg canvas) only inside the plotting functions; never
TensorFlow. CMC curves are `jaxreid.evaluation.plot_cmc`.
"""

from jaxreid.visualization.guided_backprop import (
    activation_map,
    guided_backprop,
    guided_relu,
    plot_activation_maps,
)
from jaxreid.visualization.images import to_display_rgb
from jaxreid.visualization.rank_list import (
    MATCH_COLOR,
    MISMATCH_COLOR,
    plot_rank_list,
    plot_rank_lists,
)

__all__ = [
    "MATCH_COLOR",
    "MISMATCH_COLOR",
    "activation_map",
    "guided_backprop",
    "guided_relu",
    "plot_activation_maps",
    "plot_rank_list",
    "plot_rank_lists",
    "to_display_rgb",
]
