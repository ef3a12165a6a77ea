"""The paper grids (configs/grids/hafner2018.py, tekeli2019.py) and their published figures.

Structure (cheap, every table): the rows, folds and query/gallery columns of each grid are the
paper's, the recipes are the author's code's, and every published figure is the paper's text.
End to end (`test_every_method_and_dataset_runs_on_the_test_trees`): at the smoke scale each
distinct method x dataset combination of the grids runs once on the builders' test trees and
its table carries the published figures and the differences.
"""

import os
import re

import pytest

from jaxreid import experiments
from jaxreid.evaluation import published

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAFNER = os.path.join(ROOT, "configs", "grids", "hafner2018.py")
TEKELI = os.path.join(ROOT, "configs", "grids", "tekeli2019.py")
PAPERS = next(
    (
        p
        for p in ("/work/shared/papers", os.path.join(ROOT, "..", "shared", "papers"))
        if os.path.isdir(p)
    ),
    None,
)
RGBD = ("Q:rgb G:depth", "Q:depth G:rgb", "Q:rgb G:rgb", "Q:depth G:depth")
RGBI = ("Q:rgb G:infrared", "Q:infrared G:rgb", "Q:rgb G:rgb", "Q:infrared G:infrared")


def hafner(arg):
    return experiments.load_grid(f"{HAFNER}:{arg}")


def rows_and_folds(grid, table):
    """{row label tuple (strings): sorted fold labels} of the experiments in `table`."""
    out = {}
    for e in grid.experiments:
        if all(e.labels.get(k) == v for k, v in table.where.items()):
            key = tuple(str(e.labels[k]) for k in table.rows)
            out.setdefault(key, []).append(e.labels.get("fold"))
    return {k: sorted(v) for k, v in out.items()}


# (table, dataset's folds, pairs shown, rows). Rows as the thesis prints them.
SINGLE_ROWS = lambda other: {
    (m, a, l) for m in ("RGB", other) for a in ("R18", "R50") for l in ("Triplet", "Softmax")
}
DISTILLATION_ROWS = lambda other: {
    (d, a) for d in (f"{other} to RGB", f"RGB to {other}") for a in ("R18", "R50")
}
HAFNER_TABLES = [
    ("table2", 3, (), SINGLE_ROWS("Depth")),
    ("table3", 3, (), SINGLE_ROWS("Depth")),
    ("table4", 1, (), SINGLE_ROWS("Infrared")),
    ("table5", 3, RGBD, {("R18",), ("R50",)}),
    ("table6", 3, RGBD, {("R18",), ("R50",)}),
    ("table7", 1, RGBI, {("R18",), ("R50",)}),
    ("table8", 3, RGBD, {("R18",), ("R50",)}),
    ("table9", 3, RGBD, {("R18",), ("R50",)}),
    ("table10", 1, RGBI, {("R18",), ("R50",)}),
    ("table11", 3, RGBD, DISTILLATION_ROWS("Depth")),
    ("table12", 3, RGBD, DISTILLATION_ROWS("Depth")),
    ("table13", 3, RGBD, DISTILLATION_ROWS("Depth")),
    ("table14", 3, RGBD, {("RGB to Depth", "R18"), ("RGB to Depth", "R50")}),
    ("table15", 1, RGBI, DISTILLATION_ROWS("Infrared")),
    ("table16", 1, RGBI, {("Infrared to RGB", "R18"), ("RGB to Infrared", "R18")}),
]


@pytest.mark.parametrize("name,folds,pairs,rows", HAFNER_TABLES, ids=[t[0] for t in HAFNER_TABLES])
def test_hafner_grid_has_the_thesis_rows_folds_and_columns(name, folds, pairs, rows):
    grid = hafner(name)
    (table,) = grid.tables
    found = rows_and_folds(grid, table)
    assert set(found) == rows
    assert all(f == list(range(folds)) for f in found.values()), found  # §4.3.1: 3 folds
    assert table.pairs == pairs
    assert table.metrics == ("rank1", "rank5", "rank10", "mAP")
    assert set(table.published) == rows  # every row has its published figures
    for row in rows:
        shown = pairs or tuple(published.HAFNER2018[name][row])
        assert set(table.published[row]) == set(shown)


