"""Result tables in the papers' layouts, as Markdown or CSV text.

  modality_pairs_table  Hafner 2018, Tables 5-16: rows Q:RGB, G:D / Q:D, G:RGB /
                        Q:RGB, G:RGB / Q:D, G:D; columns R1, R5, R10, mAP; "mean ± std"
                        when the results come from `aggregate_folds`.
  sysu_table            Tekeli 2019, Table 3: all-/indoor-search x single-/multi-shot, each
                        with r1, r10, r20, mAP.
  metric_grid_table     Tekeli 2019, Table 2: one column group per ranking metric.
  format_table          any rows x (groups x metrics); Tekeli 2019, Table 4 is
                        `format_table(results, metrics=TEKELI_METRICS)`.
Values are percentages (x 100) with `digits` decimals; missing cells are '-'.
Every layout takes `published`: the paper's figures in the same nesting as the results
(`jaxreid.evaluation.published.figures`); each cell then also shows the published figure and
the difference (reproduced minus published), "22.10 ± 1.90 [22.29, Δ -0.19]" in Markdown, and
CSV gains "<column> published" and "<column> diff" columns.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping, Sequence

THESIS_METRICS = ("rank1", "rank5", "rank10", "mAP")  # Hafner 2018, Tables 5-16
TEKELI_METRICS = ("rank1", "rank10", "rank20", "mAP")  # Tekeli 2019, Tables 2-4
METRIC_LABELS = {
    "rank1": "R1",
    "rank5": "R5",
    "rank10": "R10",
    "rank20": "R20",
    "mAP": "mAP",
    "mINP": "mINP",
}
TEKELI_METRIC_LABELS = {
    "rank1": "r1",
    "rank5": "r5",
    "rank10": "r10",
    "rank20": "r20",
    "mAP": "mAP",
    "mINP": "mINP",
}
MODALITY_LABELS = {"rgb": "RGB", "depth": "D", "infrared": "I", "thermal": "T"}
SYSU_SETTING_LABELS = {  # Tekeli 2019, Table 3 column groups
    "all_single": "All-search single-shot",
    "all_multi": "All-search multi-shot",
    "indoor_single": "Indoor-search single-shot",
    "indoor_multi": "Indoor-search multi-shot",
}
DISTANCE_LABELS = {
    "l1": "L1",
    "euclidean": "L2",
    "sqeuclidean": "L2-squared",
    "linf": "L∞",
    "cosine": "Cosine",
}
FORMATS = ("markdown", "csv")
_PAIR_KEY = re.compile(r"^Q:(\S+) G:(\S+)$")


# A result whose features collapsed to one point (evaluation.is_collapsed): its metrics are
# tie-breaking artefacts, printed as the thesis prints failed trainings.
NOT_AVAILABLE = "n/a"


def _number(x, digits: int, percent: bool) -> str:
    if isinstance(x, str):  # NOT_AVAILABLE
        return x
    if x is None or not math.isfinite(float(x)):
        return "-"
    return f"{float(x) * (100.0 if percent else 1.0):.{digits}f}"


def _difference(value, reference, digits: int, percent: bool) -> str:
    """Reproduced minus published, signed ('+1.23', '-0.40'); '-' when either is missing."""
    if isinstance(value, str) or value is None or reference is None:
        return "-"
    if not math.isfinite(float(value)):
        return "-"
    return f"{(float(value) - float(reference)) * (100.0 if percent else 1.0):+.{digits}f}"


def _is_result(x) -> bool:
    return isinstance(x, Mapping) and any(k in x for k in ("mAP", "rank1", "cmc"))


def _value(result, metric):
    if result is None:
        return None, None
    if result.get("collapsed"):
        return NOT_AVAILABLE, None
    v = result.get(metric)
    if v is None and metric.startswith("rank") and "cmc" in result:
        k = int(metric[4:])
        cmc = result["cmc"]
        v = float(cmc[k - 1]) if k <= len(cmc) else None
    return v, result.get(f"{metric}_std")


def format_table(
    results: Mapping,
    *,
    metrics: Sequence[str] = THESIS_METRICS,
    groups: Sequence | None = None,
    group_labels: Mapping | None = None,
    metric_labels: Mapping | None = None,
    row_header: str | Sequence[str] = "Method",
    fmt: str = "markdown",
    digits: int = 2,
    percent: bool = True,
    published: Mapping | None = None,
) -> str:
    """Table of results: rows x (groups x metrics).

    Args:
      results: {row label: result} without groups, or {row label: {group: result}} with
        groups. A row label may be a tuple (one table column per element, e.g. network,
        loss, inference modality). A result is a dict with metric keys ('rank1', 'mAP', ...)
        or a 'cmc' curve, and optionally '<metric>_std' (then cells read "mean ± std").
      metrics: metric keys per group.
      groups: column groups (keys of the inner mappings), or None.
      group_labels, metric_labels: display names.
      row_header: header(s) of the row-label column(s).
      fmt: 'markdown' or 'csv' (CSV puts std in its own column).
      digits: decimals; percent: multiply by 100.
      published: the paper's figures, nested as `results` ({row label: {metric: value}} or
        {row label: {group: {metric: value}}}); None = no comparison columns. A row or cell
        the paper does not print shows no comparison.

    Returns:
      The table as text.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt={fmt!r}; expected one of {FORMATS}")
    metric_labels = {**METRIC_LABELS, **(metric_labels or {})}
    group_labels = dict(group_labels or {})
    rows = list(results.items())
    width = max((len(k) if isinstance(k, tuple) else 1) for k, _ in rows) if rows else 1
    headers = [row_header] if isinstance(row_header, str) else list(row_header)
    headers = (headers + [""] * width)[:width]
    columns = (
        [(None, m) for m in metrics]
        if groups is None
        else [(g, m) for g in groups for m in metrics]
    )

    def lookup(row_value, group):
        return row_value if group is None else (row_value or {}).get(group)

    with_std = any(_value(lookup(v, g), m)[1] is not None for _, v in rows for g, m in columns)
    published = published or {}
    with_published = bool(published)

    def reference(key, g, m):
        cell = lookup(published.get(key), g)
        return None if cell is None else cell.get(m)

    def col_title(g, m):
        label = metric_labels.get(m, m)
        return label if g is None else f"{group_labels.get(g, g)} {label}"

    body = []
    for key, value in rows:
        labels = list(key) if isinstance(key, tuple) else [str(key)]
        labels = (labels + [""] * width)[:width]
        cells = []
        for g, m in columns:
            v, s = _value(lookup(value, g), m)
            cells.append((v, s, reference(key, g, m)))
        body.append((labels, cells))

    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        head = list(headers)
        for g, m in columns:
            head.append(col_title(g, m))
            if with_std:
                head.append(col_title(g, m) + " std")
            if with_published:
                head += [col_title(g, m) + " published", col_title(g, m) + " diff"]
        writer.writerow(head)
        for labels, cells in body:
            line = list(labels)
            for v, s, p in cells:
                line.append(_number(v, digits, percent))
                if with_std:
                    line.append(_number(s, digits, percent))
                if with_published:
                    line += [_number(p, digits, percent), _difference(v, p, digits, percent)]
            writer.writerow(line)
        return out.getvalue()

    def cell_text(v, s, p):
        text = _number(v, digits, percent)
        if s is not None and text != "-":
            text += f" ± {_number(s, digits, percent)}"
        if p is not None:
            diff = _difference(v, p, digits, percent)
            text += f" [{_number(p, digits, percent)}" + (f", Δ {diff}]" if diff != "-" else "]")
        return text

    head = headers + [col_title(g, m) for g, m in columns]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] * width + ["---:"] * len(columns)) + "|",
    ]
    for labels, cells in body:
        lines.append("| " + " | ".join(labels + [cell_text(*cell) for cell in cells]) + " |")
    return "\n".join(lines) + "\n"


