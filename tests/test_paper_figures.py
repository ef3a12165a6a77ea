"""Hafner 2018 Table 1 (jaxreid.datasets.statistics) and Figures 31/33/35-37
(jaxreid.visualization.paper_figures) from hand-made splits and grid outputs."""

import os
import types

import numpy as np
import pytest

from jaxreid.datasets import statistics
from jaxreid.evaluation import tables
from jaxreid.visualization import paper_figures


def ids(*values):
    return types.SimpleNamespace(person_ids=np.asarray(values, np.int32))


def test_split_statistics_counts_identities_and_images():
    splits = {
        "train": {"rgb": ids(1, 1, 2), "depth": ids(1, 2, 2, 2)},
        "val": {"rgb": ids(3), "depth": ids(3, 3)},
        "test": {"rgb": ids(2, 5, 5, 5), "depth": ids(4)},  # 2: also a training id
    }
    stats = statistics.split_statistics(splits, ("rgb", "depth"))
    # Hand count: train RGB 2 ids / 3 images, depth 2 / 4; overall RGB 4 ids (1, 2, 3, 5: the
    # union, 2 is in two splits) / 8 images, depth 4 ids / 7 images.
    assert stats == {
        "train": ((2, 3), (2, 4)),
        "val": ((1, 1), (1, 2)),
        "test": ((2, 4), (1, 1)),
        "overall": ((4, 8), (4, 7)),
    }
    text = statistics.table1_markdown({"biwi": stats})
    row = text.splitlines()[2].split(" | ")
    assert row[1:5] == ["2 [32]", "3 [9245]", "2 [8]", "4 [9245]"]  # Hafner 2018 Table 1
    assert "4 [78]" in text and "8 [22038]" in text
    with pytest.raises(ValueError, match="--dataset='market'"):
        statistics.dataset_statistics("market", "/nowhere")


def write_distillation_table(path, maps):
    """A grid table CSV as experiments.write_summary writes it, from hand-made mAPs."""
    results = {}
    for (direction, fe), (m1, m2) in maps.items():
        results[(direction, fe)] = {
            "Q:rgb G:depth": {"mAP": m1, "mAP_std": 0.01},
            "Q:depth G:rgb": {"mAP": m2, "mAP_std": 0.02},
            "Q:rgb G:rgb": {"mAP": 0.9, "mAP_std": 0.0},
        }
    text = tables.modality_pairs_table(
        results, row_header=["Transfer direction", "FE", "Inference modality"], fmt="csv"
    )
    path.write_text(text)


def test_figure31_bars_read_the_cross_modal_map_of_both_tables(tmp_path):
    write_distillation_table(
        tmp_path / "table11.csv",
        {("Depth to RGB", "R18"): (0.25, 0.30), ("RGB to Depth", "R50"): (0.05, 0.10)},
    )
    write_distillation_table(tmp_path / "table12.csv", {("Depth to RGB", "R18"): (0.2, 0.4)})
    data = paper_figures.plot_bars(str(tmp_path), "figure31", str(tmp_path / "f31.png"))
    assert data == {
        "Depth to RGB\nR18 softmax": {"Q:RGB, G:D": (25.0, 1.0), "Q:D, G:RGB": (30.0, 2.0)},
        "RGB to Depth\nR50 softmax": {"Q:RGB, G:D": (5.0, 1.0), "Q:D, G:RGB": (10.0, 2.0)},
        "Depth to RGB\nR18 triplet": {"Q:RGB, G:D": (20.0, 1.0), "Q:D, G:RGB": (40.0, 2.0)},
    }
    assert (tmp_path / "f31.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(FileNotFoundError, match="table13.csv"):
        paper_figures.bar_data(str(tmp_path), "figure33")


def test_embedding_curves_and_the_command(tmp_path):
    lines = ["pair,embedding,metric,mean,std,folds"]
    for size, value in ((32, 0.1), (128, 0.2), (2048, 0.15), ("C", 0.3)):
        lines.append(f"Q:rgb G:depth,{size},mAP,{value:.6f},0.010000,3")
        lines.append(f"Q:rgb G:depth,{size},rank1,0.5,0.0,3")
    (tmp_path / "figure35.csv").write_text("\n".join(lines) + "\n")
    data = paper_figures.curve_data(str(tmp_path / "figure35.csv"))
    assert data == {
        "Q:rgb G:depth": {32: (10.0, 1.0), 128: (20.0, 1.0), 2048: (15.0, 1.0), "C": (30.0, 1.0)}
    }
    written = paper_figures.draw_all(str(tmp_path), str(tmp_path / "out"))
    assert written == [str(tmp_path / "out" / "figure35.png")]
    assert os.path.getsize(written[0]) > 1000
