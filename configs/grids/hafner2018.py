"""Hafner 2018 (MSc thesis, TU Delft) Tables 2-19 and Figures 35-37 on the real datasets.

  python -m jaxreid.experiments --grid=configs/grids/hafner2018.py:table11,pretrained=/data/tv \\
      --workdir=/runs/hafner --override=data.manual_dir=/data/BIWI

One work directory can hold every table of one dataset: experiments are named by what they
train ('single/depth/r18_softmax/fold0', 'one_stream/r50/fold2', ...), so a table that needs a
run another table made (Step I of Tables 11-16 is the single-modal network of Tables 2-4,
Table 17's one-stream row is Table 5's) finds it finished and reuses it.

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
                           wiring only, it measures nothing (see `smoke`).

The recipes are those of the thesis author's code (frhf/cross-modal-distillation-
reidentification; the papers give no learning rates or epochs):
  softmax   SGD with Nesterov momentum 0.9, weight decay 5e-4, lr 0.1, x0.1 at epoch 40,
            100 epochs, batches of 64 images drawn at random, dropout 0.5, embedding 128
            (open-reid/examples/softmax_loss.py lines 145-158 and 225-231; README.md's
            commands: -batch-size 64 --epochs 100 --features 128).
  triplet   Adam lr 2e-4, weight decay 5e-4, P x K = 16 x 4, dropout 0, margin 0.5, constant
            lr for the 100 epochs (triplet_loss.py lines 147-158 and 223-239).
  Step II   SGD (Nesterov, momentum 0.9, weight decay 5e-4) at lr 2e-6 on the summed MSE,
            30 epochs of batches of 64, validated every epoch; the checkpoint with the best
            sum of the two cross-modal validation mAPs is tested
            (transfer-reid/retrainer.py lines 145-154 and 186-197; transfer-reid.py 78-79).
  inputs    256x128 (softmax_loss.py line 94), ImageNet mean/std, random horizontal flip;
            no depth centring and no cosine schedule (jaxreid's own choices, off here).
An epoch is the training images of the thesis's Table 1 (per modality, both for the
one-stream and zero-padding networks) over the batch size.
"""

import dataclasses
import importlib.util
import math
import os

from jaxreid.evaluation import published
from jaxreid.experiments import Curve, Experiment, Grid, Table

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = os.path.dirname(HERE)

# Hafner 2018 Table 1: training images per modality (the fold's training part of the design
# set; SYSU-MM01: its training split).
TRAIN_IMAGES = {
    "biwi": {"rgb": 9245, "depth": 9245},
    "robotpku": {"rgb": 7400, "depth": 7400},
    "sysu": {"rgb": 20274, "infrared": 9929},
}
OTHER = {"biwi": "depth", "robotpku": "depth", "sysu": "infrared"}
LABEL = {"rgb": "RGB", "depth": "Depth", "infrared": "Infrared"}
ARCHITECTURES = {"R18": "resnet18", "R50": "resnet50"}
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
}
# Rows the thesis prints for the triplet distillation tables (§5.2.3.2, §5.2.3.3).
DISTILLATION_ROWS = {
    "table14": (("rgb", "R18"), ("rgb", "R50")),
    "table16": (("infrared", "R18"), ("rgb", "R18")),
}
# Embedding of the distillation row of the comparison tables (§5.3, Tables 17 / 18).
COMPARISON_EMBEDDING = {"biwi": "C", "robotpku": 256}
CLASSICAL_ROWS = (("whos", "euclidean"), ("whos", "xqda"), ("lomo", "euclidean"), ("lomo", "xqda"))
CLASSICAL_NAMES = {"whos": "WHOS", "lomo": "LOMO", "euclidean": "Euclidean", "xqda": "XQDA"}


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
        if self.dataset == "sysu" and self.kind in ("comparison", "embedding"):
            raise ValueError(f"{name} needs paired RGB-D data (biwi or robotpku), not sysu.")
        if self.dataset != "sysu" and self.kind == "sysu_comparison":
            raise ValueError("table19 is SYSU-MM01's protocol: dataset=sysu only.")
        if self.dataset == "sysu" or self.smoke:
            self.folds = 1  # SYSU-MM01: its own split, §4.3.1.
        self.weights = _weight_files(self.pretrained) if self.pretrained else {}