def _pair_label(key: str, result: Mapping, labels: Mapping[str, str]) -> str:
    qm, gm = result.get("query_modality"), result.get("gallery_modality")
    if qm is None or gm is None:
        m = _PAIR_KEY.match(key)
        if m is None:
            return key
        qm, gm = m.groups()
    return f"Q:{labels.get(qm, qm)}, G:{labels.get(gm, gm)}"


def modality_pairs_table(
    results: Mapping,
    *,
    metrics: Sequence[str] = THESIS_METRICS,
    row_header: str | Sequence[str] = "Inference modality",
    modality_labels: Mapping[str, str] | None = None,
    fmt: str = "markdown",
    digits: int = 2,
    published: Mapping | None = None,
) -> str:
    """Hafner 2018 Tables 5-16 layout: one row per query/gallery modality pair.

    Args:
      results: {pair name: result} from `evaluate_modality_pairs` / `aggregate_folds`, or
        {model label (str or tuple): {pair name: result}} for several models (the model
        label columns come first, as Architecture / Loss / Feature extractor in the thesis).
      row_header: header(s) of the label columns (the last one is the modality pair).
      modality_labels: display names (default: rgb -> RGB, depth -> D, infrared -> I).
      published: the paper's figures nested as `results` (see `format_table`).
    """
    labels = {**MODALITY_LABELS, **(modality_labels or {})}

    def flatten(nested, results_side):
        flat = {}
        for key, value in nested.items():
            if not results_side or not _is_result(value):
                prefix = key if isinstance(key, tuple) else (key,)
                for pair, res in value.items():
                    flat[prefix + (_pair_label(pair, res if results_side else {}, labels),)] = res
            else:
                flat[_pair_label(key, value, labels)] = value
        return flat

    flat = flatten(results, True)
    if published and all(_is_result(v) for v in results.values()):
        published = {_pair_label(k, {}, labels): v for k, v in published.items()}
    elif published:
        published = flatten(published, False)
    if isinstance(row_header, str) and any(isinstance(k, tuple) for k in flat):
        width = max(len(k) for k in flat if isinstance(k, tuple))
        row_header = ["Model"] + [""] * (width - 2) + [row_header]
    return format_table(
        flat, metrics=metrics, row_header=row_header, fmt=fmt, digits=digits, published=published
    )


