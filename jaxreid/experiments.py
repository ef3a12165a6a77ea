"""Experiment runner: a grid of configs, resumable, summarised as the thesis's tables.

  python -m jaxreid.experiments --grid=configs/grids/synthetic.py:table11 --workdir=/tmp/t11
  python -m jaxreid.experiments --grid=configs/grids/hafner2018.py:table11,pretrained=/data/tv \\
      --workdir=/runs/biwi --override=data.manual_dir=/data/BIWI

A grid file defines `get_grid(arg: str) -> Grid` (the part after ':' in --grid is `arg`). Each
`Experiment` runs in <workdir>/<name> with the method its config.method names
(`jaxreid.methods`: supervised, distillation or classical). An experiment whose
results.json exists is skipped, so re-running the command after an interruption continues
the grid (and a half-finished run resumes from its checkpoints). Afterwards the runner writes,
from every finished experiment:

  <table>.md / <table>.csv   one `Table` each: rows = label values, columns R1/R5/R10/mAP per
                             query/gallery modality pair, "mean ± std" over folds
                             (evaluation.aggregate_folds; Hafner 2018 Tables 11-16 layout);
                             the .md starts with the rows' protocol tag and checkpoint rule;
                             a Table with `published` figures (the paper grids) shows each
                             published cell and reproduced − published beside the result
  <table>_significance.md   each row's mAP against the best row of each pair column,
                             Welch's t-test over the folds (jaxreid.significance)
  <curve>.csv                one `Curve` each: a metric against a label such as the embedding
                             size, per pair, mean and std over folds (Figures 35-37 as data)
  summary.md                 every table and curve, the runs with their status and times

Folds: an experiment's labels name its fold (`fold_key`, default 'fold'); experiments whose
other table labels agree are the folds of one table row. On the synthetic dataset, whose
train/val/test identities are fixed, a fold is a different generator seed
(config.data.synthetic.seed) and training seed (config.seed): the spread over folds is then
the spread over independently drawn datasets and initialisations, not over splits of one
dataset as in the thesis's 3-fold cross-validation of BIWI and RobotPKU (Hafner 2018
§4.3.1).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import os
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections
from absl import app, flags, logging

from jaxreid import config as config_lib
from jaxreid import methods
from jaxreid import workdir as workdir_lib


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One run of a grid.

    Attributes:
      name: its subdirectory of the grid's workdir ('/' allowed, e.g. 'r18/depth_to_rgb/fold0').
      config: the full experiment config.
      labels: what distinguishes it in tables, e.g. {'architecture': 'R18', 'direction':
        'Depth to RGB', 'fold': 0}. A config.distill.teacher_workdir that is a relative path
        is taken relative to the grid's workdir (to share one Step I between experiments:
        'other_experiment/step1' must then come earlier in the grid).
    """

    name: str
    config: ml_collections.ConfigDict
    labels: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Table:
    """A results table (Hafner 2018 Tables 11-16 layout).

    Attributes:
      name: file stem of <workdir>/<name>.md and .csv.
      title: heading in summary.md.
      rows: label keys whose values label a row (one table column each), e.g.
        ('direction', 'architecture').
      headers: column headers of those labels (default: the keys).
      where: only experiments whose labels have these values.
      pairs: query/gallery pair keys to show ('Q:rgb G:depth', ...), or the test protocol's
        other result keys ('all_single', 'visible_to_thermal'); () = all.
      fold_key: the label that tells folds apart.
      metrics: result keys shown per pair (Hafner 2018: R1, R5, R10, mAP; Tekeli 2019 and
        Hafner 2018 Table 19: r1, r10, r20, mAP).
      published: the paper's figures, {row label tuple (as strings): {pair: {metric: value}}}
        (`jaxreid.evaluation.published.figures`); each cell then shows the published figure
        and the difference. {} = no comparison.
    """

    name: str
    title: str
    rows: tuple[str, ...]
    headers: tuple[str, ...] = ()
    where: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    pairs: tuple[str, ...] = ()
    fold_key: str = "fold"
    metrics: tuple[str, ...] = ("rank1", "rank5", "rank10", "mAP")
    published: Mapping[tuple, Mapping] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Curve:
    """Figure data: metrics against the label `x`, one series per (`series` labels, pair).

    Attributes:
      name: file stem of <workdir>/<name>.csv.
      title: heading in summary.md.
      x: the label on the horizontal axis, e.g. 'embedding' (sizes, or 'C' for the
        classification layer; numbers are sorted first, then the rest).
      series: further label keys that split the experiments into curves.
      where, pairs, fold_key: as in `Table`.
      metrics: result keys to report.
    """

    name: str
    title: str
    x: str
    series: tuple[str, ...] = ()
    where: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    pairs: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ("mAP", "rank1")
    fold_key: str = "fold"


