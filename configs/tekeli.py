"""Tekeli & Can 2019: the distance-based score layer, on the synthetic set or SYSU-MM01 / RegDB.

  python -m jaxreid.main --config=configs/tekeli.py --workdir=/tmp/jaxreid/tekeli
  python -m jaxreid.main --config=configs/tekeli.py:dataset=sysu,update=ema,metric=l2,rank=l1 \\
      --workdir=/tmp/jaxreid/tekeli_sysu --config.data.manual_dir=/data/SYSU-MM01 \\
      --config.model.pretrained=/data/resnet50.pth

The network of the paper (§3.3, §4.2): a one-stream network with one input channel (visible
images converted to grayscale), the classifier replaced by the score −d(x, c_i) to every class
centre, trained with softmax cross-entropy over the scores by SGD (lr 0.01, momentum 0.9,
batch 32 drawn from either modality); ranking with any metric (the paper trains with L2 and
ranks with L1). On SYSU-MM01 and RegDB it is a ResNet50 at 224x224; on the synthetic set the
half-width ResNet18 of `jaxreid.config.default_config` at 64x32 with its learning rate, so that
a run takes minutes on a CPU.

Arguments (comma-separated):
  dataset=synthetic|sysu|regdb   (default synthetic; RegDB takes trial=<1..10>)
  update=sgd|ema|median|midrange (default ema), metric=l1|l2|sql2|linf|dot (default l2),
  rank=euclidean|l1|linf|cosine|sqeuclidean (default l1), beta=<0..1> (default 0.7),
  fc           the fully-connected baseline of Table 2 instead of the distance layer,
  three_channel  the 3-channel variant (RGB as is, infrared/depth replicated),
  quick.
The experiment grids of Tables 1-4 are in configs/grids/tekeli2019.py.
Reaches: see the README (synthetic); SYSU-MM01 / RegDB not yet measured with jaxreid.
"""

from jaxreid.config import apply_quick, default_config, parse_args

ARGS = ("dataset", "update", "metric", "rank", "beta", "fc", "three_channel", "trial", "quick")


def get_config(arg: str = ""):
    args = parse_args(arg, ARGS)
    config = default_config()
    dataset = args.get("dataset") or "synthetic"
    config.batch.sampler = "random"  # Tekeli 2019 §4.2.
    config.batch.num_identities, config.batch.images_per_identity = 8, 4  # Batch 32.
    config.data.input_layout = "shared" if "three_channel" in args else "gray"  # §3.3
    config.model.head = "linear" if "fc" in args else "distance"
    config.model.embedding_size = 0  # No embedding layer: the pooled features are scored (§3.3)
    config.eval.feature = "pooled"  # and ranked, for the distance layer and the FC baseline.
    config.model.dropout_rate = 0.0
    config.model.distance.center_update = args.get("update") or "ema"
    config.model.distance.metric = args.get("metric") or "l2"
    config.model.distance.momentum = float(args.get("beta") or 0.7)  # Table 1.
    config.eval.metric = args.get("rank") or "l1"
    config.optim.name = "momentum"  # Plain SGD with momentum 0.9 (§4.2).
    if dataset == "synthetic":
        config.data.modalities = ("rgb", "infrared")
    elif dataset in ("sysu", "regdb"):
        config.data.name = "sysu_mm01" if dataset == "sysu" else "regdb"
        config.data.modalities = ("rgb", "infrared") if dataset == "sysu" else ("rgb", "thermal")
        config.data.image_size = (224, 224)  # Tekeli 2019 §4.1: images stretched to 224x224.
        config.data.normalization = "imagenet"
        config.model.backbone = "resnet50"
        config.model.width = 64
        config.optim.learning_rate = 0.01  # §4.2.
        config.optim.schedule = "constant"
        config.optim.weight_decay = 0.0
        config.num_train_steps = 20000
        config.eval_every_steps = 1000
        config.checkpoint_every_steps = 1000
        config.eval.test_protocol = dataset
        if dataset == "regdb":
            trial = int(args.get("trial") or 1)
            config.data.train_split, config.data.test_split = f"train_{trial}", f"test_{trial}"
            config.data.val_split = ""
    else:
        raise ValueError(
            f"configs/tekeli.py: dataset={dataset!r}; expected synthetic, sysu, regdb."
        )
    if "quick" in args:
        apply_quick(config)
    return config
