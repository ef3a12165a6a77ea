"""Every config value checked before any data is loaded, anything compiled or written.

`validate(config, num_devices=..., num_processes=...)` raises one `ConfigError` listing every
problem it finds, each as `config.<key>=<value>: expected <allowed values or range>` with a
close-match suggestion for strings ("Did you mean 'softmax'?"). It runs in four passes:

  1. keys: every key must be in the schema (`schema.default_config()`), and every schema key
     present (a typo such as `config.optim.lerning_rate` names the close match);
  2. values: each key against its rule in `rules()`, the table below (kinds of rule:
     `jaxreid.config.rules`);
  3. combinations: the functions in `combinations.COMBINATIONS` (batch composition vs
     modalities, the distance head vs its loss, protocols vs modalities, distillation,
     channel augmentation vs the input layout, a training batch that gives some BatchNorm a
     single value per channel, ...);
  4. devices: with `num_devices`, the global training batch P x K must split evenly over
     the devices and processes (`combinations.check_batch_sharding`); the message proposes
     the nearest P and K that do.

Adding a key: add it to `schema.default_config()` and ONE line to the table in `rules()`,
`"group.key": Rule(...)`, e.g.

    "model.pooling": OneOf(choices.POOLINGS),           # a name from a tuple constant
    "loss.label_smoothing": Number(0, 1, high_open=True),  # a float in [0, 1)
    "eval.rerank": Boolean(),

Take the allowed values from `jaxreid.config.choices` (the vocabulary; the module that acts
on a value reads its tuple from there) and the network's structure from
`jaxreid.config.architecture`: `jaxreid.config` imports nothing else of jaxreid, so
validation loads neither JAX, Flax nor TensorFlow (tests/test_import_graph.py). A key whose
validity depends on other keys gets a value rule plus a generator in
`combinations.COMBINATIONS` that yields a message naming all the keys involved.
tests/test_config.py fails for a schema key without a rule.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import ml_collections

from jaxreid.config import architecture, choices, schema
from jaxreid.config.combinations import COMBINATIONS, check_batch_sharding
from jaxreid.config.errors import ConfigError, closest
from jaxreid.config.rules import (
    Boolean,
    Fractions,
    IncreasingInts,
    Integer,
    IntTuple,
    Number,
    OneOf,
    Rule,
    Text,
    TupleOf,
)


def model_outputs(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """Names of the model's intermediate outputs (config.eval.feature,
    config.loss.triplet_feature), as `jaxreid.models.model_from_config` builds it:

    the backbone's 'stem', 'layer1'..'layer<n>' and 'pooled' (models.resnet.ResNet); then
    ReIDNet's 'embedding' and, unless the loss is the pure triplet loss (no classifier),
    'logits' (models.reid); or DistanceNet's 'features' and 'logits' (models.distance).
    tests/test_config.py compares this with the outputs of the built models.
    """
    names = ["stem", *architecture.stage_names(config.model.backbone), "pooled"]
    classifier = "softmax" in config.loss.name.split("+")  # no classifier for metric losses
    if config.model.head == "distance":
        names += ["features", "logits"]
    else:
        if config.model.head == "bnneck":
            names.append("bnneck")  # models.bnneck: the feature after the BNNeck
        names.append("embedding")
        if classifier:
            names.append("logits")
    return tuple(names)


def _features(config) -> tuple[str, ...]:
    return ("", *model_outputs(config))  # '' = the embedding.


def _dataset_modalities(config) -> tuple[str, ...]:
    return choices.DATASET_MODALITIES.get(config.data.name, choices.MODALITIES)


def _dataset_layouts(config) -> tuple[str, ...]:
    return choices.DATASET_LAYOUTS.get(config.data.name, ("",))


def _of_dataset(config) -> str:
    return f"those of config.data.name={config.data.name!r}"


def _of_model(config) -> str:
    return (
        f"'' = the embedding, or an output of config.model.head={config.model.head!r} "
        f"trained with config.loss.name={config.loss.name!r}"
    )


def _of_modalities(config) -> str:
    return f"pairs of config.data.modalities={tuple(config.data.modalities)}"


def _optim_rules(prefix: str) -> dict[str, Rule]:
    return {
        f"{prefix}.name": OneOf(choices.OPTIMIZERS),
        f"{prefix}.learning_rate": Number(0, low_open=True),
        f"{prefix}.momentum": Number(0, 1, high_open=True),
        f"{prefix}.weight_decay": Number(0),
        f"{prefix}.schedule": OneOf(choices.SCHEDULES),
        f"{prefix}.warmup_steps": Integer(0),
        f"{prefix}.step_boundaries": Fractions(),
        f"{prefix}.step_factor": Number(0, low_open=True),
        f"{prefix}.grad_clip_norm": Number(0),  # 0 disables clipping.
    }


@functools.cache
def rules() -> dict[str, Rule]:
    """The rule of every key of the schema, by its path below `config.` (the table)."""
    return {
        "seed": Integer(0),
        "method": OneOf(choices.METHODS),
        # --- data
        "data.name": OneOf(choices.DATASETS),
        "data.data_dir": Text(),
        "data.manual_dir": Text(),
        "data.layout": OneOf(_dataset_layouts, _of_dataset),
        "data.modalities": TupleOf(_dataset_modalities, 1, context=_of_dataset),
        "data.train_split": Text(nonempty=True),
        "data.val_split": Text(),  # '' = a fold of the training identities.
        "data.test_split": Text(nonempty=True),
        "data.query_split": Text(),  # '' = queries from the test split.
        "data.fold": Integer(0),
        "data.num_folds": Integer(2),
        "data.fold_seed": Integer(0),
        "data.num_val_ids": Integer(0),
        "data.image_size": IntTuple(2, 1, example=(64, 32)),
        "data.input_layout": OneOf(choices.INPUT_LAYOUTS),
        "data.normalization": OneOf(choices.NORMALIZATIONS),
        "data.center_depth": Boolean(),
        "data.random_flip": Boolean(),
        "data.pad_crop": Integer(0),
        "data.augment.random_erasing": Number(0, 1),
        "data.augment.channel_erasing": Number(0, 1),
        "data.augment.channel_exchange": Number(0, 1),
        "data.augment.random_gray": Number(0, 1),
        "data.augment.random_sized_rect_crop": Boolean(),
        "data.augment.channel_modalities": TupleOf(
            lambda c: tuple(c.data.modalities), context=lambda c: "of config.data.modalities"
        ),
        "data.synthetic.seed": Integer(0),
        "data.synthetic.num_train_ids": Integer(0),
        "data.synthetic.num_val_ids": Integer(0),
        "data.synthetic.num_test_ids": Integer(0),
        "data.synthetic.height": Integer(0),
        "data.synthetic.width": Integer(0),
        # --- batches
        "batch.num_identities": Integer(1),
        "batch.images_per_identity": Integer(1),
        "batch.eval_batch_size": Integer(1),
        "batch.sampler": OneOf(choices.SAMPLERS),
        # --- model
        "model.backbone": OneOf(choices.BACKBONES),
        "model.width": Integer(1),
        "model.embedding_size": Integer(0),
        "model.dropout_rate": Number(0, 1, high_open=True),
        "model.head": OneOf(choices.HEADS),
        "model.distance.metric": OneOf(choices.DISTANCE_METRICS),
        "model.distance.center_update": OneOf(choices.CENTER_UPDATES),
        "model.distance.momentum": Number(0, 1, high_open=True),
        "model.dtype": OneOf(choices.DTYPES),
        "model.conv_impl": OneOf(choices.CONV_IMPLS),
        "model.pretrained": Text(),
        "model.pooling": OneOf(choices.POOLINGS),
        "model.gem_p": Number(0, low_open=True),
        "model.gem_learnable": Boolean(),
        "model.non_local": IntTuple(4, 0, example=(0, 2, 3, 0)),
        "model.shared_from": OneOf(("", *architecture.SHARED_FROM)),
        "model.last_stride": Integer(1, 2),
        # --- loss
        "loss.name": OneOf(choices.LOSS_NAMES),
        "loss.triplet_margin": Number(0),
        "loss.soft_margin": Boolean(),
        "loss.triplet_feature": OneOf(_features, _of_model),
        "loss.mining": OneOf(choices.MINING),
        "loss.label_smoothing": Number(0, 1, high_open=True),
        "loss.metric_weight": Number(0),
        # --- optimiser and the schedule of the run
        **_optim_rules("optim"),
        "optim.backbone_lr_factor": Number(0, low_open=True),
        "optim.steps_per_epoch": Integer(0),
        "optim.warmup_epochs": Integer(0),
        "optim.milestone_epochs": IncreasingInts(0),
        "num_train_steps": Integer(1),
        "log_every_steps": Integer(1),
        "eval_every_steps": Integer(1),
        "checkpoint_every_steps": Integer(1),
        "keep_checkpoints": Integer(1),
        # --- evaluation
        "eval.protocol": OneOf(choices.PAIR_PROTOCOLS, retired=choices.RETIRED_PAIR_PROTOCOLS),
        "eval.val_protocol": OneOf(choices.PAIR_PROTOCOLS, retired=choices.RETIRED_PAIR_PROTOCOLS),
        "eval.camera_rule": Boolean(),
        "eval.hafner_code_use_all_quirk": Boolean(),
        "eval.repeats": Integer(1),
        "eval.max_queries_per_id": Integer(1),
        # Canonical names; evaluation.distances.canonical_metric also takes aliases ('l2', ...), below.
        "eval.metric": OneOf(_metric_names()),
        "eval.feature": OneOf(_features, _of_model),
        "eval.seed": Integer(0),
        "eval.flip_test": Boolean(),
        "eval.ap": OneOf(choices.AP_DEFINITIONS),
        "eval.val_pairs": TupleOf(choices.val_pair_names, context=_of_modalities),
        "eval.test_protocol": OneOf(choices.TEST_PROTOCOLS),
        "eval.sysu_sampler": OneOf(choices.SYSU_SAMPLERS),
        "eval.sysu_perm_file": Text(),
        "eval.sysu_settings": TupleOf(tuple(choices.SYSU_SETTINGS), 1),
        "eval.llcm_vis_to_ir": OneOf(choices.LLCM_VIS_TO_IR_ROLES),
        "eval.llcm_trials": Integer(1),
        "eval.rerank": Boolean(),
        "eval.rerank_k1": Integer(1),
        "eval.rerank_k2": Integer(1),
        "eval.rerank_lambda": Number(0, 1),
        # --- cross-modal distillation
        "distill.source_modality": OneOf(choices.MODALITIES),
        "distill.teacher_workdir": Text(),
        # The layers the network lists (`model.layer_order()`): checked in combinations.
        "distill.freeze_from": Text(nonempty=True),
        "distill.frozen_bn": OneOf(choices.DISTILL_FROZEN_BN),
        "distill.copy_weights": Boolean(),
        "distill.targets": OneOf(choices.DISTILL_TARGETS),
        "distill.loss_reduction": OneOf(choices.MSE_REDUCTIONS),
        "distill.early_stopping": OneOf(choices.DISTILL_EARLY_STOPPING),
        "distill.num_train_steps": Integer(0),  # 0: G is tested as initialised.
        "distill.eval_every_steps": Integer(1),
        **_optim_rules("distill.optim"),
        # --- conventional baselines (jaxreid.classical; Hafner 2018 §5.3)
        "classical.features": OneOf(choices.CLASSICAL_FEATURES),
        "classical.matching": OneOf(choices.CLASSICAL_MATCHINGS),
        "classical.xqda_lambda": Number(0),
        "classical.qda_dims": Integer(),  # <= 0: every latent value > 1 (Liao 2015 §4.2)
        "classical.xqda_solver": OneOf(choices.XQDA_SOLVERS),
        "classical.image_size": IntTuple(2, 1, example=(128, 48)),
        "classical.batch_size": Integer(1),
        "classical.train_images_per_id": Integer(0),
        "classical.use_val_ids": Boolean(),
    }


def _metric_names() -> tuple[str, ...]:
    # The canonical names first, then the aliases distances.canonical_metric accepts.
    aliases = sorted(set(choices.RANKING_METRIC_ALIASES) - set(choices.RANKING_METRICS))
    return (*choices.RANKING_METRICS, *aliases)


# --- keys ----------------------------------------------------------------------------------


def _check_keys(config: Any, schema_node: Any, prefix: str) -> Iterator[str]:
    for key in config:
        removed = f"{prefix}.{key}".removeprefix("config.")
        if removed in schema.REMOVED_KEYS:
            yield schema.removed_key_message(removed)
        elif key not in schema_node:
            valid = sorted(schema_node.keys())
            close = closest(key, valid)
            hint = f" Did you mean {prefix}.{close}?" if close else ""
            yield f"Unknown config key {prefix}.{key}.{hint} Valid keys of {prefix}: " + ", ".join(
                valid
            )
        elif isinstance(schema_node[key], ml_collections.ConfigDict):
            if not isinstance(config[key], (ml_collections.ConfigDict, dict)):
                keys = ", ".join(sorted(schema_node[key].keys()))
                yield f"{prefix}.{key} must be a group of keys ({keys}), got {config[key]!r}."
            else:
                yield from _check_keys(config[key], schema_node[key], f"{prefix}.{key}")
    for key in schema_node:
        if key not in config:
            yield f"{prefix}.{key} is missing; start from jaxreid.config.default_config()."


def _get(config: Any, path: str) -> Any:
    for part in path.split("."):
        config = config[part]
    return config


def _raise(problems: list[str]) -> None:
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        raise ConfigError(f"{len(problems)} config problems:\n  " + "\n  ".join(problems))


def validate(
    config: ml_collections.ConfigDict, *, num_devices: int | None = None, num_processes: int = 1
) -> None:
    """Checks every key and value of `config` (see the module docstring); returns None.

    Args:
      config: an experiment config, `default_config()` with overrides.
      num_devices: the devices a training step is sharded over (`jax.device_count()`); None
        skips the batch-sharding check.
      num_processes: the processes (hosts) feeding them (`jax.process_count()`).

    Raises:
      ConfigError: naming each wrong key by its full path (`config.distill.optim.name`), its
        value and the allowed values or range, with a close match for mistyped strings.
    """
    _raise(list(_check_keys(config, schema.default_config(), "config")))
    problems = []
    for path, rule in rules().items():
        value = _get(config, path)
        problem = rule.problem(value, config)
        if problem:
            problems.append(f"config.{path}={value!r}: {problem}")
    _raise(problems)
    _raise([p for check in COMBINATIONS for p in check(config)])
    if num_devices is not None:
        _raise([p for p in [check_batch_sharding(config, num_devices, num_processes)] if p])


def check_method(config: ml_collections.ConfigDict, method: str) -> None:
    """Refuses a config whose config.method is not `method`, the method about to run it: a
    method's module called directly (not through `jaxreid.methods`) with another method's
    config would skip the checks of the method it runs.

    Raises:
      ConfigError: naming both and the call that runs the config.
    """
    if config.get("method") != method:
        raise ConfigError(
            f"config.method={config.get('method')!r}, but this is the {method!r} method; run "
            "the config with jaxreid.methods.train_and_evaluate(config, workdir) (or "
            f"python -m jaxreid.main), or set config.method={method!r}."
        )
