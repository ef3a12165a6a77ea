"""Hafner 2018 Figures 31, 33 and 35-37 (PNG) from the outputs of the paper grids.

  python -m jaxreid.visualization.paper_figures --workdir=/runs/hafner_biwi
  python -m jaxreid.visualization.paper_figures --workdir=/runs/hafner_pku --out=/tmp/figures

The work directory is that of configs/grids/hafner2018.py; whatever it holds is drawn:
  figure31.png  BIWI, table11.csv / table12.csv: grouped bars of the cross-modal mAP of every
                distillation network (transfer direction x FE x Step I loss), one bar per
                query/gallery pair, mean ± std over the folds (Figure 31).
  figure33.png  the same for RobotPKU from table13.csv / table14.csv (Figure 33).
  figure35.png, figure36.png, figure37.png
                mAP against the embedding size from the curves figure35.csv .. figure37.csv:
                one panel per pair (Q:RGB G:D, Q:D G:RGB, Q:D G:D as in the thesis), the
                sizes on a log axis and the classification layer 'C' as its own point.
The published mAP stands beside each bar as a black tick where the thesis prints it
(jaxreid.evaluation.published), so a reproduction is judged at a glance.
Matplotlib draws on an Agg canvas of its own (the caller's backend is left alone).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence

BAR_FIGURES = {  # figure: (table of the softmax Step I, table of the triplet Step I)
    "figure31": ("table11", "table12"),
    "figure33": ("table13", "table14"),
}
CURVE_FIGURES = ("figure35", "figure36", "figure37")
CROSS_MODAL = ("Q:RGB, G:D", "Q:D, G:RGB", "Q:RGB, G:I", "Q:I, G:RGB")
PAIR_KEYS = {  # table label -> result key (jaxreid.evaluation.tables._pair_label)
    "Q:RGB, G:D": "Q:rgb G:depth",
    "Q:D, G:RGB": "Q:depth G:rgb",
    "Q:RGB, G:I": "Q:rgb G:infrared",
    "Q:I, G:RGB": "Q:infrared G:rgb",
}


def _number(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def read_table_csv(path: str) -> list[dict[str, str]]:
    """The rows of a grid table's CSV (experiments.write_summary) as dicts."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def bar_data(workdir: str, figure: str) -> dict[str, dict[str, tuple[float, float]]]:
    """{model label: {pair label: (mAP %, std %)}} of the cross-modal pairs of the two
    distillation tables of `figure`, in table order; tables not in `workdir` are skipped.

    Raises:
      FileNotFoundError: neither table's CSV is in `workdir`.
    """
    tables = BAR_FIGURES[figure]
    data: dict[str, dict[str, tuple[float, float]]] = {}
    found = False
    for table, loss in zip(tables, ("softmax", "triplet")):
        path = os.path.join(workdir, f"{table}.csv")
        if not os.path.exists(path):
            continue
        found = True
        for row in read_table_csv(path):
            pair = row["Inference modality"]
            if pair not in CROSS_MODAL:
                continue
            label = f"{row['Transfer direction']}\n{row['FE']} {loss}"
            data.setdefault(label, {})[pair] = (_number(row["mAP"]), _number(row.get("mAP std")))
    if not found:
        raise FileNotFoundError(
            f"{figure}: neither {tables[0]}.csv nor {tables[1]}.csv in {workdir!r}; run "
            f"configs/grids/hafner2018.py:{tables[0]} (and :{tables[1]}) there first."
        )
    return data


