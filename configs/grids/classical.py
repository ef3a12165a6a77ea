"""The conventional rows of Hafner 2018 Tables 17 (BIWI) and 18 (RobotPKU): WHOS and LOMO,
each matched in Euclidean space and after XQDA, 3 folds, mean ± std.

  python -m jaxreid.experiments --grid=configs/grids/classical.py:synthetic --workdir=/tmp/t17
  python -m jaxreid.experiments --grid=configs/grids/classical.py:biwi --workdir=/tmp/t17b \\
      --override=data.manual_dir=/data/BIWI

The argument is `<dataset>[,option...]`:
  synthetic     synthetic RGB-D; a fold is a generator seed (as in configs/grids/synthetic.py)
  synthetic_ir  synthetic RGB-infrared
  biwi          BIWI RGBD-ID, the 3-fold cross-validation of configs/biwi.py (Table 17)
  robotpku      RobotPKU, the 3 folds of configs/robotpku.py (Table 18)
  sysu          SYSU-MM01 with its own protocol (one run per row; no folds)
Options:
  networks   also the networks' rows of configs/grids/synthetic.py:methods (one-stream,
             one-stream with BNNeck + cross-modal WRT, zero-padding, distillation both ways,
             distance layer, AGW, AGW + channel augmentation; synthetic only): Table 17's
             full layout and more.
             Their experiments keep their names there, so a workdir that already holds
             that grid's runs reuses them.
  folds=N    N folds (default 3).
  quick      a tiny synthetic set (tests and smoke checks).

No network is trained for the classical rows: feature extraction and one XQDA fit per run.
"""

import importlib.util
import os

from jaxreid.experiments import Experiment, Grid, Table

HERE = os.path.dirname(os.path.abspath(__file__))
DATASETS = ("synthetic", "synthetic_ir", "biwi", "robotpku", "sysu")
# The four rows of Tables 17/18, in the thesis's order.
ROWS = (("whos", "euclidean"), ("whos", "xqda"), ("lomo", "euclidean"), ("lomo", "xqda"))
NAMES = {"whos": "WHOS", "lomo": "LOMO", "euclidean": "Euclidean", "xqda": "XQDA"}
CROSS_PAIRS = {
    "rgb-depth": ("Q:rgb G:depth", "Q:depth G:rgb"),
    "rgb-infrared": ("Q:rgb G:infrared", "Q:infrared G:rgb"),
}


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def get_grid(arg: str = "") -> Grid:
    dataset, *options = [a for a in arg.split(",") if a] or ["synthetic"]
    if dataset not in DATASETS:
        raise ValueError(f"Unknown dataset {dataset!r}; expected one of {DATASETS}.")
    folds, quick, networks = 3, False, False
    for option in options:
        if option.startswith("folds="):
            folds = int(option.split("=", 1)[1])
        elif option == "quick":
            quick = True
        elif option == "networks":
            networks = True
        else:
            raise ValueError(
                f"Unknown grid option {option!r}; expected folds=N, quick or networks."
            )
    if networks and dataset != "synthetic":
        raise ValueError("The option 'networks' is for the synthetic RGB-D grid only.")
    if dataset == "sysu":
        folds = 1
    configs = _load(os.path.join(HERE, "..", "classical.py"), "jaxreid_config_classical")
    experiments = []
    for fold in range(folds):
        for features, matching in ROWS:
            args = f"dataset={dataset},features={features},matching={matching},fold={fold}"
            config = configs.get_config(args + (",quick" if quick else ""))
            experiments.append(
                Experiment(
                    name=f"classical/{features}_{matching}/fold{fold}",
                    config=config,
                    labels={
                        "method": f"{NAMES[features]}, {NAMES[matching]}",
                        "fold": fold,
                    },
                )
            )
    if networks:
        synthetic = _load(os.path.join(HERE, "synthetic.py"), "jaxreid_grid_synthetic")
        methods = f"methods,folds={folds}" + (",quick" if quick else "")
        experiments += list(synthetic.get_grid(methods).experiments)
    infrared = dataset in ("synthetic_ir", "sysu")
    table = {"biwi": "17", "robotpku": "18"}.get(dataset, "17/18")
    pairs = () if dataset == "sysu" else CROSS_PAIRS["rgb-infrared" if infrared else "rgb-depth"]
    title = (
        f"Conventional baselines on {dataset}: WHOS / LOMO x Euclidean / XQDA "
        f"(Hafner 2018 Table {table} layout)"
    )
    tables = [
        Table(
            "table17" if dataset != "robotpku" else "table18",
            title,
            rows=("method",),
            headers=("Approach",),
            pairs=pairs,
        )
    ]
    if dataset != "sysu":
        tables.append(
            Table(
                "all_pairs",
                "All query/gallery modality pairs",
                rows=("method",),
                headers=("Approach",),
            )
        )
    return Grid(
        name=title,
        description=f"{len(experiments)} runs, {folds} fold(s){', quick' if quick else ''}.",
        experiments=experiments,
        tables=tables,
    )
