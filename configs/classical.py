"""The conventional baselines of Hafner 2018 §5.3 (Tables 17/18): LOMO or WHOS x Euclidean or XQDA.

  python -m jaxreid.main --config=configs/classical.py:features=lomo,matching=xqda \\
      --workdir=/tmp/jaxreid/lomo_xqda
  python -m jaxreid.experiments --grid=configs/grids/classical.py:synthetic --workdir=/tmp/c

No network is trained: the features of the training and test images are extracted
(`jaxreid.classical`), XQDA is learned on the training identities, and the test uses the
networks' protocol (single-gallery-shot, 10 repeats, every query/gallery modality pair).
Synthetic RGB-D (default) takes about a minute on a 2-core CPU.

Arguments (comma-separated):
  dataset=<synthetic | synthetic_ir | biwi | robotpku | sysu>   (default synthetic: RGB-depth;
      synthetic_ir: RGB-infrared; the real datasets take their data settings, splits and
      test protocol from configs/<dataset>.py)
  features=<lomo | whos>      (default lomo; sets the published image size, 128x48 / 128x64)
  matching=<euclidean | xqda> (default xqda)
  fold=<k>                    (cross-validation fold of BIWI / RobotPKU; the synthetic
                               generator seed for the synthetic sets)
  quick                       (a tiny synthetic set; tests and smoke checks, seconds)
"""

import importlib.util
import os

from jaxreid.config import default_config, parse_args

DATASETS = ("synthetic", "synthetic_ir", "biwi", "robotpku", "sysu")
# Published input sizes (jaxreid.classical.lomo.IMAGE_SIZE: Liao 2015 §5.1;
# jaxreid.classical.whos.IMAGE_SIZE: the WHOS authors' 128x64); written out so that loading a
# config does not import JAX.
IMAGE_SIZES = {"lomo": (128, 48), "whos": (128, 64)}


def _dataset_config(name: str, arg: str):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"jaxreid_config_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def get_config(arg: str = ""):
    args = parse_args(arg, ("dataset", "features", "matching", "fold", "quick"))
    dataset = args.get("dataset") or "synthetic"
    if dataset not in DATASETS:
        raise ValueError(f"configs/classical.py: dataset={dataset!r}; expected one of {DATASETS}.")
    fold = int(args.get("fold") or 0)
    if dataset in ("biwi", "robotpku"):
        config = _dataset_config(dataset, f"fold={fold}")
    elif dataset == "sysu":
        config = _dataset_config("sysu", "")
    else:
        config = default_config()
        config.seed = fold
        config.data.synthetic.seed = fold
        if dataset == "synthetic_ir":
            config.data.modalities = ("rgb", "infrared")
    config.method = "classical"
    features = args.get("features") or "lomo"
    if features not in IMAGE_SIZES:
        raise ValueError(f"configs/classical.py: features={features!r}; expected lomo or whos.")
    config.classical.features = features
    config.classical.matching = args.get("matching") or "xqda"
    config.classical.image_size = IMAGE_SIZES[features]
    if "quick" in args:
        config.data.synthetic.num_train_ids = 12
        config.data.synthetic.num_val_ids = 6
        config.data.synthetic.num_test_ids = 6
        config.eval.repeats = 2
        config.classical.batch_size = 32
    return config
