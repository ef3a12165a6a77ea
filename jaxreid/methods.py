"""The methods a run can be, selected by `config.method`: one registry for every entry point.

    from jaxreid import methods
    results = methods.train_and_evaluate(config, workdir)   # config.method picks the module

Each entry names the module whose `train_and_evaluate(config, workdir) -> results dict`
runs the method; it is imported only when chosen (the conventional baseline never imports the
network trainer, nor TensorFlow's data pipeline before it needs it):

  'supervised'    jaxreid.training.supervised: one network on the training identities of
                  every modality (Hafner 2018 §3.1-3.2; Tekeli 2019).
  'distillation'  jaxreid.training.distillation: Step I (F on the source modality, the
                  supervised trainer) and Step II (G on the target modality; Hafner 2018 §3.3).
  'classical'     jaxreid.classical.method: LOMO / WHOS features and Euclidean or XQDA
                  matching, no network (Hafner 2018 §5.3, Tables 17/18).

A new method adds its name to `jaxreid.config.choices.METHODS` (what validation accepts) and
one function below; tests/test_methods.py checks that the two lists agree.
"""

from __future__ import annotations

from collections.abc import Callable

import ml_collections

from jaxreid.config import ConfigError

TrainAndEvaluate = Callable[[ml_collections.ConfigDict, str], dict]


def _supervised() -> TrainAndEvaluate:
    from jaxreid.training import supervised

    return supervised.train_and_evaluate


def _distillation() -> TrainAndEvaluate:
    from jaxreid.training import distillation

    return distillation.train_and_evaluate


def _classical() -> TrainAndEvaluate:
    from jaxreid.classical import method

    return method.train_and_evaluate


# config.method -> the function that imports the method's module and returns its entry point.
METHODS: dict[str, Callable[[], TrainAndEvaluate]] = {
    "supervised": _supervised,
    "distillation": _distillation,
    "classical": _classical,
}


def entry_point(name: str) -> TrainAndEvaluate:
    """The `train_and_evaluate` of method `name` (a key of METHODS), its module imported.

    Raises:
      ConfigError: `name` is no method; the message lists them.
    """
    if name not in METHODS:
        raise ConfigError(f"config.method={name!r}; expected one of {tuple(METHODS)}.")
    return METHODS[name]()


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Runs `config.method` on `config` in `workdir` (created; resumed if it holds the run).

    Returns:
      The contents of the run's results.json.

    Raises:
      ConfigError: an unknown config.method, and whatever the method raises (see its module).
    """
    return entry_point(config.method)(config, workdir)
