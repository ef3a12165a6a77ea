"""RegDB (visible-thermal): a one-stream ResNet50 with the softmax loss, one of 10 trials.

  python -m jaxreid.datasets.regdb --manual_dir=/data/RegDB   # once, builds the TFDS set
  python -m jaxreid.main --config=configs/regdb.py:trial=1 --workdir=/tmp/jaxreid/regdb1 \\
      --config.data.manual_dir=/data/RegDB --config.model.pretrained=/data/resnet50.pth

Trial t trains on `train_t` and tests on `test_t` (the idx/ files distributed with the data,
206 identities each), visible->thermal and thermal->visible, as in Tekeli 2019 Table 4; the
mean over trials 1..10 is the reported figure (run the 10 configs, e.g. with the experiment
runner). RegDB has no validation split: fold 0 of a 3-fold split of the training identities
(a fifth of them) is held out for early stopping.
Reaches: not yet measured with jaxreid (needs the data and an accelerator).

Arguments: `trial=<1..10>` (default 1), `quick`.
"""

from jaxreid.config import apply_quick, default_config, parse_args


def get_config(arg: str = ""):
    args = parse_args(arg, ("trial", "quick"))
    trial = int(args.get("trial") or 1)
    if not 1 <= trial <= 10:
        raise ValueError(f"configs/regdb.py: trial={trial}; expected 1..10.")
    config = default_config()
    config.data.name = "regdb"
    config.data.modalities = ("rgb", "thermal")
    config.data.train_split = f"train_{trial}"
    config.data.test_split = f"test_{trial}"
    config.data.val_split = ""
    config.data.image_size = (256, 128)
    config.data.normalization = "imagenet"
    config.model.backbone = "resnet50"
    config.model.width = 64  # The published network, so ImageNet weights load.
    config.optim.learning_rate = 0.01
    config.num_train_steps = 6000
    config.eval_every_steps = 500
    config.checkpoint_every_steps = 500
    config.log_every_steps = 100
    config.eval.test_protocol = "regdb"
    if "quick" in args:
        apply_quick(config)
    return config
