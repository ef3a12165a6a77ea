"""Market-1501 (single-modal RGB): ResNet50 with softmax + triplet on the pooled features.

  python -m jaxreid.datasets.market1501 --manual_dir=/data/Market-1501-v15.09.15   # once
  python -m jaxreid.main --config=configs/market1501.py --workdir=/tmp/jaxreid/market \\
      --config.data.manual_dir=/data/Market-1501-v15.09.15 \\
      --config.model.pretrained=/data/resnet50.pth

Trains on bounding_box_train (751 identities; a fifth held out for early stopping) and tests
the 3,368 queries against bounding_box_test with the official protocol (Zheng et al. 2015;
`jaxreid.evaluation.market1501`: junk -1 ignored, distractors 0000 kept as negatives, the
query camera's true matches removed, standard CMC, mAP). The loss arrangement follows the
"BNNeck" strong baseline (Luo et al., "Bag of Tricks and A Strong Baseline for Deep Person
Re-identification", CVPRW 2019), whose abstract reports rank-1 94.5 / mAP 85.9 on
Market-1501 with ResNet50 and global features only, and about 95 / 94 with k-reciprocal
re-ranking (`--config.eval.rerank=True`), using also warm-up, random erasing, label
smoothing, last stride 1 and a centre loss, not all of which jaxreid has: expect somewhat
lower figures. Re-ranking mainly raises mAP (Zhong et al. 2017, Market-1501 experiments).
Reaches: not yet measured with jaxreid (needs the data and an accelerator).

Arguments: `quick` (a reduced network for a few steps, e.g. on the builder's dummy data).
"""

from jaxreid.config import apply_quick, default_config, parse_args


def get_config(arg: str = ""):
    config = default_config()
    config.data.name = "market1501"
    config.data.modalities = ("rgb",)
    config.data.train_split = "train"
    config.data.val_split = ""  # Market-1501 has no validation split: fold 0 of the train ids.
    config.data.query_split = "query"
    config.data.test_split = "gallery"
    config.data.image_size = (256, 128)
    config.data.normalization = "imagenet"
    config.model.backbone = "resnet50"
    config.model.width = 64  # The published network, so ImageNet weights load.
    config.loss.name = "softmax+triplet"
    config.loss.triplet_margin = 0.3  # Luo et al. 2019, the baseline's margin.
    config.loss.triplet_feature = "pooled"  # BNNeck: triplet before, softmax after the BN.
    config.batch.num_identities = 16  # P x K = 16 x 4 (Luo et al. 2019).
    config.batch.images_per_identity = 4
    config.optim.name = "adam"
    config.optim.learning_rate = 3.5e-4  # Luo et al. 2019 (Adam).
    config.optim.weight_decay = 5e-4
    config.optim.warmup_steps = 2000  # ~10 epochs of 202 batches (Luo et al.: 10 epochs).
    config.num_train_steps = 24000  # ~120 epochs (Luo et al. 2019).
    config.eval_every_steps = 2000
    config.checkpoint_every_steps = 2000
    config.log_every_steps = 100
    config.eval.test_protocol = "market"
    config.eval.feature = "pooled"
    if "quick" in parse_args(arg, ("quick",)):
        apply_quick(config)
    return config
