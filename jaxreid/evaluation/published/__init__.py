"""The papers' published figures, table -> row -> column group -> metric, in percent.

Transcribed from the text of Hafner 2018 (MSc thesis, TU Delft; Tables 2-19, and Table 3 of
the journal paper in its appendix D) and Tekeli & Can 2019 (Tables 1-4), so that the
experiment grids (configs/grids/hafner2018.py, configs/grids/tekeli2019.py) print each
published cell beside the reproduced one with the difference. Only the means are kept (the
spread over folds is the grid's own to report). One module per paper: `hafner2018`,
`tekeli2019`; `cells` is how a printed cell is written down.

Keys:
  paper: 'hafner2018' (the thesis), 'hafner2018_journal' (its appendix D), 'tekeli2019'.
  table: 'table2' .. 'table19' in `HAFNER2018`, 'table3' in `HAFNER2018_JOURNAL`,
    'table1' .. 'table4' in `TEKELI2019`.
  row: a tuple of the grid's row labels (the same strings the grid puts in its `Table.rows`).
  column group: a query/gallery pair key as `evaluation.evaluate_modality_pairs` names them
    ('Q:rgb G:depth'), a SYSU-MM01 setting ('all_single', ...) or a RegDB direction
    ('visible_to_thermal').
  metric: `metrics(paper, table)` gives the order of the four numbers of a cell.
Cells the paper prints as n/a (failed trainings, Hafner 2018 §4.3.2) are None.
"""

from __future__ import annotations

from collections.abc import Mapping

from jaxreid.evaluation.published.cells import SYSU_METRICS, THESIS_METRICS
from jaxreid.evaluation.published.hafner2018 import HAFNER2018, HAFNER2018_JOURNAL
from jaxreid.evaluation.published.tekeli2019 import TEKELI2019, TEKELI_TABLE2_RANKS

__all__ = [
    "HAFNER2018",
    "HAFNER2018_JOURNAL",
    "PAPERS",
    "TEKELI2019",
    "TEKELI_TABLE2_RANKS",
    "figures",
    "lookup",
    "metrics",
]

PAPERS = {
    "hafner2018": HAFNER2018,
    "hafner2018_journal": HAFNER2018_JOURNAL,
    "tekeli2019": TEKELI2019,
}


def metrics(paper: str, table: str) -> tuple[str, ...]:
    """The metric order of a table's cells."""
    if paper == "tekeli2019" or (paper == "hafner2018" and table == "table19"):
        return SYSU_METRICS
    return THESIS_METRICS


def figures(paper: str, table: str) -> dict[tuple, dict[str, dict[str, float | None]]]:
    """{row: {column group: {metric: fraction in [0, 1] or None}}} of one published table
    (fractions, as jaxreid's results hold them).

    Raises:
      KeyError: an unknown paper or table (the message lists the known ones).
    """
    if paper not in PAPERS:
        raise KeyError(f"Unknown paper {paper!r}; expected one of {sorted(PAPERS)}.")
    tables = PAPERS[paper]
    if table not in tables:
        raise KeyError(f"{paper} has no published table {table!r}; expected one of {list(tables)}.")
    names = metrics(paper, table)
    return {
        row: {
            group: {m: (None if v is None else v / 100.0) for m, v in zip(names, cells)}
            for group, cells in groups.items()
        }
        for row, groups in tables[table].items()
    }


def lookup(
    published: Mapping[tuple, Mapping[str, Mapping]], row: tuple, group: str, metric: str
) -> float | None:
    """One published cell of `figures(...)`, or None where the paper prints none."""
    return published.get(tuple(str(r) for r in row), {}).get(group, {}).get(metric)