@dataclasses.dataclass(frozen=True)
class Grid:
    name: str
    description: str
    experiments: Sequence[Experiment]
    tables: Sequence[Table] = ()
    curves: Sequence[Curve] = ()

    def __post_init__(self):
        names = [e.name for e in self.experiments]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"Grid {self.name!r} has duplicate experiment names {duplicates}.")
        # Tables and curves write <name>.csv side by side: one name each.
        outputs = [t.name for t in self.tables] + [c.name for c in self.curves]
        clashes = sorted({n for n in outputs if outputs.count(n) > 1})
        if clashes:
            raise ValueError(
                f"Grid {self.name!r} names several tables / curves {clashes}: each writes "
                "<name>.csv, so one would overwrite the other."
            )


# --- loading and running ---------------------------------------------------------------------


def load_grid(spec: str) -> Grid:
    """`path/to/grid.py` or `path/to/grid.py:arg` -> the file's get_grid(arg).

    A relative path is found as config files are (`jaxreid.config.load_config`): in the
    current directory, else in the repository root.

    Raises:
      ConfigError: no such file (the message lists configs/), or no get_grid in it.
    """
    path, arg = config_lib.files.split_spec(spec)
    module = config_lib.files.import_file(path, "grid file", "configs/grids/*.py")
    if not hasattr(module, "get_grid"):
        raise config_lib.ConfigError(f"Grid file {path!r} defines no get_grid(arg).")
    grid = module.get_grid(arg)
    if not isinstance(grid, Grid):
        raise TypeError(f"{path}: get_grid({arg!r}) returned {type(grid).__name__}, not a Grid.")
    return grid


def run_grid(
    grid: Grid,
    workdir: str,
    *,
    only: Sequence[str] = (),
    overrides: Sequence[str] = (),
    keep_going: bool = True,
) -> dict[str, str]:
    """Runs every unfinished experiment of `grid` in order, then writes the summary.

    Args:
      only: run only experiments whose name contains one of these strings (others are
        still summarised if finished).
      overrides: 'key=value' applied to every config (e.g. 'data.data_dir=/tmp/tfds').
      keep_going: after a failed experiment, go on with the others (the failure is logged,
        recorded in summary.md, and its dependants fail too); else re-raise.

    Returns:
      {experiment name: 'skipped' (finished before) | 'done' | 'failed: <error>' |
      'not selected'}.
    """
    import jax  # Imported here so that loading a grid file does not start JAX.

    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    status = {}
    for experiment in grid.experiments:
        run_dir = os.path.join(workdir, experiment.name)
        if workdir_lib.is_finished(run_dir):
            status[experiment.name] = "skipped"
            continue
        if only and not any(s in experiment.name for s in only):
            status[experiment.name] = "not selected"
            continue
        config = copy.deepcopy(experiment.config)
        config_lib.apply_overrides(config, overrides)
        teacher = config.distill.teacher_workdir
        if teacher and not os.path.isabs(teacher):
            config.distill.teacher_workdir = os.path.join(workdir, teacher)
        logging.info("Experiment %s: starting in %s.", experiment.name, run_dir)
        tick = time.time()
        try:
            methods.train_and_evaluate(config, run_dir)
        except Exception as e:  # pylint: disable=broad-except
            if not keep_going:
                raise
            logging.error("Experiment %s failed:\n%s", experiment.name, traceback.format_exc())
            status[experiment.name] = f"failed: {type(e).__name__}: {e}"
            continue
        finally:
            jax.clear_caches()  # Every experiment compiles its own functions.
        seconds = time.time() - tick
        workdir_lib.write_json_atomically(
            os.path.join(run_dir, "runner.json"),
            {"seconds": seconds, "labels": dict(experiment.labels)},
        )
        logging.info("Experiment %s: done in %.0f s.", experiment.name, seconds)
        status[experiment.name] = "done"
    write_summary(grid, workdir, status)
    return status


