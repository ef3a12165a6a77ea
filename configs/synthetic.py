"""The main job: a one-stream ResNet18 on the built-in synthetic RGB-D dataset.

  python -m jaxreid.main --config=configs/synthetic.py --workdir=/tmp/jaxreid/synthetic

Trains on batches that mix RGB and depth images of the same identities (the one-stream
cross-modal network, Hafner 2018 §3.1) with the softmax loss and SGD with Nesterov momentum
(§4.3.2), keeps the checkpoint with the best validation cross-modal mAP, and reports rank-1/5/10
and mAP on the test identities for the four query/gallery modality pairs (Table 5 layout).
Reaches: see the README (finishes in under 10 minutes on a 2-core CPU).

`:quick` trains a reduced-width network for a few steps (well under 2 minutes on 2 CPU cores).
"""

from jaxreid.config import apply_quick, default_config, parse_args


def get_config(arg: str = ""):
    config = default_config()
    if "quick" in parse_args(arg, ("quick",)):
        apply_quick(config)
    return config
