"""Hafner 2018 (MSc thesis, TU Delft) Tables 2-19, Figures 35-37 and the journal paper's
(appendix D) Table 3 on the real datasets.

  python -m jaxreid.experiments --grid=configs/grids/hafner2018.py:table11,pretrained=/data/tv \\
      --workdir=/runs/hafner --override=data.manual_dir=/data/BIWI

One work directory can hold every table of one dataset: experiments are named by what they
train ('single/depth/r18_softmax/fold0', 'one_stream/r50/fold2', ...), so a table that needs a
run another table made (Step I of Tables 11-16 is the single-modal network of Tables 2-4,
Table 17's one-stream row is Table 5's; journal Table 3's copy + freeze row is named as a
distillation table names it) finds it finished and reuses it.

The argument is `<table>[,option...]`:
  table2 table3 table4     single-modal networks: {RGB, depth or infrared} x {R18, R50} x
                           {triplet, softmax} (BIWI, RobotPKU, SYSU-MM01).
  table5 table6 table7     one-stream network, R18 and R50, all four query/gallery pairs.
  table8 table9 table10    zero-padding network (3 channels: modality 1 as grey in R,
                           modality 2 in B, G zero; §5.2.2).
  table11 .. table16       cross-modal distillation {depth->RGB, RGB->depth} (or infrared) x
                           {R18, R50}; Step I softmax (11, 13, 15) or triplet (12, 14, 16).
                           Tables 14 and 16 keep the rows the thesis prints (its other
                           triplet networks did not train, §4.3.2).
  table17 table18          BIWI / RobotPKU comparison: WHOS / LOMO x Euclidean / XQDA
                           (configs/classical.py), zero-padding and one-stream R50, and
                           distillation R50 depth->RGB with the thesis's best embedding
                           (the classification layer 'C' on BIWI, 256 on RobotPKU; §5.2.3.4).
  table19                  SYSU-MM01 with Wu et al. 2017's protocol (infrared queries, RGB
                           gallery, all/indoor x single/multi-shot): one-stream R18 and
                           distillation. The thesis does not say which distillation network
                           its row is: this grid uses infrared->RGB R18 with a triplet Step I,
                           the best cross-modal row of Tables 15/16 (jaxreid's reading).
  figure35 figure36 figure37
                           distillation depth->RGB against the embedding size (32, 128, 256,
                           512, 1024, 2048 and 'C' = the classification layer): R50 softmax
                           on BIWI (35), R18 triplet on BIWI (36, no 'C'), R50 softmax on
                           RobotPKU (37). `python -m jaxreid.visualization.paper_figures`
                           draws them (and Figures 31 / 33 from tables 11-14).
  journal_table3           appendix D's Table 3, training scenarios of the knowledge transfer
                           on BIWI: distillation depth->RGB, R18 softmax, classification-layer
                           embedding, with no copying + no freezing / copying + no freezing /
                           copying + freezing (transfer-reid.py lines 86-87:
                           --dont-freeze-model, --dont-load-weights), the frozen BatchNorm
                           statistics updating as the author's code ran it (retrainer.py
                           lines 79-86 only set requires_grad=False; line 143 model.train()),
                           plus copying + freezing with F's function kept exactly
                           (distill.frozen_bn='fixed', jaxreid's reading of the text): that
                           row shows the copy + freeze row's published figures too.
Options:
  dataset=biwi|robotpku|sysu  run the table's layout on another dataset (no published
                           figures are shown then); default the table's own dataset.
  folds=N                  BIWI / RobotPKU cross-validation folds (default 3, §4.3.1);
                           SYSU-MM01 has its own split and one run per row.
  pretrained=DIR           ImageNet initialisation: DIR holds torchvision's resnet18*.pth
                           and resnet50*.pth (or .safetensors / .npz); without it the
                           networks start from random weights, which is not the thesis's
                           setting (the grid's description says so).
  text_protocol            test with the protocol the thesis's text describes
                           (eval.protocol='hafner_text') instead of its code's
                           ('hafner_code', the default: it produced the published tables).
  smoke                    the test suite's scale: one fold, width 8, 32x16 images, two
                           steps of each training, ResNet18 for the R50 rows, lr <= 1e-3,
                           P x K batches of 8;
                           wiring only, it measures nothing (hafner2018_recipes.py `smoke`).

The recipes are those of the thesis author's code, file and line cited in
configs/grids/hafner2018_recipes.py (softmax SGD 0.1, x0.1 at epoch 40 of 100, batches of 64
drawn at random; triplet Adam 2e-4, P x K = 16 x 4; Step II SGD 2e-6 for 30 epochs; inputs
256x128, ImageNet mean/std, the author's RandomSizedRectCrop and a random flip).
"""

