"""AGW, the visible-infrared baseline of Ye et al. 2021 ("Deep Learning for Person
Re-identification: A Survey and Outlook", TPAMI, §4.1; code
github.com/mangye16/Cross-Modal-Re-ID-baseline), on SYSU-MM01 (default), RegDB or the
synthetic RGB-D set.

  python -m jaxreid.datasets.sysu_mm01 --manual_dir=/data/SYSU-MM01   # once
  python -m jaxreid.main --config=configs/agw.py --workdir=/tmp/jaxreid/agw_sysu \\
      --config.data.manual_dir=/data/SYSU-MM01 --config.model.pretrained=/data/resnet50.pth
  python -m jaxreid.main --config=configs/agw.py:regdb,trial=1 --workdir=/tmp/jaxreid/agw_regdb1 \\
      --config.data.manual_dir=/data/RegDB --config.model.pretrained=/data/resnet50.pth
  python -m jaxreid.main --config=configs/agw.py:synthetic --workdir=/tmp/jaxreid/agw_synthetic

The published settings (AGW code train.py / model.py / loss.py):
  network   ResNet50 from ImageNet weights; modality-specific stem (conv1, bn1, ReLU,
            max-pool) and shared stages ('layer1' on: config.model.shared_from); non-local
            blocks after blocks 2-3 of layer2 and 3-5 of layer3 (non_local (0, 2, 3, 0));
            last stage at stride 1; GeM pooling with p = 3 (fixed); BNNeck (BatchNorm without
            shift, bias-free classifier); retrieval on the L2-normalised feature after the BN
            (here: cosine distance on the BNNeck feature; config.eval.feature='pooled' ranks
            the one before, the code's second figure).
  input     288 x 144, ImageNet normalisation, zero padding 10 + random crop, horizontal flip.
  batches   8 identities x 4 images per modality (P = 8, K = 8 over two modalities).
  loss      softmax cross-entropy on the BNNeck logits (no label smoothing) + weighted
            regularised triplet on the pooled feature (no margin).
  optimiser SGD, Nesterov momentum 0.9, weight decay 5e-4, lr 0.1 for the BNNeck and
            classifier and 0.01 for the rest (backbone_lr_factor 0.1); linear warm-up over
            10 epochs, x0.1 at epochs 20 and 50, 81 epochs (schedule 'agw').
  epochs    the code's epoch is (images of the larger modality) / 32 steps: 695 on SYSU-MM01
            (22,258 visible images of its 395 training + validation identities; jaxreid
            trains on the 296 training identities and keeps 99 for validation), 64 on RegDB
            (2,060 per trial).

Published figures (rank-1 / mAP, %; Ye et al. 2021 TPAMI and the AGW code's README, which
notes some fluctuation between runs):
  SYSU-MM01 all-search single-shot  47.50 / 47.65
  RegDB visible -> thermal          70.05 / 66.37
Reaches with jaxreid: not yet measured on SYSU-MM01 or RegDB (needs the data and an
accelerator). `:synthetic` (seed 0, 2026-11-30): test mAP 24.48 / 25.68 across modalities
(Q:RGB G:D / Q:D G:RGB), 91.61 / 67.58 within (RGB / depth); 22 min 43 s alone on a 2-core
CPU (README, "Visible-infrared components").

Arguments (comma-separated): `regdb` (RegDB, `trial=<1..10>`, default 1), `synthetic` (the
built-in synthetic RGB-D set, a ResNet18 of width 16 from scratch that fits a 2-core CPU),
`quick` (a reduced network for a few steps, e.g. on a builder's dummy data).
"""

from jaxreid.config import apply_quick, default_config, parse_args

ARGS = ("regdb", "trial", "synthetic", "quick")
AGW_EPOCHS = 81  # range(start_epoch, 81) in the AGW code's train.py