def _published_bars(figure: str) -> dict[str, dict[str, float]]:
    from jaxreid.evaluation import published

    out: dict[str, dict[str, float]] = {}
    for table, loss in zip(BAR_FIGURES[figure], ("softmax", "triplet")):
        for (direction, fe), pairs in published.HAFNER2018[table].items():
            for label, key in PAIR_KEYS.items():
                if key in pairs and pairs[key][3] is not None:
                    out.setdefault(f"{direction}\n{fe} {loss}", {})[label] = pairs[key][3]
    return out


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def plot_bars(workdir: str, figure: str, path: str, dpi: int = 120) -> dict:
    """Figure 31 / 33: grouped bars of the cross-modal mAP; returns the plotted `bar_data`."""
    data = bar_data(workdir, figure)
    reference = _published_bars(figure)
    pairs = [p for p in CROSS_MODAL if any(p in v for v in data.values())]
    fig = _figure(max(6.0, 1.3 * len(data)), 4.0)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(len(pairs), 1)
    for k, pair in enumerate(pairs):
        xs = [i + (k - (len(pairs) - 1) / 2) * width for i in range(len(data))]
        means = [v.get(pair, (math.nan, math.nan))[0] for v in data.values()]
        stds = [v.get(pair, (math.nan, math.nan))[1] for v in data.values()]
        stds = [0.0 if math.isnan(s) else s for s in stds]
        ax.bar(xs, means, width, yerr=stds, capsize=3, label=pair)
        ticks = [reference.get(label, {}).get(pair, math.nan) for label in data]
        ax.scatter(
            xs,
            ticks,
            marker="_",
            s=200,
            color="black",
            zorder=3,
            label="published" if k == 0 else None,
        )
    ax.set_xticks(range(len(data)))
    ax.set_xticklabels(list(data), fontsize=8)
    ax.set_ylabel("mAP (%)")
    ax.set_ylim(bottom=0)
    number = figure.replace("figure", "")
    ax.set_title(f"Hafner 2018 Figure {number}: cross-modal mAP, distillation", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    return data


def curve_data(path: str, metric: str = "mAP") -> dict[str, dict[object, tuple[float, float]]]:
    """{pair: {embedding size (int) or 'C': (mean %, std %)}} of a grid curve CSV."""
    out: dict[str, dict[object, tuple[float, float]]] = {}
    for row in read_table_csv(path):
        if row["metric"] != metric:
            continue
        x = row["embedding"]
        size = int(x) if x.isdigit() else x
        out.setdefault(row["pair"], {})[size] = (
            100 * _number(row["mean"]),
            100 * _number(row["std"]),
        )
    return out


def plot_curve(csv_path: str, path: str, title: str = "", dpi: int = 120) -> dict:
    """Figures 35-37: mAP against the embedding size, one panel per pair; returns the data."""
    data = curve_data(csv_path)
    if not data:
        raise ValueError(f"{csv_path}: no mAP rows (is the grid finished?).")
    fig = _figure(4.0 * len(data), 3.5)
    for k, (pair, points) in enumerate(data.items()):
        ax = fig.add_subplot(1, len(data), k + 1)
        sizes = sorted(s for s in points if isinstance(s, int))
        if sizes:
            ax.errorbar(
                sizes,
                [points[s][0] for s in sizes],
                yerr=[points[s][1] for s in sizes],
                marker="o",
                capsize=3,
                label="penultimate layer",
            )
            ax.set_xscale("log", base=2)
        for other in (s for s in points if not isinstance(s, int)):
            x = 2 * max(sizes) if sizes else 1
            ax.errorbar(
                [x],
                [points[other][0]],
                yerr=[points[other][1]],
                marker="s",
                color="C3",
                capsize=3,
                label=f"classification layer ({other})",
            )
        ax.set_xlabel("embedding size")
        ax.set_ylabel("mAP (%)")
        ax.set_title(pair, fontsize=9)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    return data


def draw_all(workdir: str, out: str | None = None) -> list[str]:
    """Every figure whose grid output is in `workdir`; returns the PNG paths written."""
    out = out or workdir
    os.makedirs(out, exist_ok=True)
    written = []
    for figure, tables in BAR_FIGURES.items():
        if any(os.path.exists(os.path.join(workdir, f"{t}.csv")) for t in tables):
            written.append(os.path.join(out, f"{figure}.png"))
            plot_bars(workdir, figure, written[-1])
    for figure in CURVE_FIGURES:
        csv_path = os.path.join(workdir, f"{figure}.csv")
        if os.path.exists(csv_path):
            written.append(os.path.join(out, f"{figure}.png"))
            plot_curve(csv_path, written[-1], title=f"Hafner 2018 Figure {figure[6:]}")
    return written


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", required=True, help="Work directory of the paper grids.")
    parser.add_argument("--out", default=None, help="Folder of the PNGs (default: workdir).")
    args = parser.parse_args(argv)
    written = draw_all(args.workdir, args.out)
    if not written:
        raise SystemExit(
            f"No table11-14.csv or figure35-37.csv in {args.workdir!r}: run "
            "configs/grids/hafner2018.py there first."
        )
    print("\n".join(written))


if __name__ == "__main__":
    main()


__all__ = ["bar_data", "curve_data", "draw_all", "plot_bars", "plot_curve", "read_table_csv"]
