"""Tekeli & Can 2019 Tables 1-4 as experiment grids (jaxreid.experiments).

  python -m jaxreid.experiments --grid=configs/grids/tekeli.py:table2 --workdir=/tmp/jaxreid/tekeli2
  python -m jaxreid.experiments --grid=configs/grids/tekeli.py:table3,dataset=sysu \\
      --workdir=/tmp/jaxreid/tekeli3 --override=data.manual_dir=/data/SYSU-MM01

The argument is `<table>[,option...]`:
  table1   β of the exponential running average: 0.1, 0.3, 0.5, 0.7, 0.9 (EMA centres, L2).
  table2   centre update (SGD, EMA, median, mid-range) x training metric (L1, L2, L2², L∞,
           dot) ranked with L1, plus the fully-connected baseline; and, for EMA / L2, the
           ranking metric (L1, L2, L∞, cosine).
  table3   EMA / L2 on SYSU-MM01: all/indoor-search x single/multi-shot (dataset=sysu).
  table4   EMA / L2 on RegDB, visible->thermal, trials 1..10 (dataset=regdb).
Options: dataset=synthetic|sysu|regdb (tables 1 and 2; default synthetic), quick.
Each experiment is configs/tekeli.py with the named arguments.
"""

import os

from jaxreid.config import load_config
from jaxreid.experiments import Experiment, Grid, Table

_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tekeli.py")
TABLES = ("table1", "table2", "table3", "table4")
UPDATES = ("sgd", "ema", "median", "midrange")
METRICS = ("l1", "l2", "sql2", "linf", "dot")
RANKS = ("l1", "euclidean", "linf", "cosine")


def _tekeli_config(arg: str):
    return load_config(f"{_CONFIG}:{arg}")


def _experiment(name, labels, **args):
    arg = ",".join(k if v is True else f"{k}={v}" for k, v in args.items() if v is not False)
    return Experiment(name=name, config=_tekeli_config(arg), labels=labels)


def get_grid(arg: str = "") -> Grid:
    name, *options = [a for a in arg.split(",") if a] or ["table2"]
    if name not in TABLES:
        raise ValueError(f"Unknown table {name!r}; expected one of {TABLES}.")
    dataset, quick = "synthetic", False
    for option in options:
        if option.startswith("dataset="):
            dataset = option.split("=", 1)[1]
        elif option == "quick":
            quick = True
        else:
            raise ValueError(f"Unknown option {option!r}; expected dataset=..., quick.")
    common = dict(dataset=dataset, quick=quick)
    if name == "table1":
        experiments = [
            _experiment(f"beta{beta}", {"beta": beta}, beta=beta, **common)
            for beta in (0.1, 0.3, 0.5, 0.7, 0.9)
        ]
        tables = [
            Table(
                "table1",
                f"Tekeli 2019 Table 1 analogue ({dataset}): β of the EMA",
                rows=("beta",),
                headers=("β",),
            )
        ]
    elif name == "table2":
        experiments = [
            _experiment("fc", {"update": "FC", "metric": "-", "rank": "l1"}, fc=True, **common)
        ]
        for update in UPDATES:
            for metric in METRICS:
                experiments.append(
                    _experiment(
                        f"{update}/{metric}",
                        {"update": update, "metric": metric, "rank": "l1"},
                        update=update,
                        metric=metric,
                        rank="l1",
                        **common,
                    )
                )
        for rank in RANKS[1:]:
            experiments.append(
                _experiment(
                    f"ema/l2/rank_{rank}",
                    {"update": "ema", "metric": "l2", "rank": rank},
                    update="ema",
                    metric="l2",
                    rank=rank,
                    **common,
                )
            )
        tables = [
            Table(
                "table2",
                f"Tekeli 2019 Table 2 analogue ({dataset})",
                rows=("update", "metric", "rank"),
                headers=("Centre update", "Training metric", "Ranking metric"),
            )
        ]
    elif name == "table3":
        experiments = [_experiment("ema_l2", {"method": "EMA, L2"}, dataset="sysu", quick=quick)]
        tables = [
            Table("table3", "Tekeli 2019 Table 3: SYSU-MM01", rows=("method",), headers=("Method",))
        ]
    else:
        experiments = [
            _experiment(
                f"trial{t}", {"method": "EMA, L2", "fold": t}, dataset="regdb", trial=t, quick=quick
            )
            for t in range(1, 11)
        ]
        tables = [
            Table(
                "table4",
                "Tekeli 2019 Table 4: RegDB, mean over 10 trials",
                rows=("method",),
                headers=("Method",),
                pairs=("visible_to_thermal",),
            )
        ]
    return Grid(
        name=f"Tekeli 2019 {name} ({dataset})",
        description=__doc__.split("\n\n")[0],
        experiments=experiments,
        tables=tables,
    )
