"""RobotPKU (RGB-depth): the one-stream ResNet18 of Hafner 2018 Table 6, one fold.

  python -m jaxreid.datasets.robotpku --manual_dir=/data/RobotPKU   # once, builds the TFDS set
  python -m jaxreid.main --config=configs/robotpku.py:fold=0 --workdir=/tmp/jaxreid/robotpku0 \\
      --config.data.manual_dir=/data/RobotPKU --config.model.pretrained=/data/resnet18.pth

The 90 persons split into 50 design / 40 test (thesis appendix B.2); fold k of the 3-fold
cross-validation holds out 10 design persons for validation (§4.3.1), drawn with
`config.data.fold_seed`. Test: all four query/gallery modality pairs with the thesis protocol
(single-gallery-shot, 10 repeats, at most 50 queries per person). Run folds 0, 1, 2 and
average (the experiment runner does this). The builder reads the processed layout of the
thesis author's code (the only published layout it knows; see datasets/robotpku/README.md).
Thesis figures (Table 6, ResNet18, ImageNet-initialised): mAP 9.34% (Q:RGB G:D),
12.73% (Q:D G:RGB). jaxreid: not yet measured (needs the data).

Arguments: `fold=<0..2>`, `backbone=resnet50`, `quick`.
"""

from jaxreid.config import apply_quick, default_config, parse_args


def get_config(arg: str = ""):
    args = parse_args(arg, ("fold", "backbone", "quick"))
    config = default_config()
    config.data.name = "robotpku"
    config.data.modalities = ("rgb", "depth")
    config.data.train_split = "design"
    config.data.test_split = "test"
    config.data.val_split = ""
    config.data.fold = int(args.get("fold") or 0)
    config.data.num_val_ids = 10  # Hafner 2018 appendix B.2.
    config.data.image_size = (256, 128)
    config.data.normalization = "imagenet"
    config.model.backbone = args.get("backbone") or "resnet18"
    config.model.width = 64  # The published network, so ImageNet weights load.
    config.optim.learning_rate = 0.01
    config.num_train_steps = 5000
    config.eval_every_steps = 500
    config.checkpoint_every_steps = 500
    config.log_every_steps = 100
    if "quick" in args:
        apply_quick(config)
    return config