# --- tables ----------------------------------------------------------------------------------


def load_results(grid: Grid, workdir: str) -> dict[str, dict]:
    """{experiment name: results.json} for the finished experiments of `grid`."""
    out = {}
    for experiment in grid.experiments:
        results = workdir_lib.read_results(os.path.join(workdir, experiment.name))
        if results is not None:
            out[experiment.name] = results
    return out


def _matches(labels: Mapping, where: Mapping) -> bool:
    return all(labels.get(k) == v for k, v in where.items())


def _keyed_experiments(grid: Grid, keys: Sequence[str], where: Mapping):
    """(row key, experiment) for the experiments matching `where`, in grid order."""
    for experiment in grid.experiments:
        if not _matches(experiment.labels, where):
            continue
        missing = [k for k in keys if k not in experiment.labels]
        if missing:
            raise ValueError(f"Experiment {experiment.name!r} has no label(s) {missing}.")
        yield tuple(experiment.labels[k] for k in keys), experiment


def _groups(
    grid: Grid, results: Mapping[str, dict], keys: Sequence[str], where: Mapping, fold_key: str
) -> dict[tuple, dict]:
    """{row key: {'folds': [test results], 'expected': number of experiments}} in grid order."""
    groups: dict[tuple, dict] = {}
    for key, experiment in _keyed_experiments(grid, keys, where):
        group = groups.setdefault(key, {"folds": [], "expected": 0, "fold_ids": []})
        group["expected"] += 1
        if experiment.name in results:
            group["folds"].append(results[experiment.name]["test"])
            group["fold_ids"].append(experiment.labels.get(fold_key))
    return groups


def _select_pairs(test: Mapping, pairs: Sequence[str]) -> dict:
    if not pairs:
        return dict(test)
    missing = [p for p in pairs if p not in test]
    if missing:
        raise ValueError(f"Pairs {missing} not among the results' pairs {sorted(test)}.")
    return {p: test[p] for p in pairs}


def table_results(grid: Grid, table: Table, results: Mapping[str, dict]) -> dict[tuple, dict]:
    """{row label tuple: {pair: aggregate over folds}} for the rows with a finished fold."""
    from jaxreid import evaluation

    rows = {}
    for key, group in _groups(grid, results, table.rows, table.where, table.fold_key).items():
        if group["folds"]:
            folds = [_select_pairs(t, table.pairs) for t in group["folds"]]
            aggregate = evaluation.aggregate_folds(folds)
            if len(folds) == 1:  # No spread to report: print plain numbers, not "± 0.00".
                aggregate = {
                    pair: {k: v for k, v in agg.items() if not k.endswith("_std")}
                    for pair, agg in aggregate.items()
                }
            rows[tuple(str(k) for k in key)] = aggregate
    return rows


def render_table(grid: Grid, table: Table, results: Mapping[str, dict], fmt: str) -> str:
    from jaxreid import evaluation

    rows = table_results(grid, table, results)
    if not rows:
        return "(no finished experiments)\n"
    headers = list(table.headers or table.rows) + ["Inference modality"]
    published = {k: v for k, v in table.published.items() if k in rows}
    return evaluation.modality_pairs_table(
        rows, row_header=headers, fmt=fmt, metrics=table.metrics, published=published
    )


def protocol_notes(grid: Grid, table: Table) -> str:
    """The protocol tag and checkpoint rule of a table's rows, so that every results table
    says how it was measured: one line when every row shares them, else one line per row."""
    from jaxreid.evaluation import experiment as evaluation

    tags: dict[str, set[str]] = {}
    for key, experiment in _keyed_experiments(grid, table.rows, table.where):
        config = experiment.config
        tag = f"{evaluation.protocol_tag(config)}; {evaluation.checkpoint_rule(config)}"
        tags.setdefault(", ".join(map(str, key)), set()).add(tag)
    if not tags:
        return ""
    distinct = set().union(*tags.values())
    if len(distinct) == 1:
        return f"Protocol: {distinct.pop()}.\n"
    lines = [f"- {row}: {' / '.join(sorted(t))}" for row, t in tags.items()]
    return "Protocol per row:\n\n" + "\n".join(lines) + "\n"