def _weight_files(directory: str) -> dict[str, str]:
    """{'resnet18': path, 'resnet50': path} of torchvision weight files in `directory`."""
    if not os.path.isdir(directory):
        raise ValueError(
            f"configs/grids/hafner2018.py: pretrained={directory!r} is not a directory; expected "
            "one holding torchvision's resnet18*.pth and resnet50*.pth."
        )
    found = {}
    for backbone in ARCHITECTURES.values():
        names = sorted(
            f
            for f in os.listdir(directory)
            if f.startswith(backbone) and f.endswith((".pth", ".safetensors", ".npz"))
        )
        if not names:
            raise ValueError(
                f"configs/grids/hafner2018.py: no {backbone}*.pth (.safetensors, .npz) in "
                f"pretrained={directory!r}; found {sorted(os.listdir(directory))}."
            )
        found[backbone] = os.path.join(directory, names[0])
    return found


def _dataset_config(dataset: str, fold: int):
    """configs/<dataset>.py: the data settings and splits (3-fold design set or SYSU's split)."""
    name = {"biwi": "biwi", "robotpku": "robotpku", "sysu": "sysu"}[dataset]
    spec = importlib.util.spec_from_file_location(
        f"jaxreid_config_{name}", os.path.join(CONFIGS, f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(f"fold={fold}" if dataset != "sysu" else "")
    if dataset == "sysu":
        # The thesis's four-pair tables (4, 7, 10, 15, 16) test on SYSU's test split with its
        # validation split for the checkpoint (§4.1.3: 296 / 99 / 96 identities).
        config.eval.test_protocol = "pairs"
    return config


def _steps(epochs: float, images: int, batch: int) -> int:
    return max(1, math.ceil(epochs * images / batch))


def recipe(opts: Options, config, loss: str, modalities: tuple, architecture: str):
    """The author's-code recipe (module docstring) for one network on `modalities`."""
    config.data.modalities = modalities
    config.data.image_size = (256, 128)  # softmax_loss.py line 94 (ResNets).
    config.data.normalization = "imagenet"
    config.data.center_depth = False  # Neither paper centres depth (jaxreid's option).
    config.data.pad_crop = 0  # The code's augmentation: RandomSizedRectCrop + flip.
    config.data.random_flip = True
    config.model.backbone = ARCHITECTURES[architecture]
    config.model.width = 64
    config.model.embedding_size = 128  # §4.3.2; README.md: --features 128.
    config.model.pretrained = opts.weights.get(config.model.backbone, "")
    config.optim.momentum = 0.9
    config.optim.weight_decay = 5e-4
    config.optim.warmup_steps = 0
    config.optim.backbone_lr_factor = 1.0  # softmax_loss.py: one lr for model.parameters().
    images = sum(TRAIN_IMAGES[opts.dataset][m] for m in modalities)
    if loss == "softmax":
        config.loss.name = "softmax"
        config.model.dropout_rate = 0.5
        config.optim.name = "sgd"  # Nesterov
        config.optim.learning_rate = 0.1
        config.optim.schedule = "step"
        config.optim.step_boundaries = (0.4,)  # x0.1 at epoch 40 of 100.
        config.optim.step_factor = 0.1
        config.batch.sampler = "random"
        config.batch.num_identities, config.batch.images_per_identity = 16, 4  # 64 images
    else:
        config.loss.name = "triplet"
        config.loss.triplet_margin = 0.5
        config.model.dropout_rate = 0.0
        config.optim.name = "adam"
        config.optim.learning_rate = 2e-4
        config.optim.schedule = "constant"  # triplet_loss.py: constant up to epoch 100.
        config.batch.sampler = "pk"
        config.batch.num_identities, config.batch.images_per_identity = 16, 4
    batch = config.batch.num_identities * config.batch.images_per_identity
    config.num_train_steps = _steps(100, images, batch)
    config.eval_every_steps = _steps(10, images, batch)  # softmax_loss.py: every 10 epochs.
    config.checkpoint_every_steps = config.eval_every_steps
    config.log_every_steps = 100
    config.eval.protocol = opts.protocol
    config.eval.val_protocol = opts.protocol  # The code validates as it tests.
    # §4.3.1: the same-camera rule holds on SYSU-MM01's test set only (relaxed for BIWI,
    # RobotPKU and every validation set; evaluate_cm in the author's code).
    config.eval.camera_rule = opts.dataset == "sysu" and opts.protocol == "hafner_code"
    config.eval.max_queries_per_id = 50
    # Step II (used when config.method is 'distillation').
    target = [m for m in modalities if m != config.distill.source_modality]
    target_images = TRAIN_IMAGES[opts.dataset][target[0]] if target else images
    config.distill.optim.name = "sgd"
    config.distill.optim.learning_rate = 2e-6
    config.distill.optim.momentum = 0.9
    config.distill.optim.weight_decay = 5e-4
    config.distill.optim.schedule = "constant"
    config.distill.optim.warmup_steps = 0
    config.distill.loss_reduction = "sum"  # nn.MSELoss(size_average=False)
    config.distill.early_stopping = "val_mAP"  # Sum (= mean) of the cross-modal val mAPs.
    config.distill.num_train_steps = _steps(30, target_images, 64)
    config.distill.eval_every_steps = _steps(1, target_images, 64)
    if opts.smoke:
        smoke(config)
    return config


def smoke(config):
    """The test suite's scale: two steps, width 8, 32x16 images, the builders' test trees.

    It skips what other tests cover and what would only cost compile time: the R50 rows run a
    ResNet18 (tests/test_models.py checks the ResNet50), and the learning rate is capped at
    1e-3 (0.1 from random weights at width 8 overflows in two steps: a wiring test needs
    finite features, not the recipe's optimum)."""
    config.model.backbone = "resnet18"
    config.optim.learning_rate = min(config.optim.learning_rate, 1e-3)
    config.model.width = 8
    if config.model.embedding_size:
        config.model.embedding_size = min(config.model.embedding_size, 16)
    config.model.pretrained = ""
    config.data.image_size = (32, 16)
    config.data.num_val_ids = 1
    # The builders' test trees hold fewer training images than one batch of the 'random'
    # sampler (it draws without replacement): P x K batches, which repeat images, instead.
    config.batch.sampler = "pk"
    config.batch.num_identities = 2
    config.batch.images_per_identity = 4  # Batch 8: a multiple of the tests' 8 devices.
    config.batch.eval_batch_size = 32
    config.num_train_steps = config.eval_every_steps = config.checkpoint_every_steps = 2
    config.log_every_steps = 1
    config.distill.num_train_steps = config.distill.eval_every_steps = 2
    config.eval.repeats = 2
    config.eval.sysu_sampler = "seeded"
    config.eval.sysu_settings = ("all_single", "indoor_single")
    return config


# --- experiments -----------------------------------------------------------------------------


def _slug(architecture, loss, embedding=128):
    suffix = "" if embedding == 128 else f"_emb{embedding}"
    return f"{architecture.lower()}_{loss}{suffix}"


def single(opts, modality, architecture, loss, fold, embedding=128) -> Experiment:
    """A single-modal network (Tables 2-4; Step I of the distillation)."""
    config = recipe(opts, _dataset_config(opts.dataset, fold), loss, (modality,), architecture)
    config.model.embedding_size = 0 if embedding == "C" else embedding
    if opts.smoke and embedding != "C":
        config.model.embedding_size = min(config.model.embedding_size, 16)
    return Experiment(
        name=f"single/{modality}/{_slug(architecture, loss, embedding)}/fold{fold}",
        config=config,
        labels={
            "kind": "single",
            "modality": LABEL[modality],
            "architecture": architecture,
            "loss": loss.capitalize(),
            "embedding": embedding,
            "fold": fold,
        },
    )


def cross_modal(opts, kind, architecture, fold, test_protocol="pairs") -> Experiment:
    """The one-stream or zero-padding network (Tables 5-10), softmax (§5.2.1, §5.2.2)."""
    modalities = ("rgb", OTHER[opts.dataset])
    config = recipe(opts, _dataset_config(opts.dataset, fold), "softmax", modalities, architecture)
    if kind == "zero_pad":
        config.data.input_layout = "zero_pad"
    suffix = ""
    if test_protocol != "pairs":
        config.eval.test_protocol = test_protocol
        config.eval.camera_rule = False  # Wu et al.'s protocol has its own camera rules.
        suffix = f"_{test_protocol}_protocol"
    return Experiment(
        name=f"{kind}{suffix}/{architecture.lower()}/fold{fold}",
        config=config,
        labels={"kind": kind + suffix, "architecture": architecture, "fold": fold},
    )


def distillation(
    opts, source, architecture, loss, fold, embedding=128, test_protocol="pairs"
) -> list[Experiment]:
    """Step I (shared, a `single` experiment) and Step II of one distillation row."""
    step1 = single(opts, source, architecture, loss, fold, embedding)
    modalities = ("rgb", OTHER[opts.dataset])
    config = recipe(opts, _dataset_config(opts.dataset, fold), loss, modalities, architecture)
    config.method = "distillation"
    config.distill.source_modality = source
    config.distill.teacher_workdir = step1.name
    config.model.embedding_size = step1.config.model.embedding_size
    # Step II's batches: 64 images drawn at random (transfer-reid.py line 79).
    if not opts.smoke:
        config.batch.sampler = "random"
        config.batch.num_identities, config.batch.images_per_identity = 16, 4
    suffix = ""
    if test_protocol != "pairs":
        config.eval.test_protocol = test_protocol
        config.eval.camera_rule = False  # Wu et al.'s protocol has its own camera rules.
        suffix = f"_{test_protocol}_protocol"
    target = next(m for m in modalities if m != source)
    direction = f"{LABEL[source]} to {LABEL[target]}"
    name = f"distillation{suffix}/{source}_to_{target}/{_slug(architecture, loss, embedding)}"
    step2 = Experiment(
        name=f"{name}/fold{fold}",
        config=config,
        labels={
            "kind": "distillation" + suffix,
            "direction": direction,
            "architecture": architecture,
            "loss": loss.capitalize(),
            "embedding": embedding,
            "fold": fold,
        },
    )
    return [step1, step2]


def classical(opts, features, matching, fold) -> Experiment:
    spec = importlib.util.spec_from_file_location(
        "jaxreid_config_classical", os.path.join(CONFIGS, "classical.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(
        f"dataset={opts.dataset},features={features},matching={matching},fold={fold}"
    )
    config.eval.protocol = opts.protocol
    config.data.center_depth = False
    if opts.smoke:
        config.data.num_val_ids = 1
        config.eval.repeats = 2
        config.classical.batch_size = 16
        # WHOS: height % 16, width % 8, width >= 24; LOMO: >= 40 pixels each way.
        config.classical.image_size = (48, 40)
    return Experiment(
        name=f"classical/{features}_{matching}/fold{fold}",
        config=config,
        labels={
            "kind": "comparison",
            "method": f"{CLASSICAL_NAMES[features]}, {CLASSICAL_NAMES[matching]}",
            "fold": fold,
        },
    )


def _unique(experiments):
    seen, out = set(), []
    for e in experiments:
        if e.name not in seen:
            seen.add(e.name)
            out.append(e)
    return out


def _relabel(experiment: Experiment, **labels) -> Experiment:
    return Experiment(experiment.name, experiment.config, {**experiment.labels, **labels})


def get_grid(arg: str = "") -> Grid:
    opts = Options(arg)
    folds = range(opts.folds)
    other = OTHER[opts.dataset]
    pairs = ("Q:rgb G:" + other, f"Q:{other} G:rgb", "Q:rgb G:rgb", f"Q:{other} G:{other}")
    experiments, tables, curves = [], [], []
    number = opts.name[len("table") :] if opts.name.startswith("table") else ""
    dataset_title = {"biwi": "BIWI RGBD-ID", "robotpku": "RobotPKU", "sysu": "SYSU-MM01"}
    title = f"Hafner 2018 Table {number}: {dataset_title[opts.dataset]}"
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
    elif opts.kind == "comparison":
        embedding = COMPARISON_EMBEDDING[opts.dataset]
        for fold in folds:
            for features, matching in CLASSICAL_ROWS:
                experiments.append(classical(opts, features, matching, fold))
            for kind, label in (("zero_pad", "Zero-padding"), ("one_stream", "One-stream")):
                e = cross_modal(opts, kind, "R50", fold)
                experiments.append(
                    _relabel(e, kind="comparison", method=f"{label} network, Resnet50")
                )
            step1, step2 = distillation(opts, "depth", "R50", "softmax", fold, embedding)
            experiments.append(step1)
            experiments.append(
                _relabel(
                    step2,
                    kind="comparison",
                    method=(f"Cross-modal distillation network, Resnet50, embedding {embedding}"),
                )
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
        e = cross_modal(opts, "one_stream", "R18", 0, test_protocol="sysu")
        experiments.append(_relabel(e, kind="comparison", method="One-stream network, Resnet18"))
        step1, step2 = distillation(opts, "infrared", "R18", "triplet", 0, test_protocol="sysu")
        experiments += [
            step1,
            _relabel(step2, kind="comparison", method="Cross-modal distillation network"),
        ]
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
        figure = opts.name.replace("figure", "Figure ")
        title = (
            f"Hafner 2018 {figure}: {dataset_title[opts.dataset]}, distillation depth to RGB, "
            f"{architecture} {opts.loss}, against the embedding size"
        )
        tables.append(
            Table(
                opts.name,
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
    if opts.dataset == opts.home and opts.name in published.HAFNER2018:
        figures = published.figures("hafner2018", opts.name)
        tables = [dataclasses.replace(t, published=figures, metrics=metrics) for t in tables]
    init = (
        f"ImageNet initialisation from {opts.pretrained}"
        if opts.pretrained
        else "random initialisation (pass pretrained=DIR for the thesis's ImageNet weights)"
    )
    description = (
        f"{len(folds)} fold(s); the author's-code recipes (configs/grids/hafner2018.py); "
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
