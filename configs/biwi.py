"""BIWI RGBD-ID (RGB-depth): the one-stream ResNet18 of Hafner 2018 Table 5, one fold.

  python -m jaxreid.datasets.biwi_rgbd_id --manual_dir=/data/BIWI   # once, builds the TFDS set
  python -m jaxreid.main --config=configs/biwi.py:fold=0 --workdir=/tmp/jaxreid/biwi0 \\
      --config.data.manual_dir=/data/BIWI --config.model.pretrained=/data/resnet18.pth

The 78 instances split into 40 design / 38 test (thesis appendix B.1); fold k of the 3-fold
cross-validation holds out 8 design instances for validation (§4.3.1), drawn with
`config.data.fold_seed`. Test: all four query/gallery modality pairs with the thesis protocol
(single-gallery-shot, 10 repeats, at most 50 queries per person). Run folds 0, 1, 2 and
average (the experiment runner does this). `layout=processed` reads the thesis author's
processed images instead of cropping the distributed frames.
Thesis figures (Table 5, ResNet18, ImageNet-initialised): mAP 14.55% (Q:RGB G:D),
20.09% (Q:D G:RGB), 88.15% (RGB), 54.23% (depth). jaxreid: not yet measured (needs the data).

Arguments: `fold=<0..2>`, `backbone=resnet50`, `layout=processed`, `quick`.
"""

from jaxreid.config import apply_quick, default_config, parse_args


def get_config(arg: str = ""):
    args = parse_args(arg, ("fold", "backbone", "layout", "quick"))
    config = default_config()
    config.data.name = "biwi_rgbd_id"
    config.data.layout = args.get("layout", "")
    config.data.modalities = ("rgb", "depth")
    config.data.train_split = "design"
    config.data.test_split = "test"
    config.data.val_split = ""
    config.data.fold = int(args.get("fold") or 0)
    config.data.num_val_ids = 8  # Hafner 2018 appendix B.1.
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