def significance_table(grid: Grid, table: Table, results: Mapping[str, dict]) -> str:
    """mAP of every row against the best row of each pair column, Welch's t-test over the
    folds (`jaxreid.significance.markdown`); '' when fewer than two rows have 2+ folds."""
    from jaxreid import significance

    rows = {}
    for key, aggregate in table_results(grid, table, results).items():
        folds = {pair: agg.get("folds", {}).get("mAP", []) for pair, agg in aggregate.items()}
        if all(len(v) >= 2 for v in folds.values()):
            rows[", ".join(key)] = folds
    return significance.markdown(rows) if len(rows) >= 2 else ""


def _x_order(value):
    return (0, float(value), "") if isinstance(value, (int, float)) else (1, 0.0, str(value))


def curve_rows(grid: Grid, curve: Curve, results: Mapping[str, dict]) -> list[dict]:
    """One dict per (series, pair, x, metric): mean, std and the per-fold values."""
    from jaxreid import evaluation

    keys = (*curve.series, curve.x)
    groups = _groups(grid, results, keys, curve.where, curve.fold_key)
    rows = []
    for key in sorted(groups, key=lambda k: (tuple(map(str, k[:-1])), _x_order(k[-1]))):
        group = groups[key]
        if not group["folds"]:
            continue
        aggregate = evaluation.aggregate_folds(
            [_select_pairs(t, curve.pairs) for t in group["folds"]]
        )
        for pair, agg in aggregate.items():
            for metric in curve.metrics:
                if metric not in agg:
                    continue
                rows.append(
                    {
                        **{k: v for k, v in zip(curve.series, key[:-1])},
                        "pair": pair,
                        curve.x: key[-1],
                        "metric": metric,
                        "mean": agg[metric],
                        "std": agg[f"{metric}_std"],
                        "folds": len(group["folds"]),
                    }
                )
    return rows


def _curve_csv(curve: Curve, rows: list[dict]) -> str:
    import csv
    import io

    out = io.StringIO()
    columns = [*curve.series, "pair", curve.x, "metric", "mean", "std", "folds"]
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})
    return out.getvalue()


def _curve_markdown(curve: Curve, rows: list[dict]) -> str:
    """Pivot: one line per (series, pair, metric), one column per x value ('mean ± std' %)."""
    if not rows:
        return "(no finished experiments)\n"
    xs = sorted({r[curve.x] for r in rows}, key=_x_order)
    lines = {}
    for r in rows:
        key = (*[str(r[k]) for k in curve.series], r["pair"], r["metric"])
        lines.setdefault(key, {})[r[curve.x]] = f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f}"
    head = [*curve.series, "Pair", "Metric", *[f"{curve.x}={x}" for x in xs]]
    text = [
        "| " + " | ".join(map(str, head)) + " |",
        "|" + "|".join(["---"] * (len(curve.series) + 2) + ["---:"] * len(xs)) + "|",
    ]
    for key, cells in lines.items():
        text.append("| " + " | ".join([*key, *[cells.get(x, "-") for x in xs]]) + " |")
    return "\n".join(text) + "\n"


