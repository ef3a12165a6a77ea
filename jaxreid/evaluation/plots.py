"""CMC curve plots (PNG). Matplotlib is imported only when a plot is made.

The figure is drawn on an Agg canvas of its own, so the caller's matplotlib backend
(e.g. inline plots in Colab) is left untouched.
"""

from __future__ import annotations

import os
from typing import Mapping

import numpy as np


def _curve(value) -> np.ndarray:
    if isinstance(value, Mapping):
        if "cmc" not in value:
            raise ValueError(f"plot_cmc: result has no 'cmc' curve (keys {sorted(value)})")
        value = value["cmc"]
    curve = np.asarray(value, np.float64).reshape(-1)
    if curve.size == 0:
        raise ValueError("plot_cmc: empty CMC curve")
    return curve


def plot_cmc(
    curves, path, *, title: str | None = None, max_rank: int | None = None, dpi: int = 120
) -> str:
    """Writes CMC curves to a PNG file.

    Args:
      curves: a result dict / [R] CMC array, or {label: result dict or CMC array}.
      path: output file (PNG).
      title: figure title.
      max_rank: ranks shown (default: the longest curve).

    Returns:
      `path` as a string.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if isinstance(curves, Mapping) and "cmc" not in curves:
        items = [(str(k), _curve(v)) for k, v in curves.items()]
    else:
        items = [(None, _curve(curves))]
    if not items:
        raise ValueError("plot_cmc: no curves given")
    n = max_rank or max(len(c) for _, c in items)
    fig = Figure(figsize=(5, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for label, curve in items:
        c = curve[:n]
        ax.plot(np.arange(1, len(c) + 1), 100.0 * c, marker="o", markersize=3, label=label)
    ax.set_xlabel("Rank")
    ax.set_ylabel("Matching rate (%)")
    ax.set_xlim(1, n)
    ax.set_ylim(0, 100)
    ax.grid(True, alpha=0.3)
    if title:
        ax.set_title(title)
    if any(label is not None for label, _ in items):
        ax.legend(loc="lower right")
    fig.tight_layout()
    path = os.fspath(path)
    fig.savefig(path, dpi=dpi, format="png")
    return path
