"""LLCM (low-light visible-infrared): a one-stream ResNet50 with the softmax loss.

  python -m jaxreid.datasets.llcm --manual_dir=/data/LLCM   # once, builds the TFDS set
  python -m jaxreid.main --config=configs/llcm.py --workdir=/tmp/jaxreid/llcm \\
      --config.data.manual_dir=/data/LLCM --config.model.pretrained=/data/resnet50.pth

Trains on the 713 training identities of idx/train_vis.txt / train_nir.txt (a fifth held out
for early stopping) and tests with the LLCM protocol of the released DEEN code
(`jaxreid.evaluation.llcm`: IR->VIS and VIS->IR, 10 seeded gallery draws, identity-level
CMC, same-identity-and-camera removal). Add `--config.eval.rerank=True` for k-reciprocal
re-ranking (Zhong et al. 2017; then stated in the results' titles).
Published figures to compare with: the LLCM repository's README (github.com/ZYK100/LLCM,
"Results", figures updated after the paper) gives DEEN (ResNet50, its own two-stream
network with embedding expansion, 384 x 144 inputs) rank-1 / mAP 55.52 / 62.07 in its first
column group and 69.21 / 55.52 in its second, and AGW 49.13 / 55.80 and 63.72 / 47.21. The
README does not name the groups; DEEN/test.py's default test mode, commented "IR to VIS", is
the first; the second has rank-1 above mAP, as the 'released' VIS->IR computation (few sampled
queries, full gallery) gives. A plain one-stream softmax baseline is expected well below AGW.
Reaches: not yet measured with jaxreid (needs the data and an accelerator).

Arguments: `quick` (a reduced network for a few steps, e.g. on the builder's dummy data).
"""

from jaxreid.config import apply_quick, default_config, parse_args


def get_config(arg: str = ""):
    config = default_config()
    config.data.name = "llcm"
    config.data.modalities = ("rgb", "infrared")
    config.data.val_split = ""  # LLCM has no validation split: fold 0 of the training ids.
    config.data.image_size = (256, 128)
    config.data.normalization = "imagenet"
    config.model.backbone = "resnet50"
    config.model.width = 64  # The published network, so ImageNet weights load.
    config.batch.num_identities = 8
    config.batch.images_per_identity = 4
    config.optim.learning_rate = 0.01
    config.num_train_steps = 20000
    config.eval_every_steps = 1000
    config.checkpoint_every_steps = 1000
    config.log_every_steps = 100
    config.eval.test_protocol = "llcm"
    if "quick" in parse_args(arg, ("quick",)):
        apply_quick(config)
        config.eval.llcm_trials = 2
    return config
