"""Tekeli & Can 2019's published figures (Tables 1-4), in percent, as
`jaxreid.evaluation.published` describes."""

from jaxreid.evaluation.published.cells import cells, sysu

_TEKELI_TABLE2_ROWS = {  # (centre update, training metric): (L1, L2/L2², L∞) ranking cells
    ("sgd", "fc"): (
        "28.61 73.09 85.88 29.20",
        "28.30 72.68 85.00 28.69",
        "19.36 56.80 71.69 18.86",
    ),
    ("sgd", "dot"): (
        "27.46 71.35 84.29 28.06",
        "27.13 70.52 83.33 27.68",
        "17.63 53.97 69.03 17.48",
    ),
    ("sgd", "l1"): ("1.60 13.03 24.74 3.49", "1.58 12.75 23.87 3.43", "1.35 12.34 22.80 3.28"),
    ("sgd", "l2"): (
        "12.15 50.58 65.78 16.52",
        "12.02 49.97 65.06 16.33",
        "11.70 46.48 60.85 15.09",
    ),
    ("sgd", "sql2"): (
        "23.88 67.52 83.32 24.30",
        "23.68 67.10 82.35 24.07",
        "14.61 50.32 65.89 14.86",
    ),
    ("sgd", "linf"): ("5.44 31.66 48.45 8.50", "5.60 32.45 49.19 8.77", "4.94 30.25 47.21 8.21"),
    ("ema", "l1"): ("5.01 29.07 46.58 7.28", "4.83 28.11 45.16 7.07", "2.92 19.72 34.22 4.89"),
    ("ema", "l2"): (
        "29.05 74.71 87.16 30.94",
        "28.84 74.37 87.14 30.55",
        "22.97 64.44 78.81 22.69",
    ),
    ("ema", "sql2"): (
        "10.66 44.51 62.60 12.78",
        "10.87 45.00 62.91 12.99",
        "6.34 32.19 49.00 8.04",
    ),
    ("ema", "linf"): (
        "21.24 63.54 78.89 23.54",
        "19.26 62.05 78.41 22.89",
        "17.09 57.67 73.83 19.98",
    ),
    ("median", "l1"): ("5.09 29.80 47.00 7.29", "4.62 28.56 45.57 6.91", "2.82 19.70 33.81 4.81"),
    ("median", "l2"): (
        "27.49 71.95 85.88 29.71",
        "26.92 71.34 85.65 29.19",
        "20.49 61.39 76.44 21.27",
    ),
    ("median", "sql2"): (
        "9.61 43.08 60.75 11.81",
        "9.45 42.43 59.91 11.57",
        "5.53 29.50 45.49 7.28",
    ),
    ("median", "linf"): (
        "19.07 62.69 79.71 22.03",
        "16.24 58.04 75.17 20.04",
        "14.08 53.85 70.61 17.41",
    ),
    ("midrange", "l1"): ("3.65 23.44 39.39 5.67", "3.22 22.30 37.91 5.30", "1.90 14.72 27.37 3.71"),
    ("midrange", "l2"): (
        "30.37 73.28 86.06 31.78",
        "29.92 72.84 85.89 31.37",
        "24.18 64.93 78.98 24.09",
    ),
    ("midrange", "sql2"): (
        "15.24 54.59 72.26 16.94",
        "15.12 54.47 72.37 16.85",
        "9.78 42.98 60.22 11.22",
    ),
    ("midrange", "linf"): (
        "21.93 64.13 78.34 24.38",
        "20.63 64.38 79.36 24.10",
        "17.89 59.80 75.19 20.72",
    ),
}
TEKELI_TABLE2_RANKS = ("l1", "euclidean", "linf")  # Ranking metric column groups of Table 2

TEKELI2019: dict[str, dict[tuple, dict[str, tuple]]] = {
    # Table 1: β of the running average, L2 training and L2 ranking, all-search single-shot.
    "table1": {
        ("0.1",): {"all_single": cells("25.02 67.39 81.47 25.98")},
        ("0.3",): {"all_single": cells("25.71 70.86 84.00 27.16")},
        ("0.5",): {"all_single": cells("26.31 73.65 86.57 28.46")},
        ("0.7",): {"all_single": cells("28.84 74.37 87.14 30.55")},
        ("0.9",): {"all_single": cells("26.43 69.92 84.12 28.33")},
    },
    # Table 2: (centre update, training metric, ranking metric), all-search single-shot.
    "table2": {
        (update, metric, rank): {"all_single": cells(printed[i])}
        for (update, metric), printed in _TEKELI_TABLE2_ROWS.items()
        for i, rank in enumerate(TEKELI_TABLE2_RANKS)
    },
    # Table 3: SYSU-MM01, the distance-based network (EMA, L2 training, L1 ranking).
    "table3": {
        ("EMA, L2",): sysu(
            "29.05 74.71 87.16 30.94",
            "35.40 81.02 91.85 24.12",
            "32.74 82.40 93.35 44.26",
            "40.41 86.83 96.27 33.93",
        )
    },
    # Table 4: RegDB, visible to thermal, mean over 10 trials.
    "table4": {("EMA, L2",): {"visible_to_thermal": cells("38.64 60.18 69.81 38.08")}},
}
