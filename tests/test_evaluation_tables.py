"""Tables in the papers' layouts, the CMC plot, and evaluation's import hygiene."""

import csv
import io
import subprocess
import sys

import numpy as np
import pytest

import jaxreid.evaluation as ev


def test_modality_pairs_table_thesis_layout():
    # Hafner 2018, Table 5, one-stream network, BIWI, Resnet18 (mean ± std over 3 folds)
    rows = {
        "Q:rgb G:depth": (13.27, 2.54, 47.66, 4.37, 72.71, 3.09, 14.55, 1.99),
        "Q:depth G:rgb": (15.85, 1.77, 51.32, 1.87, 75.30, 2.61, 20.09, 1.32),
        "Q:rgb G:rgb": (86.24, 2.51, 98.10, 0.65, 99.52, 0.13, 88.15, 2.07),
        "Q:depth G:depth": (52.78, 1.76, 86.84, 0.99, 96.10, 0.38, 54.23, 2.07),
    }
    results = {}
    for pair, v in rows.items():
        results[pair] = {}
        for k, metric in enumerate(("rank1", "rank5", "rank10", "mAP")):
            results[pair][metric] = v[2 * k] / 100
            results[pair][metric + "_std"] = v[2 * k + 1] / 100
    assert ev.modality_pairs_table(results) == (
        "| Inference modality | R1 | R5 | R10 | mAP |\n"
        "|---|---:|---:|---:|---:|\n"
        "| Q:RGB, G:D | 13.27 ± 2.54 | 47.66 ± 4.37 | 72.71 ± 3.09 | 14.55 ± 1.99 |\n"
        "| Q:D, G:RGB | 15.85 ± 1.77 | 51.32 ± 1.87 | 75.30 ± 2.61 | 20.09 ± 1.32 |\n"
        "| Q:RGB, G:RGB | 86.24 ± 2.51 | 98.10 ± 0.65 | 99.52 ± 0.13 | 88.15 ± 2.07 |\n"
        "| Q:D, G:D | 52.78 ± 1.76 | 86.84 ± 0.99 | 96.10 ± 0.38 | 54.23 ± 2.07 |\n"
    )
    nested = ev.modality_pairs_table({("One-stream", "Resnet18"): results}, fmt="csv")
    table = list(csv.reader(io.StringIO(nested)))
    assert table[0] == [
        "Model",
        "",
        "Inference modality",
        "R1",
        "R1 std",
        "R5",
        "R5 std",
        "R10",
        "R10 std",
        "mAP",
        "mAP std",
    ]
    assert table[1] == [
        "One-stream",
        "Resnet18",
        "Q:RGB, G:D",
        "13.27",
        "2.54",
        "47.66",
        "4.37",
        "72.71",
        "3.09",
        "14.55",
        "1.99",
    ]


def test_collapsed_results_print_na():
    ok = {"rank1": 0.5, "rank5": 0.75, "rank10": 1.0, "mAP": 0.625, "collapsed": False}
    failed = {"rank1": 0.02, "rank5": 0.1, "rank10": 0.2, "mAP": 0.09, "collapsed": True}
    table = ev.modality_pairs_table({"Q:rgb G:rgb": ok, "Q:rgb G:depth": failed})
    assert table.splitlines()[2:] == [
        "| Q:RGB, G:RGB | 50.00 | 75.00 | 100.00 | 62.50 |",
        "| Q:RGB, G:D | n/a | n/a | n/a | n/a |",
    ]
    rows = list(
        csv.reader(io.StringIO(ev.modality_pairs_table({"Q:rgb G:depth": failed}, fmt="csv")))
    )
    assert rows[1][1:] == ["n/a"] * 4


