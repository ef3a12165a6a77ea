"""SYSU-MM01 (RGB-infrared): a one-stream ResNet50 with the softmax loss.

  python -m jaxreid.datasets.sysu_mm01 --manual_dir=/data/SYSU-MM01   # once, builds the TFDS set
  python -m jaxreid.main --config=configs/sysu.py --workdir=/tmp/jaxreid/sysu \\
      --config.data.manual_dir=/data/SYSU-MM01 \\
      --config.eval.sysu_sampler=official --config.eval.sysu_perm_file=/data/SYSU-MM01/exp/rand_perm_cam.mat \\
      --config.model.pretrained=/data/resnet50.pth

The one-stream network of Hafner 2018 §3.1 / §5.2.1.3 (Table 7) on the official
train / val / test identities (296 / 99 / 96), tested with the SYSU-MM01 protocol (Wu et al.
2017; infrared queries from cameras 3 and 6, RGB gallery; all- and indoor-search, single- and
multi-shot, 10 trials), the grid of Tekeli 2019 Table 3. Both papers start from ImageNet
weights (`config.model.pretrained`, see the README); from scratch the figures are far lower.
Reaches: not yet measured with jaxreid (needs the data and an accelerator).

Arguments: `quick` (a reduced network for a few steps, e.g. on the builder's dummy data).
"""

from jaxreid.config import apply_quick, default_config, parse_args


def get_config(arg: str = ""):
    config = default_config()
    config.data.name = "sysu_mm01"
    config.data.modalities = ("rgb", "infrared")
    config.data.image_size = (256, 128)
    config.data.normalization = "imagenet"
    config.model.backbone = "resnet50"
    config.batch.num_identities = 8
    config.batch.images_per_identity = 4
    config.model.width = 64  # The published network, so ImageNet weights load.
    config.optim.learning_rate = 0.01
    config.num_train_steps = 20000
    config.eval_every_steps = 1000
    config.checkpoint_every_steps = 1000
    config.log_every_steps = 100
    # The SYSU validation set has one camera view per modality for many identities, so the
    # camera rule is relaxed there as in the thesis (§4.3.1); the test uses the official one.
    config.eval.test_protocol = "sysu"
    if "quick" in parse_args(arg, ("quick",)):
        apply_quick(config)
    return config
