"""The thesis's cross-modal experiment grids on the built-in synthetic dataset.

  python -m jaxreid.experiments --grid=configs/grids/synthetic.py:table11 --workdir=/tmp/jaxreid/t11

The quick, data-free analogues of the thesis's tables: each grid names the table or figure it
mirrors. The same tables on the real datasets, with the author's recipes and the published
figures beside each cell, are configs/grids/hafner2018.py (and tekeli2019.py).

The argument is `<grid>[,option...]`:
  methods    ResNet18 on synthetic RGB-D: one-stream, the one-stream network with the main
             job's BNNeck + cross-modal WRT (configs/synthetic.py), zero-padding,
             distillation depth->RGB and RGB->depth (Hafner 2018 §5.2 / Table 17
             comparison), the distance-based score layer (Tekeli & Can 2019: EMA centres,
             L2), AGW and AGW with channel augmentation (configs/agw.py, configs/agw_ca.py,
             at the grid's scale and batch).
             With the option 'infrared': the same on synthetic RGB-infrared (distillation
             infrared->RGB and RGB->infrared, identity-mean targets: the images are unpaired).
  table11    distillation, softmax Step I: {ResNet18, ResNet50} x {depth->RGB, RGB->depth}
             (Hafner 2018 Table 11; Figure 31 is its cross-modal mAP columns).
  table12    the same with the batch-hard triplet loss (Adam) in Step I (Table 12).
  table15    {ResNet18, ResNet50} x {infrared->RGB, RGB->infrared}; the synthetic infrared
             images are unpaired, so Step II's targets are identity means (Table 15, §5.2.3.3;
             with the option 'triplet': Table 16).
  embedding  depth->RGB with embedding sizes 32, 128, 256, 512, 1024, 2048 and the
             classification layer 'C': ResNet50 softmax (Figures 35 and 37) and ResNet18
             triplet (Figure 36, no classification layer).
  ablation   journal Table 3 (appendix D): ResNet18 softmax, classification-layer embedding,
             depth->RGB: copy + freeze / copy, no freeze / no copy, no freeze, plus the frozen
             BatchNorm statistics updating (the author's code) instead of fixed.
Options:
  folds=N    N folds (default 3); summary.md adds Welch's t-test of each row against the best.
  infrared   (methods) the RGB-infrared set instead of RGB-D. Fold k uses synthetic generator seed k and training seed k
             (the synthetic split is fixed, so folds are independent draws of the dataset).
  full       the published ResNet width 64: the thesis's architecture at 64x32 pixels,
             hours per grid on 2 CPU cores.
  quick      tiny networks on a tiny dataset (tests and smoke checks).
Default scale: ResNet width 16 on the default synthetic dataset (100/20/50 identities,
64x32 pixels), Step I 1500 steps, Step II 1000 steps; table11 takes about 45 minutes on a
2-core CPU (see the README).
"""

import copy
import importlib.util
import os

from jaxreid.config import default_config
from jaxreid.experiments import Curve, Experiment, Grid, Table

GRIDS = ("methods", "table11", "table12", "table15", "embedding", "ablation")
ARCHITECTURES = {"R18": "resnet18", "R50": "resnet50"}
DIRECTIONS = {  # label: (data.modalities, source modality)
    "Depth to RGB": (("rgb", "depth"), "depth"),
    "RGB to Depth": (("rgb", "depth"), "rgb"),
    "Infrared to RGB": (("rgb", "infrared"), "infrared"),
    "RGB to Infrared": (("rgb", "infrared"), "rgb"),
}
HERE = os.path.dirname(os.path.abspath(__file__))
RGBD_PAIRS = ("Q:rgb G:depth", "Q:depth G:rgb", "Q:rgb G:rgb", "Q:depth G:depth")


