"""AGW with channel augmentation: the augmentations of channel-augmented joint learning
(CAJ; Ye et al. 2021, "Channel Augmented Joint Learning for Visible-Infrared Recognition",
ICCV, §3.1; code ICCV21_CAJ in github.com/mangye16/Cross-Modal-Re-ID-baseline) on the AGW
network and losses of configs/agw.py.

  python -m jaxreid.main --config=configs/agw_ca.py --workdir=/tmp/jaxreid/agw_ca_sysu \\
      --config.data.manual_dir=/data/SYSU-MM01 --config.model.pretrained=/data/resnet50.pth
  python -m jaxreid.main --config=configs/agw_ca.py:synthetic --workdir=/tmp/jaxreid/agw_ca_syn

Everything as configs/agw.py (288 x 144 input, 8 identities x 4 images per modality, SGD 0.1
with Nesterov momentum and weight decay 5e-4, ResNet50 from ImageNet weights, warm-up over 10
epochs, x0.1 at epochs 20 and 50), plus (config.data.augment):
  random erasing 0.5 on every image (CAJ `--rande 0.5`, Zhong et al. 2020);
  channel exchange 0.5 on visible images (CAJ trains each visible image twice, once plain and
  once with one random channel copied to all three, so half of the visible images it sees are
  exchanged);
  the flip test at evaluation (CAJ's testa.py).
Not reproduced: CAJ's grey / channel-copy of infrared images (ChannelAdapGray; the same set of
probabilities applies to every modality named in channel_modalities), its doubled visible
batch, and its joint loss (the "enhanced squared difference" triplet of §3.2, `--method adp`);
this is AGW + channel augmentation, not the full CAJ.

Published CAJ figures (rank-1 / mAP, %; Ye et al. 2021 ICCV and the code's README), an upper
reference for this config:
  SYSU-MM01 all-search single-shot  69.88 / 66.89
  RegDB visible -> thermal          85.03 / 79.14
AGW without the augmentation: 47.50 / 47.65 and 70.05 / 66.37 (configs/agw.py).
Reaches with jaxreid: not yet measured.

Arguments: as configs/agw.py (`regdb`, `trial=<1..10>`, `synthetic`, `quick`). On the
synthetic RGB-D set the channel operations act on the RGB images.
"""

import importlib.util
import os


def _agw():
    """configs/agw.py, next to this file (configs are files, not a package)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "agw.py")
    spec = importlib.util.spec_from_file_location("jaxreid_configs_agw", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def get_config(arg: str = ""):
    config = _agw().agw_config(arg)
    apply_channel_augmentation(config)
    return config


def apply_channel_augmentation(config) -> None:
    """CAJ's augmentations and flip test (the module docstring) on `config`."""
    config.data.augment.random_erasing = 0.5
    config.data.augment.channel_exchange = 0.5
    config.data.augment.random_gray = 0.0
    config.data.augment.channel_modalities = ("rgb",)
    config.eval.flip_test = True
