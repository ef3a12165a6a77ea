"""How the published tables are transcribed: a cell is the paper's four numbers as printed.

`cells('21.93 57.70 78.85 22.29')` keeps the text close to the paper's page, so that each
figure can be checked by eye (and by tests/test_paper_grids.py) against the papers' text.
"""

from __future__ import annotations

THESIS_METRICS = ("rank1", "rank5", "rank10", "mAP")  # Hafner 2018, Tables 2-18
SYSU_METRICS = ("rank1", "rank10", "rank20", "mAP")  # Hafner 2018 Table 19; Tekeli 2019

RGBD_PAIRS = ("Q:rgb G:depth", "Q:depth G:rgb", "Q:rgb G:rgb", "Q:depth G:depth")
RGBI_PAIRS = ("Q:rgb G:infrared", "Q:infrared G:rgb", "Q:rgb G:rgb", "Q:infrared G:infrared")
SYSU_SETTINGS = ("all_single", "all_multi", "indoor_single", "indoor_multi")


def cells(text: str) -> tuple[float | None, ...]:
    """'21.93 57.70 78.85 22.29' -> (21.93, 57.70, 78.85, 22.29); 'n/a' -> None."""
    return tuple(None if t == "n/a" else float(t) for t in text.split())


def pairs(keys: tuple[str, ...], *rows: str) -> dict[str, tuple]:
    """One cell per pair, in the order the thesis prints them (Q:RGB G:D, Q:D G:RGB,
    Q:RGB G:RGB, Q:D G:D)."""
    return {pair: cells(row) for pair, row in zip(keys, rows, strict=True)}


def sysu(*groups: str) -> dict[str, tuple]:
    """One cell per SYSU-MM01 setting, in `SYSU_SETTINGS` order (Hafner 2018 Table 19;
    Tekeli 2019 Table 3)."""
    return {s: cells(g) for s, g in zip(SYSU_SETTINGS, groups)}
