"""Image display helpers shared by the figures: any modality -> RGB, figure set-up.

Matplotlib is imported only inside functions, and figures are drawn on their own Agg
canvas, so importing this module is cheap and the caller's backend is left untouched.
"""

from __future__ import annotations

import os

import numpy as np

# Height (inches) added to a figure for its title.
TITLE_HEIGHT = 0.4


def default_cmap(image) -> str:
    """Colormap of a 1-channel image: 'viridis' for uint16 (depth in mm), 'gray' otherwise
    (infrared, thermal, 8-bit depth encodings, gradient maps)."""
    return "viridis" if np.asarray(image).dtype == np.uint16 else "gray"


def to_display_rgb(image, *, cmap: str | None = None) -> np.ndarray:
    """Converts an image of any modality to an RGB array for display.

    Args:
      image: [H, W, 3] RGB (uint8, or float in [0, 1]), or [H, W, 1] / [H, W] single
        channel of any numeric dtype (depth uint16, infrared uint8, a float map).
      cmap: matplotlib colormap for single-channel images (default `default_cmap`).

    Returns:
      [H, W, 3] float32 in [0, 1]. A single-channel image is normalised per image: its
      smallest non-zero value maps to the bottom of the colormap and its largest to the
      top; zeros (depth holes: no measurement) are black.
    """
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 3 and img.shape[-1] == 3:
        if img.dtype == np.uint8:
            return img.astype(np.float32) / 255.0
        if np.issubdtype(img.dtype, np.integer):
            return (img.astype(np.float32) / np.iinfo(img.dtype).max).clip(0.0, 1.0)
        return np.clip(img.astype(np.float32), 0.0, 1.0)
    if img.ndim != 2:
        raise ValueError(f"expected an image [H, W, 3], [H, W, 1] or [H, W], got shape {img.shape}")
    if not (np.issubdtype(img.dtype, np.integer) or np.issubdtype(img.dtype, np.floating)):
        raise ValueError(f"expected a numeric image, got dtype {img.dtype}")
    from matplotlib import colormaps

    values = img.astype(np.float64)
    valid = np.isfinite(values) & (values != 0)
    out = np.zeros(img.shape + (3,), np.float32)
    if valid.any():
        lo, hi = values[valid].min(), values[valid].max()
        scaled = (values[valid] - lo) / (hi - lo) if hi > lo else np.ones(valid.sum())
        colours = colormaps[cmap or default_cmap(image)](scaled)
        out[valid] = colours[:, :3]
    return out


def new_figure(columns: int, rows: int, panel_size, title: str | None):
    """A Figure of `columns x rows` panels of `panel_size` (width, height) inches each, plus
    TITLE_HEIGHT when titled, on its own Agg canvas; constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width, height = (float(v) for v in panel_size)
    fig = Figure(
        figsize=(columns * width, rows * height + (TITLE_HEIGHT if title else 0.0)),
        layout="constrained",
    )
    FigureCanvasAgg(fig)
    if title:
        fig.suptitle(title)
    return fig


def show_image(
    ax,
    rgb: np.ndarray,
    label: str | None,
    frame_color=None,
    frame_width: float = 3.0,
    fontsize: float = 7.0,
) -> None:
    """Draws an RGB image in `ax` without ticks; a coloured frame when `frame_color`."""
    ax.imshow(rgb, interpolation="antialiased")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        if frame_color is None:
            spine.set_visible(False)
        else:
            spine.set_edgecolor(frame_color)
            spine.set_linewidth(frame_width)
    if label:
        ax.set_title(label, fontsize=fontsize)


def save_png(fig, path, dpi: float) -> str:
    """Writes `fig` to `path` as PNG (figure size x dpi pixels, no tight cropping)."""
    path = os.fspath(path)
    fig.savefig(path, dpi=dpi, format="png")
    return path
