"""Experiment runner (jaxreid.experiments): runs a grid, resumes it, writes tables and curves."""

import csv
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxreid import experiments
from jaxreid.config import apply_overrides, default_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRIDS = os.path.join(ROOT, "configs", "grids", "synthetic.py")


def read(path):
    with open(path) as f:
        return f.read()


def tiny_config(data_dir, seed, embedding_size):
    config = default_config()
    config.seed = seed
    config.data.data_dir = data_dir
    config.model.width = 8
    config.model.embedding_size = embedding_size
    config.data.image_size = (32, 16)
    config.data.synthetic.num_train_ids = 12
    config.data.synthetic.num_val_ids = 6
    config.data.synthetic.num_test_ids = 6
    config.batch.num_identities = 4
    config.batch.images_per_identity = 4
    config.batch.eval_batch_size = 64
    config.num_train_steps = 4
    config.log_every_steps = config.eval_every_steps = config.checkpoint_every_steps = 4
    config.optim.warmup_steps = 1
    config.eval.repeats = 2
    return config


def tiny_grid(data_dir):
    # Two folds of one table row; as a curve over the embedding size, one fold per point.
    runs = [("emb32/fold0", 0, 32), ("emb16/fold1", 1, 16)]
    return experiments.Grid(
        name="tiny",
        description="A test grid.",
        experiments=[
            experiments.Experiment(
                name,
                tiny_config(data_dir, seed, size),
                {"method": "One-stream", "embedding": size, "fold": seed},
            )
            for name, seed, size in runs
        ],
        tables=[experiments.Table("table", "Tiny table", rows=("method",), headers=("Method",))],
        curves=[
            experiments.Curve(
                "curve", "Tiny curve", x="embedding", pairs=("Q:rgb G:depth",), metrics=("mAP",)
            )
        ],
    )


def test_runner_resumes_and_writes_tables(tmp_path):
    data_dir, workdir = str(tmp_path / "tfds"), str(tmp_path / "grid")
    grid = tiny_grid(data_dir)
    # An "interrupted" grid: only the first experiment ran.
    status = experiments.run_grid(grid, workdir, only=["fold0"])
    assert status == {"emb32/fold0": "done", "emb16/fold1": "not selected"}
    summary = read(os.path.join(workdir, "summary.md"))
    assert "1 of 2 finished" in summary and "not selected" in summary
    first = os.path.getmtime(os.path.join(workdir, "emb32/fold0/results.json"))

    # Running the command again runs what is left and skips the finished experiment.
    status = experiments.run_grid(grid, workdir)
    assert status == {"emb32/fold0": "skipped", "emb16/fold1": "done"}
    assert os.path.getmtime(os.path.join(workdir, "emb32/fold0/results.json")) == first
    assert set(experiments.run_grid(grid, workdir).values()) == {"skipped"}

    results = {}
    for name in ("emb32/fold0", "emb16/fold1"):
        with open(os.path.join(workdir, name, "results.json")) as f:
            results[name] = json.load(f)["test"]
    # Table: the row is mean ± std (ddof 0) over its two folds, in percent.
    rows = list(csv.DictReader(io.StringIO(read(os.path.join(workdir, "table.csv")))))
    row = [r for r in rows if r["Inference modality"] == "Q:D, G:RGB"]
    folds = [results[n]["Q:depth G:rgb"]["mAP"] for n in ("emb32/fold0", "emb16/fold1")]
    assert len(row) == 1 and row[0]["Method"] == "One-stream"
    # table.csv holds percentages with 2 decimals: ±0.005, so abs 0.006.
    assert float(row[0]["mAP"]) == pytest.approx(100 * np.mean(folds), abs=0.006)
    assert float(row[0]["mAP std"]) == pytest.approx(100 * np.std(folds), abs=0.006)
    assert "±" in read(os.path.join(workdir, "table.md"))
    assert "\nProtocol: protocol pairs," in read(os.path.join(workdir, "table.md"))
    # Curve: numeric x in increasing order (16 before 32), one fold per point.
    curve = list(csv.DictReader(io.StringIO(read(os.path.join(workdir, "curve.csv")))))
    assert [r["embedding"] for r in curve] == ["16", "32"]
    # curve.csv holds 6 decimals (`{v:.6f}`): ±5e-7, so abs 1e-6.
    assert float(curve[0]["mean"]) == pytest.approx(
        results["emb16/fold1"]["Q:rgb G:depth"]["mAP"], abs=1e-6
    )
    assert [int(r["folds"]) for r in curve] == [1, 1]
    summary = read(os.path.join(workdir, "summary.md"))
    assert "2 of 2 finished" in summary and "Tiny table" in summary and "Tiny curve" in summary


