"""Tekeli & Can 2019 Tables 1-4 as experiment grids (jaxreid.experiments).

  python -m jaxreid.experiments --grid=configs/grids/tekeli2019.py:table2,sysu_perm=/data/rand_perm_cam.mat \\
      --workdir=/runs/tekeli2 --override=data.manual_dir=/data/SYSU-MM01 \\
      --override=model.pretrained=/data/resnet50.pth
  python -m jaxreid.experiments --grid=configs/grids/tekeli2019.py:table4 --workdir=/runs/tekeli4 \\
      --override=data.manual_dir=/data/RegDB --override=model.pretrained=/data/resnet50.pth

The argument is `<table>[,option...]`:
  table1   β of the exponential running average: 0.1, 0.3, 0.5, 0.7, 0.9; EMA centres,
           L2 training and L2 ranking (Table 1's caption; its β = 0.7 row equals Table 2's
           EMA / L2 row under L2 ranking, 28.84 / 30.55).
  table2   centre update (SGD, EMA, median, mid-range) x training metric (L1, L2, L2², L∞),
           plus SGD with the fully-connected layer and with the negative dot product: 18
           rows, each ranked with L1, L2 and L∞ (the paper's three column groups; L2 and L2²
           rank identically). Every row is trained once per ranking metric (54 runs).
  table3   EMA / L2, ranked with L1, on SYSU-MM01: all/indoor-search x single/multi-shot.
  table4   EMA / L2, ranked with L1, on RegDB, visible -> thermal, trials 1..10, trained on
           the whole trial (206 identities; no validation split is held out, the last
           checkpoint is tested).
Options:
  dataset=sysu|regdb|synthetic  tables 1 and 2 run on SYSU-MM01 by default (the paper);
           synthetic is the quick, data-free analogue (RGB-infrared, configs/tekeli.py).
  sysu_perm=PATH  the SYSU-MM01 owner's gallery draws (rand_perm_cam.mat from
           wuancong/SYSU-MM01 evaluation/data_split), as the paper used (§4.3). Required on
           SYSU-MM01 unless `seeded` is given.
  seeded   the seeded Python re-implementation of the gallery draw instead (not the paper's).
  trials=N table4: the first N trials (default 10).
  quick    configs/tekeli.py's quick scale (synthetic).
  smoke    the test suite's scale (32x16 images, a width-8 ResNet18, two steps at lr 1e-3,
           P x K batches of 8, one trial, seeded draws): wiring only.
Each experiment is configs/tekeli.py with the named arguments (its recipe is the paper's
§4.2: SGD lr 0.01, momentum 0.9, batches of 32 drawn at random from both modalities; the
number of steps, 20,000, is jaxreid's, the paper gives none). On SYSU-MM01 and RegDB the
published figures stand beside each cell.
"""

import dataclasses
import os

from jaxreid.config import load_config
from jaxreid.evaluation import published
from jaxreid.experiments import Experiment, Grid, Table

_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tekeli.py")
TABLES = ("table1", "table2", "table3", "table4")
HOME = {"table1": "sysu", "table2": "sysu", "table3": "sysu", "table4": "regdb"}
UPDATES = ("sgd", "ema", "median", "midrange")
METRICS = ("l1", "l2", "sql2", "linf")
RANKS = published.TEKELI_TABLE2_RANKS  # L1, L2 (= L2² ranking), L∞
SYSU_METRICS = ("rank1", "rank10", "rank20", "mAP")


def _options(arg: str) -> dict:
    name, *options = [a for a in arg.split(",") if a] or ["table2"]
    if name not in TABLES:
        raise ValueError(
            f"configs/grids/tekeli2019.py: unknown table {name!r}; expected one of {TABLES}."
        )
    opts = {
        "name": name,
        "dataset": HOME[name],
        "quick": False,
        "smoke": False,
        "sysu_perm": "",
        "seeded": False,
        "trials": 10,
    }
    for option in options:
        key, _, value = option.partition("=")
        if (
            key == "dataset"
            and value in ("sysu", "regdb", "synthetic")
            and name in ("table1", "table2")
        ):
            opts["dataset"] = value
        elif key == "sysu_perm" and value:
            opts["sysu_perm"] = value
        elif key == "trials" and value.isdigit() and 1 <= int(value) <= 10:
            opts["trials"] = int(value)
        elif option in ("quick", "smoke", "seeded"):
            opts[option] = True
        else:
            raise ValueError(
                f"configs/grids/tekeli2019.py: bad option {option!r}; expected "
                "dataset=sysu|regdb|synthetic (tables 1, 2), sysu_perm=PATH, seeded, "
                "trials=1..10, quick or smoke."
            )
    if opts["smoke"]:
        opts["trials"] = 1
    if opts["dataset"] == "sysu" and not (opts["sysu_perm"] or opts["seeded"] or opts["smoke"]):
        raise ValueError(
            "configs/grids/tekeli2019.py: SYSU-MM01 is tested with the dataset owner's gallery "
            "draws (Tekeli 2019 §4.3): pass sysu_perm=<path of rand_perm_cam.mat>, or "
            "'seeded' for the Python re-implementation's draws."
        )
    return opts