def sysu_table(
    results: Mapping,
    *,
    metrics: Sequence[str] = TEKELI_METRICS,
    settings: Sequence[str] = tuple(SYSU_SETTING_LABELS),
    row_header: str | Sequence[str] = "Method",
    fmt: str = "markdown",
    digits: int = 2,
) -> str:
    """Tekeli 2019 Table 3 layout: all-/indoor-search x single-/multi-shot.

    Args:
      results: {method: {setting: result}} (settings as returned by `sysu_mm01_settings`),
        or a single {setting: result} (one row labelled 'Ours').
    """
    if all(k in SYSU_SETTING_LABELS for k in results) and all(
        _is_result(v) for v in results.values()
    ):
        results = {"Ours": results}
    return format_table(
        results,
        metrics=metrics,
        groups=settings,
        group_labels=SYSU_SETTING_LABELS,
        metric_labels=TEKELI_METRIC_LABELS,
        row_header=row_header,
        fmt=fmt,
        digits=digits,
    )


def metric_grid_table(
    results: Mapping,
    *,
    metrics: Sequence[str] = TEKELI_METRICS,
    distance_metrics: Sequence[str] | None = None,
    row_header: str | Sequence[str] = ("Center update", "Training metric"),
    fmt: str = "markdown",
    digits: int = 2,
) -> str:
    """Tekeli 2019 Table 2 layout: rows = training setups, column groups = ranking metrics.

    Args:
      results: {row label (str or tuple): {ranking metric name: result}}.
      distance_metrics: column groups in order (default: in order of first appearance).
    """
    if distance_metrics is None:
        distance_metrics = []
        for value in results.values():
            for name in value:
                if name not in distance_metrics:
                    distance_metrics.append(name)
    return format_table(
        results,
        metrics=metrics,
        groups=distance_metrics,
        group_labels=DISTANCE_LABELS,
        metric_labels=TEKELI_METRIC_LABELS,
        row_header=row_header,
        fmt=fmt,
        digits=digits,
    )
