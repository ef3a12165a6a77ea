"""The paper grids (configs/grids/hafner2018.py, tekeli2019.py) and their published figures.

Structure (cheap, every table): the rows, folds and query/gallery columns of each grid are the
paper's, the recipes are the author's code's, and every published figure is the paper's text.
End to end (`test_every_grid_runs_on_the_test_trees`): every grid of both papers runs at the
smoke scale on the builders' test trees (the rows in GRID_RUNS, which between them run every
distinct method x dataset wiring once), and its written table has the paper's columns and, in
each cell, the published figure and reproduced − published.
"""

import csv
import math
import os
import re

import pytest

from jaxreid import experiments
from jaxreid import workdir as workdir_lib
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

# Every grid runs through `jaxreid.experiments.run_grid` at the `smoke` scale (one fold, width 8,
# 32x16 images, two steps; configs/grids/hafner2018.py `smoke`) on the builders' test trees,
# all grids of one dataset in ONE work directory, so that a run shared by several tables
# (Step I of Tables 11-16 is a row of Tables 2-4; Table 17's one-stream row is Table 5's) trains
# once. A run costs ~10 s of CPU time even with the compilation cache, and the grids hold 161
# distinct runs at smoke, so each grid runs the rows listed here: at least one per grid, and
# across the grids every distinct wiring (single-modal softmax and triplet/Adam/P x K, Step II
# after each, one-stream, zero-padding, the classical pipeline, Wu et al.'s SYSU-MM01 protocol
# for the one-stream and the distillation network, the distance layer of Tekeli 2019, each
# dataset's splits). The rows not run are the same code with other labels at smoke (R50 rows
# run a ResNet18, embeddings are capped at 16, other modality / direction / centre update), and
# the structure tests above check their configs.
TREES = {
    "biwi": "biwi_rgbd_id/dummy_data/distributed",
    "robotpku": "robotpku/dummy_data",
    "sysu": "sysu_mm01/dummy_data",
    "regdb": "regdb/dummy_data",
}
# grid argument (',smoke' is added) -> (dataset, the experiments run for it)
GRID_RUNS = {
    "hafner2018.py:table2": (
        "biwi",
        ["single/depth/r18_triplet/fold0", "single/depth/r50_softmax/fold0"],
    ),
    "hafner2018.py:table5": ("biwi", ["one_stream/r50/fold0"]),
    "hafner2018.py:table8": ("biwi", ["zero_pad/r50/fold0"]),
    "hafner2018.py:table11": (
        "biwi",
        ["single/depth/r50_softmax/fold0", "distillation/depth_to_rgb/r50_softmax/fold0"],
    ),
    "hafner2018.py:table12": (
        "biwi",
        ["single/depth/r18_triplet/fold0", "distillation/depth_to_rgb/r18_triplet/fold0"],
    ),
    "hafner2018.py:table17": (
        "biwi",
        ["classical/lomo_xqda/fold0", "one_stream/r50/fold0", "zero_pad/r50/fold0"],
    ),
    "hafner2018.py:figure35": (
        "biwi",
        ["single/depth/r50_softmax/fold0", "distillation/depth_to_rgb/r50_softmax/fold0"],
    ),
    "hafner2018.py:figure36": (
        "biwi",
        ["single/depth/r18_triplet/fold0", "distillation/depth_to_rgb/r18_triplet/fold0"],
    ),
    "hafner2018.py:table3": (
        "robotpku",
        ["single/depth/r50_softmax/fold0", "single/rgb/r18_triplet/fold0"],
    ),
    "hafner2018.py:table6": ("robotpku", ["one_stream/r50/fold0"]),
    "hafner2018.py:table9": ("robotpku", ["zero_pad/r50/fold0"]),
    "hafner2018.py:table13": (
        "robotpku",
        ["single/depth/r50_softmax/fold0", "distillation/depth_to_rgb/r50_softmax/fold0"],
    ),
    "hafner2018.py:table14": (
        "robotpku",
        ["single/rgb/r18_triplet/fold0", "distillation/rgb_to_depth/r18_triplet/fold0"],
    ),
    "hafner2018.py:table18": ("robotpku", ["one_stream/r50/fold0", "zero_pad/r50/fold0"]),
    "hafner2018.py:figure37": (
        "robotpku",
        ["single/depth/r50_softmax/fold0", "distillation/depth_to_rgb/r50_softmax/fold0"],
    ),
    "hafner2018.py:table4": (
        "sysu",
        ["single/infrared/r18_triplet/fold0", "single/rgb/r18_softmax/fold0"],
    ),
    "hafner2018.py:table7": ("sysu", ["one_stream/r18/fold0"]),
    "hafner2018.py:table10": ("sysu", ["zero_pad/r18/fold0"]),
    "hafner2018.py:table15": (
        "sysu",
        ["single/rgb/r18_softmax/fold0", "distillation/rgb_to_infrared/r18_softmax/fold0"],
    ),
    "hafner2018.py:table16": (
        "sysu",
        ["single/infrared/r18_triplet/fold0", "distillation/infrared_to_rgb/r18_triplet/fold0"],
    ),
    "hafner2018.py:table19": (
        "sysu",
        [
            "one_stream_sysu_protocol/r18/fold0",
            "single/infrared/r18_triplet/fold0",
            "distillation_sysu_protocol/infrared_to_rgb/r18_triplet/fold0",
        ],
    ),
    "tekeli2019.py:table1": ("sysu", ["beta0.7"]),
    "tekeli2019.py:table2": ("sysu", ["ema/l2/rank_l1"]),
    "tekeli2019.py:table3": ("sysu", ["ema_l2"]),
    "tekeli2019.py:table4": ("regdb", ["trial1"]),
}
# The columns the papers print: query/gallery pairs (Hafner 2018 §4.3.1; Tables 17/18 only the
# cross-modal two) or SYSU-MM01's search settings (Hafner 2018 Table 19 = Wu et al. 2017's
# protocol, Tekeli 2019 Tables 1-3), and the metrics.
BIWI_PAIRS = ["Q:RGB, G:D", "Q:D, G:RGB", "Q:RGB, G:RGB", "Q:D, G:D"]
SYSU_PAIRS = ["Q:RGB, G:I", "Q:I, G:RGB", "Q:RGB, G:RGB", "Q:I, G:I"]
SINGLE_PAIRS = {"RGB": ["Q:RGB, G:RGB"], "Depth": ["Q:D, G:D"], "Infrared": ["Q:I, G:I"]}
SETTINGS = ["all_single", "all_multi", "indoor_single", "indoor_multi"]
HAFNER_METRICS = ["R1", "R5", "R10", "mAP"]  # Hafner 2018 Tables 2-18
SYSU_METRICS = ["R1", "R10", "R20", "mAP"]  # Hafner 2018 Table 19, Tekeli 2019 Tables 1-4