def _config(opts, **args):
    """configs/tekeli.py with `args`, the grid's SYSU-MM01 sampler and its scale."""
    args = {"dataset": opts["dataset"], "quick": opts["quick"], **args}
    arg = ",".join(k if v is True else f"{k}={v}" for k, v in args.items() if v is not False)
    config = load_config(f"{_CONFIG}:{arg}")
    if opts["dataset"] == "sysu":
        config.eval.sysu_sampler = "official" if opts["sysu_perm"] else "seeded"
        config.eval.sysu_perm_file = opts["sysu_perm"]
    if opts["dataset"] == "regdb":
        # The whole trial trains (206 identities, Tekeli 2019 §4.1 / Ye et al. 2018): the
        # "validation" split is the training split itself, evaluated once at the end, so the
        # last checkpoint is the one tested.
        config.data.val_split = config.data.train_split
        config.eval_every_steps = config.num_train_steps
    if opts["smoke"]:
        config.model.width = 8
        config.model.backbone = "resnet18"  # tests/test_models.py covers the ResNet50.
        config.optim.learning_rate = 1e-3  # 0.01 from random weights overflows at width 8.
        config.data.image_size = (32, 16)
        # P x K batches of 8: the test trees hold fewer images than a 'random' batch.
        config.batch.sampler = "pk"
        config.batch.num_identities, config.batch.images_per_identity = 2, 4
        config.batch.eval_batch_size = 32
        config.num_train_steps = config.eval_every_steps = config.checkpoint_every_steps = 2
        config.log_every_steps = 1
        config.optim.warmup_steps = 0
        config.eval.repeats = 2
        config.eval.sysu_settings = ("all_single", "indoor_single")
        config.data.num_val_ids = 1
    return config


def _experiment(opts, name, labels, **args):
    return Experiment(name=name, config=_config(opts, **args), labels=labels)


def get_grid(arg: str = "") -> Grid:
    opts = _options(arg)
    name, dataset = opts["name"], opts["dataset"]
    result_key = "visible_to_thermal" if dataset == "regdb" else "all_single"
    pairs = () if dataset == "synthetic" else (result_key,)
    if name == "table1":
        experiments = [
            _experiment(opts, f"beta{beta}", {"beta": beta}, beta=beta, rank="euclidean")
            for beta in (0.1, 0.3, 0.5, 0.7, 0.9)
        ]
        tables = [
            Table(
                "table1",
                f"Tekeli 2019 Table 1 ({dataset}): β of the EMA, L2 training and ranking",
                rows=("beta",),
                headers=("β",),
                pairs=pairs,
            )
        ]
    elif name == "table2":
        setups = [("sgd", "fc"), ("sgd", "dot")] + [(u, m) for u in UPDATES for m in METRICS]
        experiments = []
        for update, metric in setups:
            for rank in RANKS:
                args = {"fc": True} if metric == "fc" else {"update": update, "metric": metric}
                experiments.append(
                    _experiment(
                        opts,
                        f"{update}/{metric}/rank_{rank}",
                        {"update": update, "metric": metric, "rank": rank},
                        rank=rank,
                        **args,
                    )
                )
        tables = [
            Table(
                "table2",
                f"Tekeli 2019 Table 2 ({dataset}): centre update x training metric x ranking metric",
                rows=("update", "metric", "rank"),
                headers=("Centre update", "Training metric", "Ranking metric"),
                pairs=pairs,
            )
        ]
    elif name == "table3":
        experiments = [_experiment(opts, "ema_l2", {"method": "EMA, L2"})]
        tables = [
            Table("table3", "Tekeli 2019 Table 3: SYSU-MM01", rows=("method",), headers=("Method",))
        ]
    else:
        experiments = [
            _experiment(opts, f"trial{t}", {"method": "EMA, L2", "fold": t}, trial=t)
            for t in range(1, opts["trials"] + 1)
        ]
        tables = [
            Table(
                "table4",
                "Tekeli 2019 Table 4: RegDB, visible to thermal, mean over the trials",
                rows=("method",),
                headers=("Method",),
                pairs=("visible_to_thermal",),
            )
        ]
    if dataset == HOME[name]:
        figures = published.figures("tekeli2019", name)
        tables = [dataclasses.replace(t, published=figures, metrics=SYSU_METRICS) for t in tables]
    sampler = (
        ""
        if dataset != "sysu"
        else f"; SYSU-MM01 gallery draws: {'official ' + opts['sysu_perm'] if opts['sysu_perm'] else 'seeded'}"
    )
    return Grid(
        name=f"Tekeli 2019 {name} ({dataset})",
        description=__doc__.split("\n\n")[0]
        + sampler
        + (" (smoke scale: wiring only)" if opts["smoke"] else ""),
        experiments=experiments,
        tables=tables,
    )