def agw_config(arg: str = ""):
    """The AGW config for `arg` (see the module docstring); `parse_args` names."""
    args = parse_args(arg, ARGS)
    config = default_config()
    # Dataset.
    if "synthetic" in args:
        _synthetic(config)
    elif "regdb" in args:
        trial = int(args.get("trial") or 1)
        if not 1 <= trial <= 10:
            raise ValueError(f"configs/agw.py: trial={trial}; expected 1..10.")
        config.data.name = "regdb"
        config.data.modalities = ("rgb", "thermal")
        config.data.train_split = f"train_{trial}"
        config.data.test_split = f"test_{trial}"
        config.data.val_split = ""
        config.eval.test_protocol = "regdb"
        config.optim.steps_per_epoch = 64  # 2,060 visible images / 32
    else:
        config.data.name = "sysu_mm01"
        config.data.modalities = ("rgb", "infrared")
        config.eval.test_protocol = "sysu"
        config.optim.steps_per_epoch = 695  # 22,258 visible images / 32
    if "synthetic" not in args:
        config.data.image_size = (288, 144)
        config.data.normalization = "imagenet"
        config.data.pad_crop = 10
        config.model.backbone = "resnet50"
        config.model.width = 64  # The published network, so ImageNet weights load.
        config.num_train_steps = AGW_EPOCHS * config.optim.steps_per_epoch
        config.eval_every_steps = 5 * config.optim.steps_per_epoch
        config.checkpoint_every_steps = config.optim.steps_per_epoch
        config.log_every_steps = 50
    config.batch.num_identities = 8
    config.batch.images_per_identity = 8  # 4 per modality
    apply_agw(config)
    if "synthetic" in args:
        # From random weights every layer is new: the backbone's tenth of the learning rate
        # (which protects ImageNet weights) would only slow it down.
        config.optim.backbone_lr_factor = 1.0
    if "quick" in args:
        apply_quick(config)
        config.model.non_local = (0, 1, 1, 0) if "synthetic" in args else (0, 2, 3, 0)
        # From random weights on a builder's few dummy images, lr 0.1 makes the activations
        # overflow within a few steps (measured: 1e9 after 4 steps on the SYSU-MM01 tree).
        config.optim.learning_rate = 0.01
        config.optim.steps_per_epoch = 2
        config.optim.warmup_epochs = 2
        config.optim.milestone_epochs = (5, 8)
    return config


def apply_agw(config) -> None:
    """AGW's network, loss, optimiser and evaluation settings (the module docstring) on
    `config`, whatever its dataset, input size and schedule length; the grids use it too."""
    # Network. Non-local blocks after the last 2 blocks of stage 2 and 3 of stage 3 (ResNet18
    # has 2 blocks per stage: capped).
    deep = config.model.backbone in ("resnet50", "resnet34")
    config.model.non_local = (0, 2, 3, 0) if deep else (0, 2, 2, 0)
    config.model.head = "bnneck"
    config.model.pooling = "gem"
    config.model.gem_p = 3.0
    config.model.gem_learnable = False
    config.model.shared_from = "layer1"
    config.model.last_stride = 1
    config.model.dropout_rate = 0.0
    # Loss.
    config.loss.name = "softmax+wrt"
    config.loss.triplet_feature = "pooled"
    config.loss.label_smoothing = 0.0
    config.loss.mining = "batch"
    # Optimiser.
    config.optim.name = "sgd"
    config.optim.learning_rate = 0.1
    config.optim.momentum = 0.9
    config.optim.weight_decay = 5e-4
    config.optim.backbone_lr_factor = 0.1
    config.optim.schedule = "agw"
    config.optim.warmup_steps = 0
    config.optim.warmup_epochs = 10
    config.optim.milestone_epochs = (20, 50)
    # Evaluation: the code L2-normalises the features and ranks by Euclidean distance, the
    # same order as the cosine distance.
    config.eval.metric = "cosine"
    config.eval.feature = ""  # the BNNeck feature
    config.eval.flip_test = False


def _synthetic(config) -> None:
    """A ResNet18 of width 16 from scratch on the synthetic RGB-D set (as configs/synthetic.py,
    the main job)."""
    config.data.modalities = ("rgb", "depth")
    config.data.synthetic.num_train_ids = 400
    config.model.backbone = "resnet18"
    config.model.width = 16
    config.num_train_steps = 6000
    config.eval_every_steps = 1000
    # 100 steps per "epoch": warm-up over 1,000 steps, x0.1 at 2,000 and 5,000.
    config.optim.steps_per_epoch = 100


def get_config(arg: str = ""):
    return agw_config(arg)