def paper_columns(spec, row):
    """(inference modality labels, metric headers) the paper prints for a row of `spec`."""
    paper, name = spec.split(".py:")
    if paper == "tekeli2019":
        smoke_settings = ["all_single", "indoor_single"]  # `smoke`: two of the four settings
        pairs = {"table3": smoke_settings, "table4": ["visible_to_thermal"]}.get(
            name, ["all_single"]
        )
        return pairs, SYSU_METRICS
    if name == "table19":
        return ["all_single", "indoor_single"], SYSU_METRICS
    number = int(name[len("table") :]) if name.startswith("table") else 0
    if number in (2, 3, 4):
        return SINGLE_PAIRS[row[0]], HAFNER_METRICS
    pairs = SYSU_PAIRS if number in (7, 10, 15, 16) else BIWI_PAIRS
    return (pairs[:2] if number in (17, 18) else pairs), HAFNER_METRICS


def expected_cell(result, metric, reference):
    """(cell text, has a difference): the cell the runner's tables promise (jaxreid.experiments
    docstring), re-derived from one results.json entry: reproduced % to 2 decimals ('n/a' for
    collapsed features, '-' when undefined), then '[published, Δ reproduced − published]', or
    '[published]' when there is nothing to subtract."""
    if result.get("collapsed"):
        value = None
        text = "n/a"
    else:
        value = result.get(metric)
        if value is None and metric.startswith("rank"):
            value = result["cmc"][int(metric[4:]) - 1]
        value = None if value is None or math.isnan(value) else 100 * value  # NaN: '-'
        text = "-" if value is None else f"{value:.2f}"
    if reference is None:
        return text, False
    if value is None:
        return f"{text} [{100 * reference:.2f}]", False
    return f"{text} [{100 * reference:.2f}, Δ {value - 100 * reference:+.2f}]", True


