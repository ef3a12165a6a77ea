"""Ranked lists: a query image and its top-k gallery images, matches framed green, others red.

As the thesis's appendix C (Hafner 2018, Figures 39-50): one row per query, the query on
the left and its gallery images by increasing distance to the right. Query and gallery may
be of any modality (RGB, depth, infrared); single-channel images are shown with a colormap
(see `jaxreid.visualization.images.to_display_rgb`).

Matplotlib (Agg canvas) is imported only when a figure is drawn.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from jaxreid.visualization.images import new_figure, save_png, show_image, to_display_rgb

# Frame colours of correct and wrong matches.
MATCH_COLOR = (0.0, 0.7, 0.0)
MISMATCH_COLOR = (0.85, 0.0, 0.0)


def plot_rank_lists(
    query_images: Sequence,
    gallery_images: Sequence[Sequence],
    gallery_is_match: Sequence[Sequence[bool]],
    path,
    *,
    k: int = 10,
    query_labels: Sequence[str] | None = None,
    gallery_labels: Sequence[Sequence[str]] | None = None,
    title: str | None = None,
    cmap: str | None = None,
    panel_size: tuple[float, float] = (1.0, 2.0),
    frame_width: float = 3.0,
    dpi: float = 100,
) -> str:
    """Writes the ranked lists of several queries, one row each, to one PNG file.

    Args:
      query_images: Q images, each [H, W, 3] uint8 RGB or [H, W, 1] / [H, W] single channel
        (uint8 infrared, uint16 depth; zeros are holes, drawn black).
      gallery_images: for each query, its gallery images in rank order (closest first); at
        least min(k, available) are shown. Sizes and modalities may differ from the query's.
      gallery_is_match: for each query, a bool per ranked gallery image: True = same
        identity (framed MATCH_COLOR, green), False = other identity (MISMATCH_COLOR, red).
      path: output PNG file.
      k: gallery images shown per query.
      query_labels: text above each query image (default 'query').
      gallery_labels: text above each gallery image, per query (default: the rank 1..k).
      title: figure title.
      cmap: colormap of single-channel images (default: 'viridis' for uint16, else gray).
      panel_size: (width, height) in inches of one image panel; 1:2 suits person crops.
      frame_width: frame line width in points.
      dpi: PNG resolution.

    Returns:
      `path` as a string. The PNG is round((k + 1) * panel_size[0] * dpi) pixels wide and
      round((Q * panel_size[1] + (images.TITLE_HEIGHT if title else 0)) * dpi) high.
    """
    num_queries = len(query_images)
    if num_queries == 0:
        raise ValueError("plot_rank_lists: no query images given")
    if len(gallery_images) != num_queries or len(gallery_is_match) != num_queries:
        raise ValueError(
            f"plot_rank_lists: {num_queries} queries but {len(gallery_images)} gallery lists "
            f"and {len(gallery_is_match)} match lists; expected one of each per query"
        )
    if k < 1:
        raise ValueError(f"plot_rank_lists: k must be >= 1, got {k}")
    if query_labels is not None and len(query_labels) != num_queries:
        raise ValueError(
            f"plot_rank_lists: {len(query_labels)} query_labels for {num_queries} queries"
        )
    if gallery_labels is not None and len(gallery_labels) != num_queries:
        raise ValueError(
            f"plot_rank_lists: {len(gallery_labels)} gallery_labels lists for {num_queries} queries"
        )

    fig = new_figure(k + 1, num_queries, panel_size, title)
    axes = fig.subplots(num_queries, k + 1, squeeze=False)
    for row in range(num_queries):
        shown = min(k, len(gallery_images[row]))
        matches = np.asarray(gallery_is_match[row], bool).reshape(-1)
        if matches.shape[0] < shown:
            raise ValueError(
                f"plot_rank_lists: query {row} has {len(gallery_images[row])} gallery images "
                f"but {matches.shape[0]} match flags"
            )
        label = query_labels[row] if query_labels is not None else "query"
        show_image(axes[row, 0], to_display_rgb(query_images[row], cmap=cmap), label)
        for j in range(k):
            ax = axes[row, j + 1]
            if j >= shown:
                ax.set_axis_off()
                continue
            if gallery_labels is not None:
                text = gallery_labels[row][j]
            else:
                text = str(j + 1)
            show_image(
                ax,
                to_display_rgb(gallery_images[row][j], cmap=cmap),
                text,
                frame_color=MATCH_COLOR if matches[j] else MISMATCH_COLOR,
                frame_width=frame_width,
            )
    return save_png(fig, path, dpi)


def plot_rank_list(
    query_image,
    gallery_images: Sequence,
    gallery_is_match: Sequence[bool],
    path,
    *,
    k: int = 10,
    query_label: str | None = None,
    gallery_labels: Sequence[str] | None = None,
    title: str | None = None,
    **kwargs,
) -> str:
    """Writes one query's ranked list to a PNG file (a one-row `plot_rank_lists`).

    Args:
      query_image: [H, W, 3] uint8 RGB or [H, W, 1] / [H, W] uint8 / uint16 single channel.
      gallery_images: gallery images in rank order (closest first).
      gallery_is_match: [len(gallery_images)] bool, True where the identity matches.
      path: output PNG file.
      k, title, **kwargs: as `plot_rank_lists` (cmap, panel_size, frame_width, dpi).
      query_label: text above the query (default 'query').
      gallery_labels: text above each gallery image (default its rank).

    Returns:
      `path` as a string.
    """
    return plot_rank_lists(
        [query_image],
        [gallery_images],
        [gallery_is_match],
        path,
        k=k,
        query_labels=None if query_label is None else [query_label],
        gallery_labels=None if gallery_labels is None else [gallery_labels],
        title=title,
        **kwargs,
    )