def test_tables_carry_the_protocol_and_checkpoint_rule_of_their_rows(tmp_path):
    """One line when every row was measured alike; one per row when the rows differ (the
    methods grid ranks by Euclidean, cosine and L1, and distillation keeps Step II's best
    validation loss)."""
    same = experiments.protocol_notes(tiny_grid(str(tmp_path)), tiny_grid("").tables[0])
    assert same == (
        "Protocol: protocol pairs, hafner_text (2 repeats of a single-shot gallery), "
        "non-interpolated AP, no flip test, feature embedding, metric euclidean, no "
        "re-ranking; checkpoint with the best validation mAP (validation identities).\n"
    )
    methods = experiments.load_grid(f"{GRIDS}:methods,quick,folds=2")
    notes = experiments.protocol_notes(methods, methods.tables[0]).splitlines()
    assert notes[0] == "Protocol per row:"
    rows = {line[2:].split(": ", 1)[0]: line.split(": ", 1)[1] for line in notes[2:]}
    assert len(rows) == 8 and " / " not in "".join(rows.values())  # folds measured alike
    assert "metric euclidean" in rows["One-stream"]
    assert "feature embedding, metric cosine" in rows["One-stream, BNNeck + cross-modal WRT"]
    assert "metric cosine" in rows["AGW"] and "no flip test" in rows["AGW"]
    assert ", flip test, " in rows["AGW + channel augmentation"]  # configs/agw_ca.py
    assert "feature pooled, metric l1" in rows["Distance layer (EMA, L2)"]
    assert rows["Distillation, Depth to RGB"].endswith(
        "Step II checkpoint with the best validation loss (validation identities)"
    )


def test_shipped_grids_build_and_list():
    for arg in (
        "methods",
        "table11",
        "table12",
        "table15",
        "embedding",
        "ablation",
        "table11,quick,folds=2",
    ):
        grid = experiments.load_grid(f"{GRIDS}:{arg}")
        assert grid.experiments and grid.tables
        for experiment in grid.experiments:
            from jaxreid import config as config_lib

            config_lib.validate(experiment.config)
    table11 = experiments.load_grid(f"{GRIDS}:table11")
    assert len(table11.experiments) == 12  # {R18, R50} x 2 directions x 3 folds.
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "jaxreid.experiments",
            f"--grid={GRIDS}:ablation,folds=1",
            "--workdir=/nonexistent/grid",
            "--list",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count("to run") == 4 and "copy_freeze/fold0" in out.stdout


def test_overrides_are_typed_and_checked():
    config = default_config()
    apply_overrides(
        config,
        [
            "data.data_dir=/tmp/x",
            "optim.learning_rate=1",
            "method=distillation",
            "data.image_size=[32, 16]",
        ],
    )
    assert config.data.data_dir == "/tmp/x" and config.optim.learning_rate == 1.0
    assert config.method == "distillation" and config.data.image_size == (32, 16)
    with pytest.raises(ValueError, match="lerning_rate"):
        apply_overrides(config, ["optim.lerning_rate=0.1"])


def test_a_table_and_a_curve_may_not_share_a_file_name():
    # Both write <name>.csv: Hafner 2018 Figures 35-37 once lost their table's CSV this way.
    table = experiments.Table("figure35", "t", rows=("embedding",), headers=("Embedding",))
    curve = experiments.Curve("figure35", "c", x="embedding")
    with pytest.raises(ValueError, match=r"figure35.*overwrite"):
        experiments.Grid("g", "", [], tables=[table], curves=[curve])
    experiments.Grid("g", "", [], tables=[table], curves=[experiments.Curve("f", "c", x="e")])
