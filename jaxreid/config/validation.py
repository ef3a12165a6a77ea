"""Every config value checked before any data is loaded, anything compiled or written.

`validate(config, num_devices=..., num_processes=...)` raises one `ConfigError` listing every
problem it finds, each as `config.<key>=<value>: expected <allowed values or range>` with a
close-match suggestion for strings ("Did you mean 'softmax'?"). It runs in four passes:

  1. keys: every key must be in the schema (`schema.default_config()`), and every schema key
     present (a typo such as `config.optim.lerning_rate` names the close match);
  2. values: each key against its rule in `rules()`, the table below (kinds of rule:
     `jaxreid.config.rules`);
  3. combinations: the functions in `COMBINATIONS` (batch composition vs modalities, the
     distance head vs its loss, protocols vs modalities, distillation, ...);
  4. devices: with `num_devices`, the global training batch P x K must split evenly over
     the devices and processes (`check_batch_sharding`); the message proposes the nearest
     P and K that do.

Adding a key: add it to `schema.default_config()` and ONE line to the table in `rules()`,
`"group.key": Rule(...)`, e.g.

    "model.pooling": OneOf(models.POOLINGS),            # a name from a tuple constant
    "loss.label_smoothing": Number(0, 1, high_open=True),  # a float in [0, 1)
    "eval.rerank": Boolean(),

Take the allowed values from the module-level tuple next to the code that uses them
(import it inside `rules()`, which keeps `import jaxreid.config` free of JAX). A key whose
validity depends on other keys gets a value rule plus a function in `COMBINATIONS` that
yields a message naming all the keys involved. tests/test_config.py fails for a schema key
without a rule. Nothing here imports TensorFlow; `rules()` imports JAX and Flax modules for
their constants.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterator
from typing import Any

import ml_collections

from jaxreid.config import schema
from jaxreid.config.errors import ConfigError, closest
from jaxreid.config.rules import (
    Boolean,
    Fractions,
    Integer,
    IntTuple,
    Joined,
    Matches,
    Number,
    OneOf,
    Rule,
    Text,
    TupleOf,
)

# Allowed values whose code imports TensorFlow today (jaxreid.train, jaxreid.distill): kept
# here so that validation does not; move each next to its code once that is TF-free.
LOSS_PARTS = ("softmax", "triplet")  # config.loss.name: parts joined by '+' (train.LOSSES)
OPTIMIZERS = ("sgd", "momentum", "adam")  # train.create_optimizer
SCHEDULES = ("constant", "cosine", "step")  # train.learning_rate_schedule
TEST_PROTOCOLS = ("pairs", "sysu", "regdb")  # train.test_results
# Modalities the test protocols need (train.test_results: SYSU-MM01 infrared queries
# against an RGB gallery; RegDB visible and thermal).
TEST_PROTOCOL_MODALITIES = {"sysu": ("infrared", "rgb"), "regdb": ("rgb", "thermal")}
DISTILL_TARGETS = ("auto", "paired", "class_mean")  # distill.TARGETS
DISTILL_FROZEN_BN = ("fixed", "update")  # distill.FROZEN_BN
DISTILL_EARLY_STOPPING = ("val_loss", "val_mAP")  # distill.EARLY_STOPPING
DISTILL_INPUT_LAYOUTS = ("shared", "gray")  # F and G share one input format (distill.check_config)
# config.distill.freeze_from (distill.freeze_position): a stage, block or layer of the
# backbone, a layer of the linear head, or 'auto' / 'none'.
BLOCK_LAYERS = ("conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "downsample_conv", "downsample_bn")
FREEZE_FROM = (
    r"auto|none|stem|embedding|embedding_bn|classifier"
    r"|layer[1-9]\d*(_\d+(/(" + "|".join(BLOCK_LAYERS) + r"))?)?"
)


def model_outputs(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """Names of the model's intermediate outputs (config.eval.feature,
    config.loss.triplet_feature), as `jaxreid.models.model_from_config` builds it:

    the backbone's 'stem', 'layer1'..'layer<n>' and 'pooled' (models.resnet.ResNet); then
    ReIDNet's 'embedding' and, unless the loss is the pure triplet loss (no classifier),
    'logits' (models.reid); or DistanceNet's 'features' and 'logits' (models.distance).
    tests/test_config.py compares this with the outputs of the built models.
    """
    from jaxreid import models

    backbone = models.BACKBONES.get(config.model.backbone)
    stages = len(getattr(backbone, "keywords", {}).get("stage_sizes", (0,) * 4))
    names = ["stem", *(f"layer{i + 1}" for i in range(stages)), "pooled"]
    if config.model.head == "distance":
        names += ["features", "logits"]
    else:
        names.append("embedding")
        if config.loss.name != "triplet":
            names.append("logits")
    return tuple(names)


def _features(config) -> tuple[str, ...]:
    return ("", *model_outputs(config))  # '' = the embedding.


def _val_pair_names(config) -> tuple[str, ...]:
    modalities = tuple(config.data.modalities)
    return tuple(f"Q:{q} G:{g}" for q in modalities for g in modalities)  # hafner.pair_name


def _dataset_modalities(config) -> tuple[str, ...]:
    from jaxreid import datasets

    return datasets.MODALITIES.get(config.data.name, schema.MODALITIES)


def _dataset_layouts(config) -> tuple[str, ...]:
    from jaxreid import datasets

    return datasets.LAYOUTS.get(config.data.name, ("",))


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
        f"{prefix}.name": OneOf(OPTIMIZERS),
        f"{prefix}.learning_rate": Number(0, low_open=True),
        f"{prefix}.momentum": Number(0, 1, high_open=True),
        f"{prefix}.weight_decay": Number(0),
        f"{prefix}.schedule": OneOf(SCHEDULES),
        f"{prefix}.warmup_steps": Integer(0),
        f"{prefix}.step_boundaries": Fractions(),
        f"{prefix}.step_factor": Number(0, low_open=True),
        f"{prefix}.grad_clip_norm": Number(0),  # 0 disables clipping.
    }


@functools.cache
def rules() -> dict[str, Rule]:
    """The rule of every key of the schema, by its path below `config.` (the table)."""
    from jaxreid import datasets, losses, models
    from jaxreid.data import preprocessing, sampler
    from jaxreid.evaluation import distances, hafner, sysu
    from jaxreid.models import distance

    return {
        "seed": Integer(0),
        # --- data
        "data.name": OneOf(tuple(datasets.BUILDER_MODULES)),
        "data.data_dir": Text(),
        "data.manual_dir": Text(),
        "data.layout": OneOf(_dataset_layouts, _of_dataset),
        "data.modalities": TupleOf(_dataset_modalities, 1, context=_of_dataset),
        "data.train_split": Text(nonempty=True),
        "data.val_split": Text(),  # '' = a fold of the training identities.
        "data.test_split": Text(nonempty=True),
        "data.fold": Integer(0),
        "data.num_folds": Integer(2),
        "data.fold_seed": Integer(0),
        "data.num_val_ids": Integer(0),
        "data.image_size": IntTuple(2, 1, example=(64, 32)),
        "data.input_layout": OneOf(preprocessing.INPUT_LAYOUTS),
        "data.normalization": OneOf(preprocessing.NORMALIZATIONS),
        "data.center_depth": Boolean(),
        "data.random_flip": Boolean(),
        "data.pad_crop": Integer(0),
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
        "batch.sampler": OneOf(sampler.SAMPLERS),
        # --- model
        "model.backbone": OneOf(tuple(models.BACKBONES)),
        "model.width": Integer(1),
        "model.embedding_size": Integer(0),
        "model.dropout_rate": Number(0, 1, high_open=True),
        "model.head": OneOf(models.HEADS),
        "model.distance.metric": OneOf(distance.METRICS),
        "model.distance.center_update": OneOf(distance.CENTER_UPDATES),
        "model.distance.momentum": Number(0, 1, high_open=True),
        "model.half_precision": Boolean(),
        "model.pretrained": Text(),
        # --- loss
        "loss.name": Joined(LOSS_PARTS),
        "loss.triplet_margin": Number(0),
        "loss.soft_margin": Boolean(),
        "loss.triplet_feature": OneOf(_features, _of_model),
        # --- optimiser and the schedule of the run
        **_optim_rules("optim"),
        "num_train_steps": Integer(1),
        "log_every_steps": Integer(1),
        "eval_every_steps": Integer(1),
        "checkpoint_every_steps": Integer(1),
        "keep_checkpoints": Integer(1),
        # --- evaluation
        "eval.protocol": OneOf(hafner.PAIR_PROTOCOLS),
        "eval.val_protocol": OneOf(hafner.PAIR_PROTOCOLS),
        "eval.repeats": Integer(1),
        "eval.max_queries_per_id": Integer(1),
        # Canonical names; distances.canonical_metric also takes aliases ('l2', ...), below.
        "eval.metric": OneOf(lambda c: _metric_names(distances)),
        "eval.feature": OneOf(_features, _of_model),
        "eval.seed": Integer(0),
        "eval.val_pairs": TupleOf(_val_pair_names, context=_of_modalities),
        "eval.test_protocol": OneOf(TEST_PROTOCOLS),
        "eval.sysu_sampler": OneOf(sysu.SAMPLERS),
        "eval.sysu_perm_file": Text(),
        "eval.sysu_settings": TupleOf(tuple(sysu.SYSU_SETTINGS), 1),
        # --- cross-modal distillation
        "distill.enabled": Boolean(),
        "distill.source_modality": OneOf(schema.MODALITIES),
        "distill.teacher_workdir": Text(),
        "distill.freeze_from": Matches(
            FREEZE_FROM,
            "'auto', 'none', 'stem', 'layer<i>', 'layer<i>_<j>', 'layer<i>_<j>/<"
            + "|".join(BLOCK_LAYERS)
            + ">', 'embedding', 'embedding_bn' or 'classifier'",
        ),
        "distill.frozen_bn": OneOf(DISTILL_FROZEN_BN),
        "distill.copy_weights": Boolean(),
        "distill.targets": OneOf(DISTILL_TARGETS),
        "distill.loss_reduction": OneOf(losses.MSE_REDUCTIONS),
        "distill.early_stopping": OneOf(DISTILL_EARLY_STOPPING),
        "distill.num_train_steps": Integer(1),
        "distill.eval_every_steps": Integer(1),
        **_optim_rules("distill.optim"),
    }


def _metric_names(distances) -> tuple[str, ...]:
    # The canonical names first, then the aliases distances.canonical_metric accepts.
    aliases = sorted(set(distances._ALIASES) - set(distances.METRICS))  # pylint: disable=protected-access
    return (*distances.METRICS, *aliases)


# --- combinations --------------------------------------------------------------------------


def _modalities_split_k(c) -> Iterator[str]:
    k, modalities = c.batch.images_per_identity, tuple(c.data.modalities)
    if k % len(modalities):
        yield (
            f"config.batch.images_per_identity={k} must be a multiple of the number of "
            f"modalities in config.data.modalities={modalities}, so that each identity's K "
            "images split evenly over them."
        )


def _layout_modalities(c) -> Iterator[str]:
    layout, modalities = c.data.input_layout, tuple(c.data.modalities)
    if layout.startswith("zero_pad") and len(modalities) != 2:
        yield (
            f"config.data.input_layout={layout!r} gives each of two modalities its own "
            f"channel; config.data.modalities={modalities} has {len(modalities)}."
        )


def _fold_in_range(c) -> Iterator[str]:
    if c.data.fold >= c.data.num_folds:
        yield (
            f"config.data.fold={c.data.fold}: expected 0..{c.data.num_folds - 1} "
            f"(config.data.num_folds={c.data.num_folds})."
        )


def _val_pairs_default(c) -> Iterator[str]:
    modalities = tuple(c.data.modalities)
    if len(modalities) > 2 and not c.eval.val_pairs:
        yield (
            f"config.data.modalities={modalities}: with more than two modalities name the "
            f"validation pairs in config.eval.val_pairs, some of {_val_pair_names(c)}."
        )


def _head_and_loss(c) -> Iterator[str]:
    parts = c.loss.name.split("+")
    if c.model.head == "distance" and "softmax" not in parts:
        yield (
            f"config.model.head='distance' is trained by the softmax loss over its distance "
            f"scores (Tekeli 2019 §3.3); config.loss.name={c.loss.name!r} has no 'softmax'."
        )
    if c.model.head == "linear" and c.model.embedding_size == 0 and c.loss.name == "triplet":
        yield (
            "config.model.embedding_size=0 makes the classification layer the embedding, but "
            "config.loss.name='triplet' trains no classification layer; set an embedding "
            "size or add the softmax loss."
        )


def _test_protocol_modalities(c) -> Iterator[str]:
    needed = TEST_PROTOCOL_MODALITIES.get(c.eval.test_protocol, ())
    modalities = tuple(c.data.modalities)
    if any(m not in modalities for m in needed):
        yield (
            f"config.eval.test_protocol={c.eval.test_protocol!r} needs the modalities "
            f"{needed}; config.data.modalities={modalities}."
        )
    if (
        c.eval.test_protocol == "sysu"
        and c.eval.sysu_sampler == "official"
        and not c.eval.sysu_perm_file
    ):
        yield (
            "config.eval.sysu_sampler='official' needs config.eval.sysu_perm_file (the "
            "dataset's exp/rand_perm_cam.mat); or use config.eval.sysu_sampler='seeded'."
        )


def _warmup_shorter_than_training(c) -> Iterator[str]:
    for optim, steps in (
        ("optim", "num_train_steps"),
        ("distill.optim", "distill.num_train_steps"),
    ):
        if optim.startswith("distill") and not c.distill.enabled:
            continue
        warmup, total = _get(c, optim + ".warmup_steps"), _get(c, steps)
        if warmup >= total:
            yield (
                f"config.{optim}.warmup_steps={warmup} must be less than config.{steps}={total}."
            )


def _distillation(c) -> Iterator[str]:
    if not c.distill.enabled:
        return
    d, modalities = c.distill, tuple(c.data.modalities)
    if len(modalities) != 2 or d.source_modality not in modalities:
        yield (
            f"config.distill.source_modality={d.source_modality!r} and config.data.modalities="
            f"{modalities}: distillation needs two modalities, the source one of them."
        )
    if c.data.input_layout not in DISTILL_INPUT_LAYOUTS:
        yield (
            f"config.data.input_layout={c.data.input_layout!r}: F and G share one input "
            f"format, expected one of {DISTILL_INPUT_LAYOUTS} (zero padding is a one-network "
            "method)."
        )
    if c.model.head != "linear":
        yield (
            f"config.model.head={c.model.head!r}: distillation freezes layers of ReIDNet's "
            "linear head; expected 'linear'."
        )
    yield from _freeze_from_in_model(c)


def _freeze_from_in_model(c) -> Iterator[str]:
    """config.distill.freeze_from names a stage / block that the backbone has."""
    from jaxreid import models

    match = re.fullmatch(r"layer(\d+)(?:_(\d+)(?:/(\w+))?)?", c.distill.freeze_from)
    backbone = models.BACKBONES.get(c.model.backbone)
    stage_sizes = getattr(backbone, "keywords", {}).get("stage_sizes")
    if not match or stage_sizes is None:
        return
    stage, block, layer = int(match[1]), match[2], match[3]
    where = f"config.model.backbone={c.model.backbone!r} (blocks per stage {tuple(stage_sizes)})"
    if not 1 <= stage <= len(stage_sizes):
        yield (
            f"config.distill.freeze_from={c.distill.freeze_from!r}: {where} has "
            f"layer1..layer{len(stage_sizes)}."
        )
    elif block is not None and int(block) >= stage_sizes[stage - 1]:
        yield (
            f"config.distill.freeze_from={c.distill.freeze_from!r}: {where} has "
            f"layer{stage}_0..layer{stage}_{stage_sizes[stage - 1] - 1}."
        )
    elif layer in ("conv3", "bn3") and "Bottleneck" not in repr(backbone):
        yield (
            f"config.distill.freeze_from={c.distill.freeze_from!r}: {where} has basic blocks, "
            "without conv3/bn3."
        )


COMBINATIONS: tuple[Callable[[Any], Iterator[str]], ...] = (
    _modalities_split_k,
    _layout_modalities,
    _fold_in_range,
    _val_pairs_default,
    _head_and_loss,
    _test_protocol_modalities,
    _warmup_shorter_than_training,
    _distillation,
)


# --- devices -------------------------------------------------------------------------------


def check_batch_sharding(
    config: ml_collections.ConfigDict, num_devices: int, num_processes: int = 1
) -> str | None:
    """None if the global training batch P x K splits evenly over the devices and processes,
    else a message naming the keys, the device count and the nearest P and K that do.

    The batch of every training step (supervised, and both steps of distillation, which use
    the same P and K) is sharded over all devices, so P*K must be a multiple of
    lcm(num_devices, num_processes); K stays a multiple of the number of modalities.
    """
    p, k = config.batch.num_identities, config.batch.images_per_identity
    n = math.lcm(num_devices, num_processes)
    if (p * k) % n == 0:
        return None
    m = len(config.data.modalities)
    p_step = n // math.gcd(k, n)  # P*K % n == 0  <=>  P is a multiple of this.
    k_step = math.lcm(m, n // math.gcd(p, n))
    ps = sorted(
        {q for q in (p // p_step * p_step, -(-p // p_step) * p_step) if q >= 1},
        key=lambda q: (abs(q - p), q),
    )
    ks = sorted(
        {q for q in (k // k_step * k_step, -(-k // k_step) * k_step) if q >= 1},
        key=lambda q: (abs(q - k), q),
    )
    over = f"{num_devices} devices" + (
        f" in {num_processes} processes" if num_processes > 1 else ""
    )
    options = [f"--config.batch.num_identities={q} (batch {q * k})" for q in ps]
    options += [f"--config.batch.images_per_identity={q} (batch {p * q})" for q in ks]
    return (
        f"config.batch.num_identities={p} x config.batch.images_per_identity={k} = {p * k} "
        f"training images per step do not split evenly over {over} (the batch is sharded "
        f"over the devices; it must be a multiple of {n}). Nearest valid: "
        + " or ".join(options)
        + "."
    )


# --- keys ----------------------------------------------------------------------------------


def _check_keys(config: Any, schema_node: Any, prefix: str) -> Iterator[str]:
    for key in config.keys():
        if key not in schema_node:
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
    for key in schema_node.keys():
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