import copy
import dataclasses
import importlib.util
import os

from jaxreid.evaluation import published
from jaxreid.experiments import Curve, Experiment, Grid, Table

HERE = os.path.dirname(os.path.abspath(__file__))


def _sibling(name: str):
    """configs/grids/<name>.py as a module (grid files are loaded by path, not imported)."""
    spec = importlib.util.spec_from_file_location(
        f"jaxreid_grid_{name}", os.path.join(HERE, f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


recipes = _sibling("hafner2018_recipes")
TRAIN_IMAGES, ARCHITECTURES = recipes.TRAIN_IMAGES, recipes.ARCHITECTURES
OTHER, LABEL = recipes.OTHER, recipes.LABEL
single, cross_modal, distillation = recipes.single, recipes.cross_modal, recipes.distillation
classical = recipes.classical

EMBEDDINGS = (32, 128, 256, 512, 1024, 2048, "C")
# The protocol of the author's code (issue 27; jaxreid.evaluation.hafner_code), which produced
# the published tables; 'hafner_text' is the one the thesis's text describes.
CODE_PROTOCOL = "hafner_code"

TABLES = {  # name: (kind, dataset, Step I loss)
    "table2": ("single", "biwi", None),
    "table3": ("single", "robotpku", None),
    "table4": ("single", "sysu", None),
    "table5": ("one_stream", "biwi", "softmax"),
    "table6": ("one_stream", "robotpku", "softmax"),
    "table7": ("one_stream", "sysu", "softmax"),
    "table8": ("zero_pad", "biwi", "softmax"),
    "table9": ("zero_pad", "robotpku", "softmax"),
    "table10": ("zero_pad", "sysu", "softmax"),
    "table11": ("distillation", "biwi", "softmax"),
    "table12": ("distillation", "biwi", "triplet"),
    "table13": ("distillation", "robotpku", "softmax"),
    "table14": ("distillation", "robotpku", "triplet"),
    "table15": ("distillation", "sysu", "softmax"),
    "table16": ("distillation", "sysu", "triplet"),
    "table17": ("comparison", "biwi", None),
    "table18": ("comparison", "robotpku", None),
    "table19": ("sysu_comparison", "sysu", None),
    "figure35": ("embedding", "biwi", "softmax"),
    "figure36": ("embedding", "biwi", "triplet"),
    "figure37": ("embedding", "robotpku", "softmax"),
    "journal_table3": ("scenarios", "biwi", "softmax"),
}
# Rows the thesis prints for the triplet distillation tables (§5.2.3.2, §5.2.3.3).
DISTILLATION_ROWS = {
    "table14": (("rgb", "R18"), ("rgb", "R50")),
    "table16": (("infrared", "R18"), ("rgb", "R18")),
}
# Embedding of the distillation row of the comparison tables (§5.3, Tables 17 / 18).
COMPARISON_EMBEDDING = {"biwi": "C", "robotpku": 256}
CLASSICAL_ROWS = (("whos", "euclidean"), ("whos", "xqda"), ("lomo", "euclidean"), ("lomo", "xqda"))
# Journal Table 3's rows: (experiment name prefix, scenario, config.distill changes). The
# copy + freeze row is named as Tables 11-16 name a distillation, so one run serves both.
BN_FIXED_ROW = "Copying of weights, freezing of layers, frozen BatchNorm fixed (jaxreid)"
SCENARIOS = (
    (
        "distillation_no_copy_no_freeze",
        "No copying of weights, no freezing of layers",
        {"freeze_from": "none", "copy_weights": False},
    ),
    (
        "distillation_no_freeze",
        "Copying of weights, no freezing of layers",
        {"freeze_from": "none"},
    ),
    ("distillation", "Copying of weights, freezing of layers", {}),
    ("distillation_frozen_bn_fixed", BN_FIXED_ROW, {"frozen_bn": "fixed"}),
)


class Options:
    """The parsed `<table>[,option...]` argument."""

    def __init__(self, arg: str):
        name, *options = [a for a in arg.split(",") if a] or ["table11"]
        if name not in TABLES:
            raise ValueError(
                f"configs/grids/hafner2018.py: unknown table {name!r}; expected one of "
                f"{tuple(TABLES)}."
            )
        self.name = name
        self.kind, self.home, self.loss = TABLES[name]
        self.dataset, self.folds, self.pretrained = self.home, 3, ""
        self.smoke, self.protocol = False, CODE_PROTOCOL
        for option in options:
            key, _, value = option.partition("=")
            if key == "dataset" and value in TRAIN_IMAGES:
                self.dataset = value
            elif key == "folds" and value.isdigit() and int(value) > 0:
                self.folds = int(value)
            elif key == "pretrained" and value:
                self.pretrained = value
            elif option == "smoke":
                self.smoke = True
            elif option == "text_protocol":
                self.protocol = "hafner_text"
            else:
                raise ValueError(
                    f"configs/grids/hafner2018.py: bad option {option!r}; expected "
                    f"dataset=<{'|'.join(TRAIN_IMAGES)}>, folds=<N >= 1>, pretrained=<dir>, "
                    "text_protocol or smoke."
                )
        if self.dataset == "sysu" and self.kind in ("comparison", "embedding", "scenarios"):
            raise ValueError(f"{name} needs paired RGB-D data (biwi or robotpku), not sysu.")
        if self.dataset != "sysu" and self.kind == "sysu_comparison":
            raise ValueError("table19 is SYSU-MM01's protocol: dataset=sysu only.")
        if self.dataset == "sysu" or self.smoke:
            self.folds = 1  # SYSU-MM01: its own split, §4.3.1.
        self.weights = recipes.weight_files(self.pretrained) if self.pretrained else {}


def _unique(experiments):
    seen, out = set(), []
    for e in experiments:
        if e.name not in seen:
            seen.add(e.name)
            out.append(e)
    return out


def _relabel(experiment: Experiment, **labels) -> Experiment:
    return Experiment(experiment.name, experiment.config, {**experiment.labels, **labels})


def scenarios(opts, fold) -> list[Experiment]:
    """Journal Table 3 (appendix D): Step I and the four Step II scenarios of one fold,
    distillation depth->RGB, R18 softmax, classification-layer embedding ('C', formula 4)."""
    step1, step2 = distillation(opts, OTHER[opts.dataset], "R18", "softmax", fold, "C")
    out = [step1]
    for prefix, scenario, changes in SCENARIOS:
        config = copy.deepcopy(step2.config)
        for key, value in changes.items():
            config.distill[key] = value
        name = prefix + step2.name[len("distillation") :]
        labels = {**step2.labels, "kind": "scenario", "scenario": scenario}
        out.append(Experiment(name=name, config=config, labels=labels))
    return out


def comparison_rows(opts, fold, architecture, kinds, distill, method, protocol="pairs"):
    """The deep-network rows of a comparison table (Tables 17-19): the `kinds` networks and
    one distillation row labelled `method`, `distill` = (source, Step I loss, embedding)
    (its Step I keeps its own labels)."""
    out = []
    for kind in kinds:
        network = {"zero_pad": "Zero-padding", "one_stream": "One-stream"}[kind]
        e = cross_modal(opts, kind, architecture, fold, protocol)
        out.append(
            _relabel(e, kind="comparison", method=f"{network} network, Resnet{architecture[1:]}")
        )
    source, loss, embedding = distill
    step1, step2 = distillation(opts, source, architecture, loss, fold, embedding, protocol)
    return out + [step1, _relabel(step2, kind="comparison", method=method)]


def _title(opts) -> str:
    dataset = {"biwi": "BIWI RGBD-ID", "robotpku": "RobotPKU", "sysu": "SYSU-MM01"}[opts.dataset]
    if opts.kind == "scenarios":
        return f"Hafner 2018 appendix D (journal) Table 3: {dataset}"
    if opts.kind == "embedding":
        return f"Hafner 2018 {opts.name.replace('figure', 'Figure ')}: {dataset}"
    return f"Hafner 2018 Table {opts.name[len('table') :]}: {dataset}"


def _published(opts) -> dict:
    """The table's published figures ({} on another dataset than the paper's)."""
    if opts.dataset != opts.home:
        return {}
    if opts.kind == "scenarios":
        figures = published.figures("hafner2018_journal", "table3")
        # jaxreid's reading of the copy + freeze row (F's function kept exactly) beside it.
        figures[(BN_FIXED_ROW,)] = figures[("Copying of weights, freezing of layers",)]
        return figures
    if opts.name in published.HAFNER2018:
        return published.figures("hafner2018", opts.name)
    return {}


def get_grid(arg: str = "") -> Grid:
    opts = Options(arg)
    folds = range(opts.folds)
    other = OTHER[opts.dataset]
    pairs = ("Q:rgb G:" + other, f"Q:{other} G:rgb", "Q:rgb G:rgb", f"Q:{other} G:{other}")
    experiments, tables, curves = [], [], []
    title = _title(opts)
    metrics = ("rank1", "rank5", "rank10", "mAP")
    if opts.kind == "single":
        for fold in folds:
            for modality in ("rgb", other):
                for architecture in ARCHITECTURES:
                    for loss in ("triplet", "softmax"):
                        experiments.append(single(opts, modality, architecture, loss, fold))
        tables.append(
            Table(
                opts.name,
                f"{title}, single-modal networks",
                rows=("modality", "architecture", "loss"),
                headers=("Modality", "Feature extractor", "Loss"),
                where={"kind": "single"},
            )
        )
    elif opts.kind in ("one_stream", "zero_pad"):
        for fold in folds:
            for architecture in ARCHITECTURES:
                experiments.append(cross_modal(opts, opts.kind, architecture, fold))
        network = "One-stream" if opts.kind == "one_stream" else "Zero-padding"
        tables.append(
            Table(
                opts.name,
                f"{title}, {network.lower()} network, softmax",
                rows=("architecture",),
                headers=("Feature extractor",),
                where={"kind": opts.kind},
                pairs=pairs,
            )
        )
    elif opts.kind == "distillation":
        rows = DISTILLATION_ROWS.get(
            opts.name if opts.dataset == opts.home else "",
            tuple((s, a) for s in (other, "rgb") for a in ARCHITECTURES),
        )
        for fold in folds:
            for source, architecture in rows:
                experiments += distillation(opts, source, architecture, opts.loss, fold)
        tables.append(
            Table(
                opts.name,
                f"{title}, cross-modal distillation, Step I {opts.loss}, Step II MSE",
                rows=("direction", "architecture"),
                headers=("Transfer direction", "FE"),
                where={"kind": "distillation"},
                pairs=pairs,
            )
        )
    elif opts.kind == "scenarios":
        for fold in folds:
            experiments += scenarios(opts, fold)
        tables.append(
            Table(
                opts.name,
                f"{title}, training scenarios of the knowledge transfer (distillation "
                f"{LABEL[other].lower()} to RGB, R18 softmax, classification-layer embedding)",
                rows=("scenario",),
                headers=("Scenario",),
                where={"kind": "scenario"},
                pairs=pairs[:2],
            )
        )
    elif opts.kind == "comparison":
        embedding = COMPARISON_EMBEDDING[opts.dataset]
        method = f"Cross-modal distillation network, Resnet50, embedding {embedding}"
        for fold in folds:
            for features, matching in CLASSICAL_ROWS:
                experiments.append(classical(opts, features, matching, fold))
            experiments += comparison_rows(
                opts,
                fold,
                "R50",
                ("zero_pad", "one_stream"),
                ("depth", "softmax", embedding),
                method,
            )
        tables.append(
            Table(
                opts.name,
                f"{title}, comparison with the conventional methods (cross-modal pairs)",
                rows=("method",),
                headers=("Approach",),
                where={"kind": "comparison"},
                pairs=pairs[:2],
            )
        )
    elif opts.kind == "sysu_comparison":
        experiments += comparison_rows(
            opts,
            0,
            "R18",
            ("one_stream",),
            ("infrared", "triplet", 128),
            "Cross-modal distillation network",
            protocol="sysu",
        )
        metrics = ("rank1", "rank10", "rank20", "mAP")
        tables.append(
            Table(
                opts.name,
                f"{title}, Wu et al. 2017's protocol (infrared query, RGB gallery)",
                rows=("method",),
                headers=("Method",),
                where={"kind": "comparison"},
                metrics=metrics,
            )
        )
    else:  # embedding
        architecture = "R18" if opts.loss == "triplet" else "R50"
        sizes = EMBEDDINGS if opts.loss == "softmax" else EMBEDDINGS[:-1]
        for fold in folds:
            for size in sizes:
                experiments += distillation(opts, "depth", architecture, opts.loss, fold, size)
        title = (
            f"{title}, distillation depth to RGB, {architecture} {opts.loss}, against the "
            "embedding size"
        )
        tables.append(
            Table(
                f"{opts.name}_table",  # <figure>.csv is the curve paper_figures plots.
                title,
                rows=("embedding",),
                headers=("Embedding",),
                where={"kind": "distillation"},
                pairs=pairs,
            )
        )
        curves.append(
            Curve(
                opts.name,
                title,
                x="embedding",
                where={"kind": "distillation"},
                pairs=(pairs[0], pairs[1], pairs[3]),
                metrics=("mAP", "rank1"),
            )
        )
    figures = _published(opts)
    if figures:
        tables = [dataclasses.replace(t, published=figures, metrics=metrics) for t in tables]
    init = (
        f"ImageNet initialisation from {opts.pretrained}"
        if opts.pretrained
        else "random initialisation (pass pretrained=DIR for the thesis's ImageNet weights)"
    )
    description = (
        f"{len(folds)} fold(s); the author's-code recipes (configs/grids/hafner2018_recipes.py); "
        f"{init}; test protocol eval.protocol={opts.protocol!r}"
        + (" (smoke scale: wiring only)" if opts.smoke else "")
        + "."
    )
    return Grid(
        name=title,
        description=description,
        experiments=_unique(experiments),
        tables=tables,
        curves=curves,
    )