def test_comparison_and_sysu_tables_have_the_thesis_rows():
    methods = {
        "WHOS, Euclidean",
        "WHOS, XQDA",
        "LOMO, Euclidean",
        "LOMO, XQDA",
        "Zero-padding network, Resnet50",
        "One-stream network, Resnet50",
    }
    for name, embedding in (("table17", "C"), ("table18", "256")):
        grid = hafner(name)
        (table,) = grid.tables
        found = rows_and_folds(grid, table)
        distill = f"Cross-modal distillation network, Resnet50, embedding {embedding}"
        assert set(found) == {(m,) for m in methods | {distill}}
        assert all(f == [0, 1, 2] for f in found.values())
        assert table.pairs == RGBD[:2]
        # The text garbles Table 17's zero-padding row and both papers' rows are otherwise
        # printed: every published row is a grid row.
        assert set(table.published) <= set(found)
        runs = {e.labels.get("method"): e.config for e in grid.experiments}
        assert runs[distill].model.embedding_size == (0 if embedding == "C" else 256)
        assert runs[distill].model.backbone == "resnet50"
    grid = hafner("table19")
    (table,) = grid.tables
    assert set(rows_and_folds(grid, table)) == set(table.published)
    assert table.metrics == ("rank1", "rank10", "rank20", "mAP")
    assert {e.config.eval.test_protocol for e in grid.experiments if "protocol" in e.name} == {
        "sysu"
    }


@pytest.mark.parametrize("name,sizes", [("figure35", 7), ("figure36", 6), ("figure37", 7)])
def test_embedding_grids_sweep_the_thesis_sizes(name, sizes):
    grid = hafner(name)
    (curve,) = grid.curves
    assert curve.x == "embedding" and curve.pairs == (
        "Q:rgb G:depth",
        "Q:depth G:rgb",
        "Q:depth G:depth",
    )
    steps2 = [e for e in grid.experiments if e.labels["kind"] == "distillation"]
    assert len(steps2) == 3 * sizes
    expected = [32, 128, 256, 512, 1024, 2048, "C"][:sizes]
    assert sorted({e.labels["embedding"] for e in steps2}, key=str) == sorted(expected, key=str)
    for e in steps2:  # Step II uses its own Step I, with the same embedding (§5.2.3.4).
        teacher = next(t for t in grid.experiments if t.name == e.config.distill.teacher_workdir)
        assert teacher.config.model.embedding_size == e.config.model.embedding_size