def write_summary(grid: Grid, workdir: str, status: Mapping[str, str] | None = None) -> str:
    """Writes every table (.md, .csv), curve (.csv) and summary.md; returns summary.md's text."""
    workdir = os.path.abspath(workdir)
    results = load_results(grid, workdir)
    parts = [f"# {grid.name}\n", grid.description.strip() + "\n"]
    for table in grid.tables:
        notes = protocol_notes(grid, table)
        if table.published:
            notes += (
                "Cells: reproduced [published, Δ reproduced − published], in %; a row or cell "
                "the paper does not print has no bracket.\n"
            )
        markdown = (notes and notes + "\n") + render_table(grid, table, results, "markdown")
        workdir_lib.write_text_atomically(
            os.path.join(workdir, f"{table.name}.md"), f"### {table.title}\n\n{markdown}"
        )
        workdir_lib.write_text_atomically(
            os.path.join(workdir, f"{table.name}.csv"), render_table(grid, table, results, "csv")
        )
        parts.append(f"## {table.title}\n\n{markdown}")
        tests = significance_table(grid, table, results)
        if tests:
            workdir_lib.write_text_atomically(
                os.path.join(workdir, f"{table.name}_significance.md"), tests
            )
            parts.append(f"### {table.title}: significance\n\n{tests}")
    for curve in grid.curves:
        rows = curve_rows(grid, curve, results)
        workdir_lib.write_text_atomically(
            os.path.join(workdir, f"{curve.name}.csv"), _curve_csv(curve, rows)
        )
        parts.append(
            f"## {curve.title}\n\nData: `{curve.name}.csv`. Percentages, mean ± std "
            f"over folds.\n\n{_curve_markdown(curve, rows)}"
        )
    lines = ["| Experiment | Status | Minutes (last invocation) |", "|---|---|---:|"]
    for experiment in grid.experiments:
        run_dir = os.path.join(workdir, experiment.name)
        state = (status or {}).get(experiment.name)
        if state is None:
            state = "finished" if experiment.name in results else "not run"
        elif state == "skipped":
            state = "finished (earlier)"
        minutes = "-"
        runner = os.path.join(run_dir, "runner.json")
        if os.path.exists(runner):
            with open(runner) as f:
                minutes = f"{json.load(f)['seconds'] / 60:.1f}"
        lines.append(f"| {experiment.name} | {state.replace('|', '/')} | {minutes} |")
    parts.append(
        f"## Experiments ({len(results)} of {len(grid.experiments)} finished)\n\n"
        + "\n".join(lines)
        + "\n"
    )
    text = "\n".join(parts)
    workdir_lib.write_text_atomically(os.path.join(workdir, "summary.md"), text)
    return text


# --- command line ----------------------------------------------------------------------------


def _define_flags() -> dict:
    """The command-line flags (defined on first use, so that importing this module from a grid
    file or a test defines none)."""
    return {
        "grid": flags.DEFINE_string(
            "grid", None, "Grid file, e.g. configs/grids/synthetic.py:table11."
        ),
        "workdir": flags.DEFINE_string(
            "workdir", None, "Directory of the grid; one subdirectory per experiment."
        ),
        "only": flags.DEFINE_multi_string(
            "only", [], "Run only experiments whose name contains this."
        ),
        "override": flags.DEFINE_multi_string(
            "override", [], "key=value applied to every config, e.g. data.data_dir=/tmp/tfds."
        ),
        "summary_only": flags.DEFINE_bool("summary_only", False, "Only (re)write the tables."),
        "keep_going": flags.DEFINE_bool("keep_going", True, "Continue after a failed experiment."),
        "list": flags.DEFINE_bool("list", False, "List the experiments, run nothing."),
    }


def main(argv, flag_values: dict):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    f = {k: v.value for k, v in flag_values.items()}
    grid = load_grid(f["grid"])
    workdir = os.path.abspath(f["workdir"])
    if f["list"]:
        finished = load_results(grid, workdir)
        for experiment in grid.experiments:
            mark = "finished" if experiment.name in finished else "to run"
            print(f"{experiment.name}\t{mark}\t{dict(experiment.labels)}")
        return
    if f["summary_only"]:
        print(write_summary(grid, workdir))
        return
    status = run_grid(
        grid, workdir, only=f["only"], overrides=f["override"], keep_going=f["keep_going"]
    )
    with open(os.path.join(workdir, "summary.md")) as summary:
        print(summary.read())
    failed = [n for n, s in status.items() if s.startswith("failed")]
    if failed:
        sys.exit(f"{len(failed)} experiment(s) failed: {', '.join(failed)}")


def run():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from jaxreid import log_filters

    log_filters.install()
    flag_values = _define_flags()
    flags.mark_flags_as_required(["grid", "workdir"])
    app.run(functools.partial(main, flag_values=flag_values))


if __name__ == "__main__":
    # Run the imported module, not this __main__ copy: grid files import jaxreid.experiments,
    # and their Grid objects must be of that module's class.
    from jaxreid import experiments  # noqa: PLW0406

    experiments.run()