def get_grid(arg: str = "") -> Grid:
    name, *options = [a for a in arg.split(",") if a] or ["table11"]
    if name not in GRIDS:
        raise ValueError(f"Unknown grid {name!r}; expected one of {GRIDS}.")
    folds, scale, loss, infrared = 3, "default", "softmax", False
    for option in options:
        if option.startswith("folds="):
            folds = int(option.split("=", 1)[1])
        elif option == "infrared" and name == "methods":
            infrared = True
        elif option in ("quick", "full"):
            scale = option
        elif option == "triplet":
            loss = "triplet"
        else:
            raise ValueError(
                f"Unknown grid option {option!r}; expected folds=N, quick, full, triplet or "
                "(methods) infrared."
            )
    if name == "table12":
        name, loss = "table11", "triplet"
    if name == "methods":
        return _methods(range(folds), scale, loss, infrared)
    build = {
        "table11": _table11,
        "table15": _table15,
        "embedding": _embedding,
        "ablation": _ablation,
    }[name]
    return build(range(folds), scale, loss)


# --- configs ---------------------------------------------------------------------------------


def base_config(scale: str, fold: int, *, backbone: str = "resnet18", loss: str = "softmax"):
    """`jaxreid.config`'s default settings at the grid's scale, for one fold."""
    config = default_config()
    config.seed = fold
    config.data.synthetic.seed = fold
    config.model.backbone = backbone
    if loss == "triplet":
        # Hafner 2018 §4.3.2: Adam for the triplet loss (learning rate: ours).
        config.loss.name = "triplet"
        config.optim.name = "adam"
        config.optim.learning_rate = 3e-4
        config.optim.weight_decay = 0.0
    if scale == "default":
        config.model.width = 16
        config.num_train_steps = 1500
        config.eval_every_steps = 500
        config.checkpoint_every_steps = 500
        config.distill.num_train_steps = 1000
        config.distill.eval_every_steps = 250
    elif scale == "quick":
        config.model.width = 8
        config.model.embedding_size = 32
        config.data.image_size = (32, 16)
        config.data.synthetic.num_train_ids = 12
        config.data.synthetic.num_val_ids = 6
        config.data.synthetic.num_test_ids = 6
        config.batch.num_identities = 4
        config.batch.images_per_identity = 4
        config.batch.eval_batch_size = 64
        config.num_train_steps = 8
        config.log_every_steps = 4
        config.eval_every_steps = 8
        config.checkpoint_every_steps = 8
        config.optim.warmup_steps = 2
        config.eval.repeats = 2
        config.distill.num_train_steps = 8
        config.distill.eval_every_steps = 8
    # Step II optimiser (see configs/synthetic_distill.py).
    config.distill.optim.learning_rate = 1e-4
    config.distill.optim.schedule = "cosine"
    return config


def distill_config(scale, fold, direction, **kwargs):
    config = base_config(scale, fold, **kwargs)
    config.method = "distillation"
    config.data.modalities, config.distill.source_modality = DIRECTIONS[direction]
    return config


def _slug(text) -> str:
    return str(text).lower().replace(" ", "_")


# --- grids -----------------------------------------------------------------------------------