def test_sysu_table_tekeli_layout():
    # Tekeli 2019, Table 3: last row and a row with missing settings
    ours = [
        29.05,
        74.71,
        87.16,
        30.94,
        35.40,
        81.02,
        91.85,
        24.12,
        32.74,
        82.40,
        93.35,
        44.26,
        40.41,
        86.83,
        96.27,
        33.93,
    ]
    settings = ("all_single", "all_multi", "indoor_single", "indoor_multi")
    metrics = ("rank1", "rank10", "rank20", "mAP")
    results = {
        "Ours (Dist. based)": {
            s: {m: ours[4 * i + j] / 100 for j, m in enumerate(metrics)}
            for i, s in enumerate(settings)
        },
        "TONE + HCML": {
            "all_single": {"rank1": 0.1432, "rank10": 0.5316, "rank20": 0.6917, "mAP": 0.1616}
        },
    }
    text = ev.sysu_table(results)
    lines = text.splitlines()
    assert lines[0].startswith(
        "| Method | All-search single-shot r1 | All-search single-shot "
        "r10 | All-search single-shot r20 | All-search single-shot mAP |"
        " All-search multi-shot r1 |"
    )
    assert lines[2] == (
        "| Ours (Dist. based) | 29.05 | 74.71 | 87.16 | 30.94 | 35.40 | 81.02 |"
        " 91.85 | 24.12 | 32.74 | 82.40 | 93.35 | 44.26 | 40.41 | 86.83 | 96.27 |"
        " 33.93 |"
    )
    assert lines[3] == "| TONE + HCML | 14.32 | 53.16 | 69.17 | 16.16 |" + " - |" * 12
    # a single {setting: result} mapping becomes one row, and a CMC curve is enough
    one = ev.sysu_table(
        {"all_single": {"cmc": np.linspace(0.05, 1, 20), "mAP": 0.5}},
        settings=("all_single",),
        fmt="csv",
    )
    row = list(csv.reader(io.StringIO(one)))[1]
    assert row == ["Ours", "5.00", "50.00", "100.00", "50.00"]


def test_metric_grid_table_tekeli_layout():
    # Tekeli 2019, Table 2, first row
    row = {
        "l1": (28.61, 73.09, 85.88, 29.20),
        "euclidean": (28.30, 72.68, 85.00, 28.69),
        "linf": (19.36, 56.80, 71.69, 18.86),
    }
    results = {
        ("SGD", "Fully Connected"): {
            k: dict(zip(("rank1", "rank10", "rank20", "mAP"), np.array(v) / 100))
            for k, v in row.items()
        }
    }
    lines = ev.metric_grid_table(results).splitlines()
    assert lines[0] == (
        "| Center update | Training metric | L1 r1 | L1 r10 | L1 r20 | L1 mAP |"
        " L2 r1 | L2 r10 | L2 r20 | L2 mAP | L∞ r1 | L∞ r10 | L∞ r20 | L∞ mAP |"
    )
    assert lines[2] == (
        "| SGD | Fully Connected | 28.61 | 73.09 | 85.88 | 29.20 | 28.30 | 72.68 |"
        " 85.00 | 28.69 | 19.36 | 56.80 | 71.69 | 18.86 |"
    )


def test_format_table_errors_and_digits():
    text = ev.format_table({"x": {"mAP": 0.123456}}, metrics=("mAP",), digits=3)
    assert text.splitlines()[2] == "| x | 12.346 |"
    with pytest.raises(ValueError, match="fmt='latex'"):
        ev.format_table({}, fmt="latex")


def test_plot_cmc_writes_png(tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    path = ev.plot_cmc(
        {
            "Q:rgb G:depth": {"cmc": np.linspace(0.1, 0.9, 20)},
            "Q:depth G:rgb": np.linspace(0.2, 1.0, 20),
        },
        tmp_path / "cmc.png",
        title="BIWI",
    )
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.get_backend() == backend  # the caller's backend is left alone
    with pytest.raises(ValueError, match="no 'cmc' curve"):
        ev.plot_cmc({"a": {"mAP": 1.0}}, tmp_path / "x.png")


def test_import_does_not_load_tensorflow_or_matplotlib():
    code = (
        "import sys, jaxreid.evaluation; "
        "bad = [m for m in ('tensorflow', 'matplotlib', 'scipy.io') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