def markdown_rows(markdown, label_columns):
    """{(row labels..., inference modality): {header: cell}} of the table in `markdown`."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    out = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        key = tuple(cells[: label_columns + 1])
        out[key] = dict(zip(header[label_columns + 1 :], cells[label_columns + 1 :]))
    return header, out


@pytest.fixture(scope="module")
def grid_workdirs(tmp_path_factory):
    """Runs every grid of GRID_RUNS (dataset by dataset, on demand) and returns
    {dataset: (workdir, {grid argument: status})}."""
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    root = tmp_path_factory.mktemp("grids")
    done = {}

    def run(dataset):
        if dataset in done:
            return done[dataset]
        workdir = str(root / dataset)  # one per dataset: the grids share runs
        overrides = [
            f"data.data_dir={data_dir}",
            f"data.manual_dir={os.path.join(ROOT, 'datasets', TREES[dataset])}",
        ]
        statuses = {}
        for arg, (home, names) in GRID_RUNS.items():
            if home != dataset:
                continue
            grid = experiments.load_grid(os.path.join(ROOT, "configs", "grids", f"{arg},smoke"))
            missing = set(names) - {e.name for e in grid.experiments}
            assert not missing, f"{arg}: no experiments {missing}"
            # `only` matches substrings: the names are whole, so each selects itself alone.
            statuses[arg] = experiments.run_grid(grid, workdir, only=names, overrides=overrides)
        for arg, (home, _) in GRID_RUNS.items():  # Tables with the runs later grids made.
            if home == dataset:
                grid = experiments.load_grid(os.path.join(ROOT, "configs", "grids", f"{arg},smoke"))
                experiments.write_summary(grid, workdir)
        done[dataset] = workdir, statuses
        return done[dataset]

    return run


@pytest.mark.parametrize("arg", list(GRID_RUNS))
def test_every_grid_runs_on_the_test_trees(grid_workdirs, arg):
    """The grid runs end to end and its written table has the paper's rows and columns, and in
    every cell the published figure and reproduced − published (re-derived from results.json
    and the papers' figures)."""
    dataset, _ = GRID_RUNS[arg]
    workdir, statuses = grid_workdirs(dataset)
    status = statuses[arg]
    assert not [s for s in status.values() if s.startswith("failed")], status
    run = {name for home, names in GRID_RUNS.values() if home == dataset for name in names}
    grid = experiments.load_grid(os.path.join(ROOT, "configs", "grids", f"{arg},smoke"))
    (table,) = grid.tables
    paper, name = arg.split(".py:")
    # The thesis draws Figures 35-37 as plots: their tables and curves have no published cells.
    figures = published.figures(paper, name) if name in published.PAPERS[paper] else {}
    # {row labels: results.json} of the rows the selected runs make in this grid.
    rows = {}
    for e in grid.experiments:
        if e.name in run and all(e.labels.get(k) == v for k, v in table.where.items()):
            row = tuple(str(e.labels[k]) for k in table.rows)
            rows[row] = workdir_lib.read_results(os.path.join(workdir, e.name))
    assert rows and all(r is not None for r in rows.values()), rows
    with open(os.path.join(workdir, f"{table.name}.md")) as f:
        markdown = f.read()
    assert ("Δ reproduced − published" in markdown) == bool(figures)
    header, cells = markdown_rows(markdown, len(table.rows))
    columns_seen, differences, published_cells = set(), 0, 0
    for row, results in rows.items():
        pairs, metrics = paper_columns(arg, row)
        assert header[len(table.rows) + 1 :] == metrics, header
        shown = {k[-1] for k in cells if k[:-1] == row}
        assert shown == set(pairs), (row, shown)
        for pair_key, result in results["test"].items():
            label = _pair_label(pair_key, result)
            if label not in pairs:
                continue
            columns_seen.add(label)
            reference_row = figures.get(row, {}).get(pair_key, {})
            for metric, title in zip(table.metrics, metrics):
                want, has_difference = expected_cell(result, metric, reference_row.get(metric))
                assert cells[row + (label,)][title] == want, (row, label, title)
                differences += has_difference
                published_cells += reference_row.get(metric) is not None
    assert {k[:-1] for k in cells} == set(rows)  # the rows run, no other
    assert columns_seen == {c for row in rows for c in paper_columns(arg, row)[0]}
    if figures:
        with open(os.path.join(workdir, f"{table.name}.csv")) as f:
            assert " published," in f.readline()
    for curve in grid.curves:  # Figures 35-37: the plotted data, against results.json
        with open(os.path.join(workdir, f"{curve.name}.csv")) as f:
            points = {(p["pair"], p["embedding"], p["metric"]): p for p in csv.DictReader(f)}
        # The thesis plots mAP and rank-1 of Q:RGB G:D, Q:D G:RGB and Q:D G:D (§5.2.3.4).
        plotted = [
            (p, m)
            for p in ("Q:rgb G:depth", "Q:depth G:rgb", "Q:depth G:depth")
            for m in ("mAP", "rank1")
        ]
        assert len(points) == len(rows) * len(plotted)
        for (embedding,), results in rows.items():
            for pair, metric in plotted:
                point, result = points[(pair, embedding, metric)], results["test"][pair]
                value = float("nan") if result.get("collapsed") else result[metric]
                # 6 decimals in the CSV; NaN (undefined or collapsed) as 'nan'.
                assert float(point["mean"]) == pytest.approx(value, abs=1e-6, nan_ok=True)
    # The RobotPKU tree's images differ, so its runs are defined and not collapsed: every
    # cell with a published figure shows its difference (all but Table 18's zero-padding row,
    # illegible in the thesis text, and Figure 37, a plot, have figures).
    if dataset == "robotpku":
        assert differences == published_cells and (published_cells > 0 or not figures)


def _pair_label(key, result):
    """'Q:rgb G:depth' -> 'Q:RGB, G:D' (the tables' modality labels); a setting stays as is."""
    short = {"rgb": "RGB", "depth": "D", "infrared": "I", "thermal": "T"}
    if "query_modality" in result and key.startswith("Q:"):
        return f"Q:{short[result['query_modality']]}, G:{short[result['gallery_modality']]}"
    return key


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
        assert c.method == "distillation" and d.source_modality == "depth"
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