def _configs_module(name: str):
    """configs/<name>.py (configs are files, not a package)."""
    path = os.path.join(os.path.dirname(HERE), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"jaxreid_configs_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def distance_layer_config(scale, fold, **kwargs):
    """The distance-based score layer of Tekeli & Can 2019 (EMA centres, L2 score; ranked by
    L1 on the pooled features), as configs/tekeli.py sets it, at the grid's scale."""
    config = base_config(scale, fold, **kwargs)
    config.model.head = "distance"
    config.model.embedding_size = 0
    config.model.dropout_rate = 0.0
    config.model.distance.center_update = "ema"
    config.model.distance.metric = "l2"
    config.model.distance.momentum = 0.7  # Tekeli 2019 Table 1.
    config.eval.feature = "pooled"
    config.eval.metric = "l1"
    config.optim.name = "momentum"
    return config


def agw_config(scale, fold, channel_augmentation=False, **kwargs):
    """AGW (configs/agw.py) at the grid's scale, batch and number of steps: its 81 epochs
    mapped onto config.num_train_steps; from random weights, so one learning rate for all
    layers (as configs/agw.py:synthetic)."""
    config = base_config(scale, fold, **kwargs)
    _configs_module("agw").apply_agw(config)
    config.optim.backbone_lr_factor = 1.0
    config.optim.steps_per_epoch = max(1, config.num_train_steps // 81)
    if scale == "quick":  # 8 steps: lr 0.1 from random weights overflows (configs/agw.py)
        config.optim.warmup_epochs, config.optim.milestone_epochs = 1, (2, 3)
        config.optim.learning_rate = 0.01
    if channel_augmentation:
        _configs_module("agw_ca").apply_channel_augmentation(config)
    return config


def _methods(folds, scale, loss, infrared=False) -> Grid:
    other = "infrared" if infrared else "depth"
    label = "Infrared" if infrared else "Depth"
    experiments = []
    for fold in folds:
        one = base_config(scale, fold, loss=loss)
        zero = base_config(scale, fold, loss=loss)
        zero.data.input_layout = "zero_pad"
        # The BNNeck + WRT head and losses (the previous main job's); the grid's optimiser and
        # learning rate, so that the row differs from 'One-stream' in these alone.
        recipe = base_config(scale, fold, loss=loss)
        _configs_module("synthetic").apply_bnneck_wrt(recipe)
        runs = [
            ("One-stream", one),
            ("One-stream, BNNeck + cross-modal WRT", recipe),
            ("Zero-padding", zero),
        ]
        for direction in (f"{label} to RGB", f"RGB to {label}"):
            runs.append(
                (f"Distillation, {direction}", distill_config(scale, fold, direction, loss=loss))
            )
        runs += [
            ("Distance layer (EMA, L2)", distance_layer_config(scale, fold)),
            ("AGW", agw_config(scale, fold)),
            ("AGW + channel augmentation", agw_config(scale, fold, channel_augmentation=True)),
        ]
        for method, config in runs:
            config.data.modalities = ("rgb", other)
            slug = _slug(method).replace(",", "").replace("(", "").replace(")", "")
            experiments.append(
                Experiment(
                    name=f"{slug.replace('+', 'plus')}/fold{fold}",
                    config=config,
                    labels={"method": method, "fold": fold},
                )
            )
    pairs = (f"Q:rgb G:{other}", f"Q:{other} G:rgb", "Q:rgb G:rgb", f"Q:{other} G:{other}")
    data = "RGB-infrared" if infrared else "RGB-D"
    return Grid(
        name=f"Synthetic {data}: cross-modal methods (ResNet18)",
        description=__doc__.split("\n\n")[0] + f"\n\nResNet18, {loss}, scale {scale}.",
        experiments=experiments,
        tables=[
            Table(
                "methods_infrared" if infrared else "methods",
                f"Cross-modal methods, synthetic {data} (Hafner 2018 §5.2)",
                rows=("method",),
                headers=("Method",),
                pairs=pairs,
            )
        ],
    )


def _table11(folds, scale, loss) -> Grid:
    experiments = []
    for fold in folds:
        for direction in ("Depth to RGB", "RGB to Depth"):
            for arch, backbone in ARCHITECTURES.items():
                config = distill_config(scale, fold, direction, backbone=backbone, loss=loss)
                experiments.append(
                    Experiment(
                        name=f"{_slug(direction)}/{arch.lower()}/fold{fold}",
                        config=config,
                        labels={
                            "direction": direction,
                            "architecture": arch,
                            "loss": loss,
                            "fold": fold,
                        },
                    )
                )
    number = 11 if loss == "softmax" else 12
    title = (
        f"Synthetic analogue of Hafner 2018 Table {number}: cross-modal distillation, "
        f"Step I {loss}, Step II MSE"
    )
    return Grid(
        name=title,
        description=f"Scale {scale}, {len(folds)} folds.",
        experiments=experiments,
        tables=[
            Table(
                f"table{number}",
                title,
                rows=("direction", "architecture"),
                headers=("Transfer direction", "FE"),
                pairs=RGBD_PAIRS,
            )
        ],
    )


def _table15(folds, scale, loss) -> Grid:
    experiments = []
    for fold in folds:
        for direction in ("Infrared to RGB", "RGB to Infrared"):
            for arch, backbone in ARCHITECTURES.items():
                config = distill_config(scale, fold, direction, backbone=backbone, loss=loss)
                experiments.append(
                    Experiment(
                        name=f"{_slug(direction)}/{arch.lower()}/fold{fold}",
                        config=config,
                        labels={"direction": direction, "architecture": arch, "fold": fold},
                    )
                )
    number = 15 if loss == "softmax" else 16
    title = (
        f"Synthetic analogue of Hafner 2018 Table {number}: RGB-infrared distillation "
        f"with identity-mean targets, Step I {loss}"
    )
    return Grid(
        name=title,
        description=f"Scale {scale}, {len(folds)} folds.",
        experiments=experiments,
        tables=[
            Table(
                f"table{number}",
                title,
                rows=("direction", "architecture"),
                headers=("Transfer direction", "FE"),
            )
        ],
    )


EMBEDDINGS = (32, 128, 256, 512, 1024, 2048, "C")


def _embedding(folds, scale, loss) -> Grid:
    experiments = []
    setups = [
        ("Figure 35/37", "R50", "softmax", EMBEDDINGS),
        ("Figure 36", "R18", "triplet", EMBEDDINGS[:-1]),
    ]
    for fold in folds:
        for figure, arch, step1_loss, sizes in setups:
            for size in sizes:
                config = distill_config(
                    scale, fold, "Depth to RGB", backbone=ARCHITECTURES[arch], loss=step1_loss
                )
                config.model.embedding_size = 0 if size == "C" else size
                experiments.append(
                    Experiment(
                        name=f"{arch.lower()}_{step1_loss}/emb_{size}/fold{fold}",
                        config=config,
                        labels={
                            "figure": figure,
                            "architecture": arch,
                            "loss": step1_loss,
                            "embedding": size,
                            "fold": fold,
                        },
                    )
                )
    return Grid(
        name="Synthetic analogue of Hafner 2018 Figures 35-37: embedding layer and size",
        description=(
            f"Depth to RGB distillation; scale {scale}, {len(folds)} folds. 'C' = the "
            "classification layer (size = number of training identities) as embedding."
        ),
        experiments=experiments,
        tables=[
            Table(
                "embedding",
                "Embedding layer and size (all pairs)",
                rows=("figure", "embedding"),
                headers=("Setup", "Embedding"),
                pairs=RGBD_PAIRS,
            )
        ],
        curves=[
            Curve(
                "figure35",
                "Figure 35/37 analogue: ResNet50, softmax",
                x="embedding",
                where={"figure": "Figure 35/37"},
                pairs=("Q:rgb G:depth", "Q:depth G:rgb", "Q:depth G:depth"),
            ),
            Curve(
                "figure36",
                "Figure 36 analogue: ResNet18, triplet",
                x="embedding",
                where={"figure": "Figure 36"},
                pairs=("Q:rgb G:depth", "Q:depth G:rgb", "Q:depth G:depth"),
            ),
        ],
    )


def _ablation(folds, scale, loss) -> Grid:
    experiments = []
    for fold in folds:
        full = distill_config(scale, fold, "Depth to RGB", loss=loss)
        full.model.embedding_size = 0  # Table 3: classification-layer embedding.
        owner = f"copy_freeze/fold{fold}"
        variants = [("Copying of weights, freezing of layers", owner, {})]
        variants.append(
            (
                "Copying of weights, no freezing of layers",
                f"copy_no_freeze/fold{fold}",
                {"freeze_from": "none"},
            )
        )
        variants.append(
            (
                "No copying of weights, no freezing of layers",
                f"no_copy_no_freeze/fold{fold}",
                {"freeze_from": "none", "copy_weights": False},
            )
        )
        variants.append(
            (
                "Copying, freezing, frozen BN statistics updating",
                f"copy_freeze_bn_update/fold{fold}",
                {"frozen_bn": "update"},
            )
        )
        for label, name, changes in variants:
            config = copy.deepcopy(full)
            if name != owner:  # Share the first variant's Step I.
                config.distill.teacher_workdir = f"{owner}/step1"
            for key, value in changes.items():
                config.distill[key] = value
            experiments.append(
                Experiment(name=name, config=config, labels={"scenario": label, "fold": fold})
            )
    return Grid(
        name="Synthetic analogue of Hafner 2018 appendix D, Table 3: training scenarios",
        description=(
            f"ResNet18, {loss}, classification-layer embedding, depth to RGB; scale "
            f"{scale}, {len(folds)} folds. All variants share one Step I per fold."
        ),
        experiments=experiments,
        tables=[
            Table(
                "ablation",
                "Knowledge-transfer scenarios (journal Table 3)",
                rows=("scenario",),
                headers=("Scenario",),
                pairs=("Q:rgb G:depth", "Q:depth G:rgb"),
            )
        ],
    )