def test_recipes_are_the_author_codes():
    grid = hafner("table12")
    by_name = {e.name: e.config for e in grid.experiments}
    softmax = hafner("table11").experiments[0].config  # single/depth/r18_softmax/fold0
    # open-reid/examples/softmax_loss.py: SGD (Nesterov) 0.1, x0.1 at epoch 40 of 100,
    # weight decay 5e-4, batches of 64 drawn at random, dropout 0.5.
    assert (softmax.optim.name, softmax.optim.learning_rate) == ("sgd", 0.1)
    assert (softmax.optim.schedule, tuple(softmax.optim.step_boundaries)) == ("step", (0.4,))
    assert softmax.optim.weight_decay == 5e-4 and softmax.optim.warmup_steps == 0
    assert softmax.batch.sampler == "random" and softmax.model.dropout_rate == 0.5
    assert softmax.batch.num_identities * softmax.batch.images_per_identity == 64
    # 100 epochs of BIWI's 9,245 training depth images (Table 1) at 64 per batch.
    assert softmax.num_train_steps == -(-100 * 9245 // 64)
    # triplet_loss.py: Adam 2e-4, weight decay 5e-4, P x K = 16 x 4, dropout 0, margin 0.5.
    triplet = by_name["single/depth/r18_triplet/fold0"]
    assert (triplet.optim.name, triplet.optim.learning_rate, triplet.optim.schedule) == (
        "adam",
        2e-4,
        "constant",
    )
    assert (
        triplet.batch.sampler,
        triplet.batch.num_identities,
        triplet.batch.images_per_identity,
    ) == ("pk", 16, 4)
    assert triplet.model.dropout_rate == 0.0 and triplet.loss.triplet_margin == 0.5
    # transfer-reid: SGD 2e-6, 30 epochs of 16 (the README's --batch-size 16), dropout 0.5
    # (line 80, whatever Step I used), frozen BatchNorm in train() mode (retrainer.py line
    # 143), the best sum of the cross-modal validation mAPs.
    step2 = by_name["distillation/depth_to_rgb/r18_triplet/fold0"]
    assert step2.distill.teacher_workdir == "single/depth/r18_triplet/fold0"
    assert (step2.distill.optim.name, step2.distill.optim.learning_rate) == ("sgd", 2e-6)
    assert step2.distill.early_stopping == "val_mAP"
    assert step2.distill.num_train_steps == -(-30 * 9245 // 16)
    assert step2.model.dropout_rate == 0.5 and step2.distill.frozen_bn == "update"
    assert step2.batch.sampler == "random"
    assert step2.batch.num_identities * step2.batch.images_per_identity == 16
    # The protocol of the author's code, which produced the tables; the camera rule only on
    # SYSU-MM01's four-pair test (§4.3.1), not under Wu et al.'s protocol (Table 19).
    assert {(c.eval.protocol, c.eval.camera_rule) for c in by_name.values()} == {
        ("hafner_code", False)
    }
    assert {c.eval.camera_rule for c in (e.config for e in hafner("table7").experiments)} == {True}
    table19 = {e.name: e.config for e in hafner("table19").experiments}
    assert not table19["one_stream_sysu_protocol/r18/fold0"].eval.camera_rule
    assert hafner("table5,text_protocol").experiments[0].config.eval.protocol == "hafner_text"
    # jaxreid's own choices are off; the inputs are the code's.
    for config in by_name.values():
        assert not config.data.center_depth and config.optim.schedule != "cosine"
        assert tuple(config.data.image_size) == (256, 128) and config.model.width == 64


def test_pretrained_directory_and_bad_options(tmp_path):
    for name in ("resnet18-f37072fd.pth", "resnet50-0676ba61.pth"):
        (tmp_path / name).write_bytes(b"")
    grid = hafner(f"table5,pretrained={tmp_path}")
    weights = {e.config.model.backbone: e.config.model.pretrained for e in grid.experiments}
    assert weights == {
        "resnet18": str(tmp_path / "resnet18-f37072fd.pth"),
        "resnet50": str(tmp_path / "resnet50-0676ba61.pth"),
    }
    (tmp_path / "resnet50-0676ba61.pth").unlink()
    with pytest.raises(ValueError, match=r"no resnet50\*\.pth"):
        hafner(f"table5,pretrained={tmp_path}")
    with pytest.raises(ValueError, match="unknown table 'table20'"):
        hafner("table20")
    with pytest.raises(ValueError, match="bad option 'folds=0'"):
        hafner("table5,folds=0")
    with pytest.raises(ValueError, match="paired RGB-D"):
        hafner("figure35,dataset=sysu")
    # Another dataset than the table's: the layout runs, without published figures.
    assert hafner("table11,dataset=robotpku").tables[0].published == {}


TEKELI_TABLES = [
    ("table1,seeded", 5, ("all_single",)),
    ("table2,seeded", 54, ("all_single",)),
    ("table3,seeded", 1, ()),
    ("table4", 10, ("visible_to_thermal",)),
]


@pytest.mark.parametrize("arg,runs,pairs", TEKELI_TABLES, ids=[t[0] for t in TEKELI_TABLES])
def test_tekeli_grid_has_the_paper_rows_and_columns(arg, runs, pairs):
    grid = experiments.load_grid(f"{TEKELI}:{arg}")
    (table,) = grid.tables
    name = arg.split(",")[0]
    assert len(grid.experiments) == runs and table.pairs == pairs
    found = rows_and_folds(grid, table)
    assert set(found) == set(published.TEKELI2019[name]) == set(table.published)
    if name == "table1":  # Ranked with L2 (Table 1's caption), not L1.
        assert {e.config.eval.metric for e in grid.experiments} == {"euclidean"}
    if name == "table4":  # Trials 1..10, each trained on the whole trial.
        assert found[("EMA, L2",)] == list(range(1, 11))
        for e in grid.experiments:
            assert e.config.data.val_split == e.config.data.train_split
            assert e.config.eval_every_steps == e.config.num_train_steps


def test_tekeli_sysu_uses_the_owners_gallery_draws():
    with pytest.raises(ValueError, match="sysu_perm="):
        experiments.load_grid(f"{TEKELI}:table3")
    grid = experiments.load_grid(f"{TEKELI}:table3,sysu_perm=/data/rand_perm_cam.mat")
    config = grid.experiments[0].config
    assert (config.eval.sysu_sampler, config.eval.sysu_perm_file) == (
        "official",
        "/data/rand_perm_cam.mat",
    )
    # The synthetic analogue stays available (no published figures there).
    synthetic = experiments.load_grid(f"{TEKELI}:table2,dataset=synthetic,quick")
    assert synthetic.tables[0].published == {}


# --- published figures against the papers' text -------------------------------------------------


def _caption_lines(text: str, caption: str) -> list[str]:
    """The text lines around a table's caption (the tables' bodies sit before or after it)."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(caption))
    return lines[max(0, at - 45) : at + 30]


def _printed(value: float, block: str) -> bool:
    """`value` as the paper prints it in `block` (2 decimals, or 1 as in Table 10 / 17-18)."""
    numbers = {float(n) for n in re.findall(r"\d+\.\d+", block)}
    return any(abs(value - n) < 1e-9 for n in numbers)


@pytest.mark.skipif(PAPERS is None, reason="the papers' text (../shared/papers) is not here")
@pytest.mark.parametrize(
    "paper,table",
    [("hafner2018", t) for t in published.HAFNER2018]
    + [("tekeli2019", t) for t in published.TEKELI2019],
)
def test_published_figures_are_the_papers_text(paper, table):
    filename = {
        "hafner2018": "hafner2018_cross_modal_distillation_thesis.txt",
        "tekeli2019": "tekeli2019_distance_based_training.txt",
    }[paper]
    with open(os.path.join(PAPERS, filename)) as f:
        text = f.read()
    number = int(table[len("table") :])
    caption = f"Table {number}:" if paper == "hafner2018" else f"Table {number}."
    if paper == "hafner2018" and number == 17:
        caption = "> Table 17:"
    if paper == "hafner2018" and number == 19:
        caption = "> Table 19:"
    if paper == "hafner2018" and number == 18:
        caption = "Table 18:"
    block = "\n".join(_caption_lines(text, caption))
    if paper == "hafner2018" and number in (17, 18):
        # Rows garbled in the thesis are taken from the journal's copy of the table
        # (appendix D, Tables 4 and 5): every figure must be printed in one of the two.
        journal = {17: "Approach\tQuery-RGB", 18: "TABLE 5 Average accuracy"}[number]
        block += "\n" + "\n".join(_caption_lines(text[text.index("TABLE 4\n") :], journal))
    cells = [
        v for groups in published.PAPERS[paper][table].values() for c in groups.values() for v in c
    ]
    missing = [v for v in cells if v is not None and not _printed(v, block)]
    assert not missing, f"{paper} {table}: {missing} are not printed near '{caption}'"
    assert sum(v is not None for v in cells) >= 4


# --- end to end on the builders' test trees ------------------------------------------------------

# (grid, manual tree under datasets/, experiments to run: the fewest that exercise every distinct
# method x dataset combination of the grids once). What the smoke scale skips: see
# configs/grids/hafner2018.py `smoke` (ResNet50 rows run a ResNet18, two steps, lr <= 1e-3);
# the runs not selected are the same code with other labels (the structure tests above cover
# their configs).
SMOKE_RUNS = [
    # BIWI: Step I softmax + Step II with paired targets (Table 11) and the one-stream
    # network (Table 5). Left to other tests: the triplet Step I, Adam and the P x K sampler
    # (tests/test_distill.py, test_train_step.py), the zero-padding input layout
    # (test_data_pipeline.py). One conventional row (Table 17: LOMO + XQDA).
    (
        "hafner2018.py:table11,smoke",
        "biwi_rgbd_id/dummy_data/distributed",
        ["single/depth/r18_softmax/", "distillation/depth_to_rgb/r18_softmax/"],
    ),
    ("hafner2018.py:table5,smoke", "biwi_rgbd_id/dummy_data/distributed", ["one_stream/r18/"]),
    ("hafner2018.py:table17,smoke", "biwi_rgbd_id/dummy_data/distributed", ["lomo_xqda/"]),
    # RobotPKU's test tree has 2 design identities, too few for a fold to hold one out and
    # train on two: its grids (Tables 3, 6, 9, 13, 14, 18, Figure 37) are BIWI's code with
    # other splits (tests/test_dataset_builders*.py read the tree).
    # SYSU-MM01: Wu et al.'s protocol for the one-stream network (Table 19).
    ("hafner2018.py:table19,smoke", "sysu_mm01/dummy_data", ["one_stream_sysu_protocol/"]),
    # Tekeli 2019: the distance layer on SYSU-MM01 (Tables 1-3) and RegDB (Table 4).
    ("tekeli2019.py:table3,smoke", "sysu_mm01/dummy_data", []),
    ("tekeli2019.py:table4,smoke", "regdb/dummy_data", []),
]


@pytest.fixture(scope="module")
def smoke_dirs(tmp_path_factory):
    """(TFDS data directory, root of the per-dataset grid workdirs), shared by the module."""
    return str(tmp_path_factory.mktemp("tfds")), tmp_path_factory.mktemp("grids")


@pytest.mark.parametrize("spec,tree,only", SMOKE_RUNS, ids=[s for s, _, _ in SMOKE_RUNS])
def test_every_method_and_dataset_runs_on_the_test_trees(smoke_dirs, spec, tree, only):
    data_dir, root = smoke_dirs
    grid = experiments.load_grid(os.path.join(ROOT, "configs", "grids", spec))
    workdir = str(root / tree.split("/")[0])  # one per dataset: the grids share runs
    overrides = [
        f"data.data_dir={data_dir}",
        f"data.manual_dir={os.path.join(ROOT, 'datasets', tree)}",
    ]
    status = experiments.run_grid(grid, workdir, only=only, overrides=overrides)
    ran = [name for name, s in status.items() if s in ("done", "skipped")]
    assert ran and not [s for s in status.values() if s.startswith("failed")], status
    (table,) = grid.tables
    with open(os.path.join(workdir, f"{table.name}.md")) as f:
        markdown = f.read()
    # The finished rows carry the published figure beside each cell (the test trees hold two
    # test identities, so the reproduced figures are often n/a or '-'; the difference is
    # checked on hand-made results in test_published_cells_show_the_difference).
    assert "Δ reproduced − published" in markdown
    finished = rows_and_folds(
        experiments.Grid(grid.name, "", [e for e in grid.experiments if e.name in ran]), table
    )
    row = next(r for r in table.published if r in finished)
    group = next(iter(table.published[row]))
    first = table.published[row][group][table.metrics[0]]
    assert f"[{100 * first:.2f}" in markdown, markdown
    with open(os.path.join(workdir, f"{table.name}.csv")) as f:
        header = f.readline()
    assert " published," in header and " diff" in header


def test_published_cells_show_the_difference():
    """A hand-made two-row table against Hafner 2018 Table 5's R18 cells: the published
    figure and reproduced − published beside each cell; rows the paper lacks get none."""
    from jaxreid.evaluation import tables

    results = {
        ("R18",): {
            "Q:rgb G:depth": {"rank1": 0.1500, "mAP": 0.1000, "mAP_std": 0.0125},
            "Q:depth G:rgb": {"rank1": 0.1585, "mAP": float("nan")},
        },
        ("R34",): {"Q:rgb G:depth": {"rank1": 0.5, "mAP": 0.5}},
    }
    figures = published.figures("hafner2018", "table5")
    text = tables.modality_pairs_table(
        results, metrics=("rank1", "mAP"), row_header=["FE", "Pair"], published=figures
    )
    lines = text.splitlines()
    # 15.00 - 13.27 = +1.73; 10.00 - 14.55 = -4.55; 15.85 - 15.85 = +0.00; NaN: no difference.
    assert (
        lines[2] == "| R18 | Q:RGB, G:D | 15.00 [13.27, Δ +1.73] | 10.00 ± 1.25 [14.55, Δ -4.55] |"
    )
    assert lines[3] == "| R18 | Q:D, G:RGB | 15.85 [15.85, Δ +0.00] | - [20.09] |"
    assert lines[4] == "| R34 | Q:RGB, G:D | 50.00 | 50.00 |"
    csv_text = tables.modality_pairs_table(
        results, metrics=("mAP",), row_header=["FE", "Pair"], published=figures, fmt="csv"
    )
    import csv
    import io

    rows = list(csv.reader(io.StringIO(csv_text)))
    assert rows[0] == ["FE", "Pair", "mAP", "mAP std", "mAP published", "mAP diff"]
    assert rows[1] == ["R18", "Q:RGB, G:D", "10.00", "1.25", "14.55", "-4.55"]
    assert rows[2] == ["R18", "Q:D, G:RGB", "-", "-", "20.09", "-"]
    assert rows[3][-2:] == ["-", "-"]  # R34: not in the paper


def test_every_paper_grid_config_validates():
    """Each run of every paper grid passes config validation (before any data is read)."""
    from jaxreid.config import validate

    specs = [f"{HAFNER}:{name}" for name in (f"table{n}" for n in range(2, 20))]
    specs += [f"{HAFNER}:figure{n}" for n in (35, 36, 37)]
    specs += [f"{TEKELI}:{arg}" for arg, _, _ in TEKELI_TABLES]
    for spec in specs:
        for experiment in experiments.load_grid(spec).experiments:
            validate(experiment.config, num_devices=1)


# --- journal (appendix D) Table 3: training scenarios (structure only) ---------------------------


def test_journal_table3_has_the_scenarios_and_the_journals_figures():
    """configs/grids/hafner2018.py:journal_table3: the journal's three scenarios (transfer-
    reid.py --dont-load-weights / --dont-freeze-model) plus the author's code's frozen
    BatchNorm updating, on BIWI's 3 folds, one shared Step I per fold, the published figures
    the journal's text prints, and the author's crop augmentation in every recipe."""
    grid = hafner("journal_table3")
    (table,) = grid.tables
    found = rows_and_folds(grid, table)
    copy_freeze = ("Copying of weights, freezing of layers",)
    bn_fixed = ("Copying of weights, freezing of layers, frozen BatchNorm fixed (jaxreid)",)
    # retrainer.py lines 79-86 only set requires_grad=False, line 143 model.train(): the
    # published rows ran with the frozen BatchNorm updating.
    scenarios = {
        ("No copying of weights, no freezing of layers",): ("none", "update", False),
        ("Copying of weights, no freezing of layers",): ("none", "update", True),
        copy_freeze: ("auto", "update", True),
        bn_fixed: ("auto", "fixed", True),
    }
    assert set(found) == set(scenarios)
    assert all(f == [0, 1, 2] for f in found.values())  # §4.3.1: 3 folds on BIWI
    assert table.pairs == RGBD[:2] and table.metrics == ("rank1", "rank5", "rank10", "mAP")
    by_name = {e.name: e for e in grid.experiments}
    for e in grid.experiments:
        c = e.config
        assert c.data.augment.random_sized_rect_crop and c.data.pad_crop == 0  # transforms.py
        if e.labels["kind"] != "scenario":
            continue
        d = c.distill
        assert (d.freeze_from, d.frozen_bn, d.copy_weights) == scenarios[(e.labels["scenario"],)]
        assert d.enabled and d.source_modality == "depth"
        # Step II: dropout 0.5 (transfer-reid.py line 80), batches of 16 at random (README).
        assert c.model.dropout_rate == 0.5 and c.batch.sampler == "random"
        assert c.batch.num_identities * c.batch.images_per_identity == 16
        # Formula 4: ResNet18 softmax, the classification layer as the embedding.
        assert c.model.backbone == "resnet18" and c.model.embedding_size == 0
        teacher = by_name[d.teacher_workdir]
        assert teacher.name == f"single/depth/r18_softmax_embC/fold{e.labels['fold']}"
        assert teacher.config.loss.name == "softmax" and teacher.config.model.embedding_size == 0
    # The copy + freeze row is the run a distillation table names (shared work directory).
    assert "distillation/depth_to_rgb/r18_softmax_embC/fold0" in by_name
    # The journal's figures (appendix D, Table 3), the text's differences, and jaxreid's
    # fixed-BatchNorm reading shown against the copy + freeze figures.
    pub = table.published
    assert pub[copy_freeze]["Q:rgb G:depth"]["mAP"] == pytest.approx(0.306)
    assert pub[bn_fixed] == pub[copy_freeze]
    no_freeze = pub[("Copying of weights, no freezing of layers",)]
    no_copy = pub[("No copying of weights, no freezing of layers",)]
    drop = [pub[copy_freeze][p]["mAP"] - no_freeze[p]["mAP"] for p in RGBD[:2]]
    assert drop == pytest.approx([0.067, 0.035])  # the text: 6.8 % / 3.5 % (rounded cells)
    drop = [no_freeze[p]["mAP"] - no_copy[p]["mAP"] for p in RGBD[:2]]
    assert drop == pytest.approx([0.064, 0.058])  # the text: 6.4 % / 5.8 %
    if PAPERS is not None:
        with open(os.path.join(PAPERS, "hafner2018_cross_modal_distillation_thesis.txt")) as f:
            text = f.read()
        block = text[text.index("TABLE 3\n\nAnalysis of influence") :][:900]
        cells = [c for g in published.HAFNER2018_JOURNAL["table3"].values() for c in g.values()]
        printed = re.findall(r"\d+\.\d", block)
        assert [f"{v:.1f}" for c in cells for v in c] == printed  # in the journal's order
    from jaxreid.config import validate

    for e in grid.experiments:
        validate(e.config, num_devices=1)
    with pytest.raises(ValueError, match="paired RGB-D"):
        hafner("journal_table3,dataset=sysu")
    assert hafner("journal_table3,dataset=robotpku").tables[0].published == {}
