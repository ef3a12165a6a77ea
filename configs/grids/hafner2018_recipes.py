"""The networks of configs/grids/hafner2018.py: each one's recipe, config and experiment name.

configs/grids/hafner2018.py says which networks make up each table; this module says how
one network is trained (`recipe`), on which dataset config (`dataset_config`), and names it
(`single`, `cross_modal`, `distillation`, `classical`), so that tables sharing a network share
its run.

The recipes are those of the thesis author's code (frhf/cross-modal-distillation-
reidentification; the papers give no learning rates or epochs):
  softmax   SGD with Nesterov momentum 0.9, weight decay 5e-4, lr 0.1, x0.1 at epoch 40,
            100 epochs, batches of 64 images drawn at random, dropout 0.5, embedding 128
            (open-reid/examples/softmax_loss.py lines 145-158 and 225-231; README.md's
            commands: -batch-size 64 --epochs 100 --features 128).
  triplet   Adam lr 2e-4, weight decay 5e-4, P x K = 16 x 4, dropout 0, margin 0.5, constant
            lr for the 100 epochs (triplet_loss.py lines 147-158 and 223-239).
  Step II   SGD (Nesterov, momentum 0.9, weight decay 5e-4) at lr 2e-6 on the summed MSE,
            30 epochs of batches of 16 drawn at random (the README's command passes
            --batch-size 16; the script's default is 64), dropout 0.5, the frozen layers'
            BatchNorm statistics updating (train() mode), validated every epoch; the
            checkpoint with the best sum of the two cross-modal validation mAPs is tested
            (transfer-reid/retrainer.py lines 79-86, 143, 145-154 and 186-197;
            transfer-reid.py 57, 78-80).
  inputs    256x128 (softmax_loss.py line 94), ImageNet mean/std; training images get the
            author's RandomSizedRectCrop (64-100 % of the area, height / width 2-3, resized
            back) and a random horizontal flip (softmax_loss.py lines 45-46, triplet_loss.py
            45-46, retrainer.py 240-241; jaxreid.data.rect_crop), no pad-and-crop;
            no depth centring and no cosine schedule (jaxreid's own choices, off here).
An epoch is the training images of the thesis's Table 1 (per modality, both for the
one-stream and zero-padding networks) over the batch size.

`smoke` scales any recipe down to the test suite's size (wiring only). This file is loaded by
path from hafner2018.py (it has no get_grid).
"""

import importlib.util
import math
import os

from jaxreid.experiments import Experiment

CONFIGS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Hafner 2018 Table 1: training images per modality (the fold's training part of the design
# set; SYSU-MM01: its training split).
TRAIN_IMAGES = {
    "biwi": {"rgb": 9245, "depth": 9245},
    "robotpku": {"rgb": 7400, "depth": 7400},
    "sysu": {"rgb": 20274, "infrared": 9929},
}
ARCHITECTURES = {"R18": "resnet18", "R50": "resnet50"}
OTHER = {"biwi": "depth", "robotpku": "depth", "sysu": "infrared"}
LABEL = {"rgb": "RGB", "depth": "Depth", "infrared": "Infrared"}
STEP2_BATCH = 16  # README.md line 52: transfer-reid.py ... --batch-size 16
CLASSICAL_NAMES = {"whos": "WHOS", "lomo": "LOMO", "euclidean": "Euclidean", "xqda": "XQDA"}


def weight_files(directory: str) -> dict[str, str]:
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


def dataset_config(dataset: str, fold: int):
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


def recipe(opts, config, loss: str, modalities: tuple, architecture: str):
    """The author's-code recipe (module docstring) for one network on `modalities`.

    `opts` is the grid's parsed argument (configs/grids/hafner2018.py `Options`: its
    dataset, weights, protocol and smoke fields)."""
    config.data.modalities = modalities
    config.data.image_size = (256, 128)  # softmax_loss.py line 94 (ResNets).
    config.data.normalization = "imagenet"
    config.data.center_depth = False  # Neither paper centres depth (jaxreid's option).
    # The code's augmentation: RandomSizedRectCrop, then the flip (softmax_loss.py lines
    # 45-46, triplet_loss.py 45-46, the one-stream / zero-padding scripts 51-52, Step II's
    # retrainer.py 240-241); jaxreid's pad-and-crop is off.
    config.data.augment.random_sized_rect_crop = True
    config.data.pad_crop = 0
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
    # Frozen layers keep updating their BatchNorm statistics (and the head its dropout, 0.5:
    # transfer-reid.py line 80 passes it to Retrainer, line 57): retrainer.py lines 79-86 only
    # set requires_grad=False and line 143 puts the whole model in train(). jaxreid's reading,
    # F's function kept exactly ('fixed'), is journal_table3's extra row.
    config.distill.frozen_bn = "update"
    # Batches of 16: the README's Step II command passes --batch-size 16 (transfer-reid.py's
    # default, line 79, is 64).
    config.distill.num_train_steps = _steps(30, target_images, STEP2_BATCH)
    config.distill.eval_every_steps = _steps(1, target_images, STEP2_BATCH)
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


# --- one network's experiment -----------------------------------------------------------------------------


def _slug(architecture, loss, embedding=128):
    suffix = "" if embedding == 128 else f"_emb{embedding}"
    return f"{architecture.lower()}_{loss}{suffix}"


def single(opts, modality, architecture, loss, fold, embedding=128) -> Experiment:
    """A single-modal network (Tables 2-4; Step I of the distillation)."""
    config = recipe(opts, dataset_config(opts.dataset, fold), loss, (modality,), architecture)
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
    config = recipe(opts, dataset_config(opts.dataset, fold), "softmax", modalities, architecture)
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
    config = recipe(opts, dataset_config(opts.dataset, fold), loss, modalities, architecture)
    config.method = "distillation"
    config.distill.source_modality = source
    config.distill.teacher_workdir = step1.name
    config.model.embedding_size = step1.config.model.embedding_size
    # Step II's batches: STEP2_BATCH images drawn at random (the README's transfer-reid.py
    # command); dropout 0.5 before the head (transfer-reid.py line 80), whatever Step I used.
    config.model.dropout_rate = 0.5
    if not opts.smoke:
        config.batch.sampler = "random"
        config.batch.num_identities, config.batch.images_per_identity = STEP2_BATCH // 4, 4
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
