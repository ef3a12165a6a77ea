"""Cross-modal distillation network (Hafner 2018, §3.3 and Algorithm 1; the journal version in
the thesis's appendix D, §3.3): `train_and_evaluate(config, workdir)` runs both steps.

Step I   F = `train.train_and_evaluate` on the source modality alone (single-modal network),
         best checkpoint by validation mAP -> <workdir>/step1 (or a finished Step I workdir
         given as config.distill.teacher_workdir).
Step II  G starts as a copy of F (config.distill.copy_weights) and is frozen from a mid-level
         layer up to the embedding (config.distill.freeze_from). The rest of G is trained on
         target-modality P x K batches to minimise the MSE between G(x_target) and F's
         embedding of the *paired* source frame (same frame_id; Eq. 6), or, where the data
         has no pairs (RGB-infrared), the mean F embedding of the identity's source images
         (§5.2.3.3). The checkpoint with the lowest validation loss is kept -> <workdir>/step2.
Inference: source-modality images are embedded by F, target-modality images by G, and tested
         with config.eval.test_protocol ('pairs': all four query/gallery modality pairs;
         'sysu' / 'regdb' as `train.test_results`) -> <workdir>/results.json, results.md.

Choices fixed here (the papers leave them open; see also config.distill):
- Teacher embeddings are computed once, by F in inference mode, for every source image of
  the train and val splits, without augmentation: F is frozen, so they never change (the
  author's gt_extractor.py does the same, with the test transform). The student sees its
  target images with the training augmentation of config.data (random flip, pad-and-crop),
  as the author's retrainer.py (random crop + flip) does; the target stays the embedding of
  the un-augmented source frame.
- Frozen parameters get exactly zero updates (optax.multi_transform with set_to_zero: no
  momentum, no weight decay) and are passed through the step unchanged, so they stay
  bit-identical; no gradient is computed for them (stop_gradient).
- config.distill.frozen_bn = 'fixed' (default) runs the frozen layers' BatchNorm in inference
  mode with F's running statistics, and the frozen head's dropout off, so that the frozen
  part of G computes exactly F's function during Step II and at test time (the paper's
  intent: "retains the high-level mapping from the first network"). 'update' keeps them in
  training mode, so their running statistics drift with the target modality (the author's
  code, which only sets requires_grad=False).
- The validation loss is the per-sample squared error (Eq. 6) over every validation target
  image with a target embedding; the reduction does not change which checkpoint is best.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import json
import os
import re
import time
from collections.abc import Iterator, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from absl import logging
from clu import metric_writers, periodic_actions
from jax.experimental import multihost_utils

from jaxreid import config as config_lib
from jaxreid import losses, models, train
from jaxreid.data import pipeline, preprocessing, sampler
from jaxreid.data.image_set import ImageSet

TARGETS = ("auto", "paired", "class_mean")
FROZEN_BN = ("fixed", "update")
EARLY_STOPPING = ("val_loss", "val_mAP")
# 'auto' freezing point: the thesis author's code freezes every parameter from the first one
# with 256 output channels (ResNet18) / 1024 (ResNet50) onwards (transfer-reid/retrainer.py).
# At width w these are layer3 (4w channels, BasicBlock) and layer3_0's conv3 (16w channels,
# Bottleneck; its conv1/conv2 have 4w channels and stay trainable). ResNet34 follows ResNet18.
AUTO_FREEZE_FROM = {"resnet18": "layer3", "resnet34": "layer3", "resnet50": "layer3_0/conv3"}

# Forward order of ReIDNet's modules (jaxreid.models.resnet / reid), as positions
# (stage, block, layer): the stem is stage 0, layer<i> is stage i, the head comes last.
_HEAD_STAGE = 99
_STEM_LAYERS = ("conv1", "bn1")
_BLOCK_LAYERS = ("conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "downsample_conv", "downsample_bn")
# The dropout only feeds the classifier, so it sits at the classifier's position.
_HEAD_LAYERS = {"embedding": 0, "embedding_bn": 1, "Dropout_0": 2, "classifier": 2}
_STAGE = re.compile(r"layer(\d+)")
_BLOCK = re.compile(r"layer(\d+)_(\d+)")


# --- which part of G is frozen ---------------------------------------------------------------


def module_position(path: Sequence[str]) -> tuple[int, ...]:
    """Forward-order position of a ReIDNet submodule, e.g. ('backbone', 'layer3_0', 'bn1').

    Positions compare as tuples: a module runs after the freezing point iff its position is
    >= the freezing point's (a prefix such as (3,) for 'layer3' sorts before all of layer3).

    Raises:
      ValueError: the path is not a module of ReIDNet on a jaxreid ResNet.
    """
    path = tuple(path)
    if len(path) >= 2 and path[0] == "backbone":
        rest = path[1:]
        if len(rest) == 1 and rest[0] in _STEM_LAYERS:
            return (0, 0, _STEM_LAYERS.index(rest[0]))
        block = _BLOCK.fullmatch(rest[0])
        if block:
            position = (int(block[1]), int(block[2]))
            if len(rest) == 1:
                return position
            if len(rest) == 2 and rest[1] in _BLOCK_LAYERS:
                return position + (_BLOCK_LAYERS.index(rest[1]),)
    elif len(path) == 1 and path[0] in _HEAD_LAYERS:
        return (_HEAD_STAGE, _HEAD_LAYERS[path[0]])
    raise ValueError(
        f"Module {'/'.join(path)!r} is not a layer of ReIDNet on a jaxreid ResNet (expected "
        "backbone/conv1, backbone/bn1, backbone/layer<i>_<j>/<layer>, embedding, "
        "embedding_bn, classifier); jaxreid.distill cannot place it in the forward order."
    )


def freeze_position(freeze_from: str, backbone: str) -> tuple[int, ...] | None:
    """The position of config.distill.freeze_from, or None for 'none' (nothing frozen).

    Args:
      freeze_from: 'auto' | 'none' | 'stem' | 'layer<i>' | 'layer<i>_<j>' |
        'layer<i>_<j>/<conv1|bn1|...|downsample_bn>' | 'embedding' | 'embedding_bn' |
        'classifier'.
      backbone: config.model.backbone (for 'auto').
    """
    if freeze_from == "none":
        return None
    if freeze_from == "auto":
        if backbone not in AUTO_FREEZE_FROM:
            raise ValueError(
                f"config.distill.freeze_from='auto' has no default for config.model.backbone="
                f"{backbone!r}; known: {sorted(AUTO_FREEZE_FROM)}. Name a layer instead."
            )
        freeze_from = AUTO_FREEZE_FROM[backbone]
    if freeze_from == "stem":
        return (0,)
    stage = _STAGE.fullmatch(freeze_from)
    if stage:
        return (int(stage[1]),)
    if freeze_from in ("embedding", "embedding_bn", "classifier"):
        return module_position((freeze_from,))
    try:
        return module_position(("backbone", *freeze_from.split("/")))
    except ValueError:
        raise ValueError(
            f"config.distill.freeze_from={freeze_from!r}; expected 'auto', 'none', 'stem', "
            "'layer<i>', 'layer<i>_<j>', 'layer<i>_<j>/<conv1|bn1|conv2|bn2|conv3|bn3|"
            "downsample_conv|downsample_bn>', 'embedding', 'embedding_bn' or 'classifier'."
        ) from None


def is_frozen(path: Sequence[str], position: tuple[int, ...] | None) -> bool:
    """Whether the module at `path` runs at or after the freezing point `position`."""
    return position is not None and module_position(path) >= position


def frozen_mask(params, position: tuple[int, ...] | None, freeze_from: str = ""):
    """A pytree like `params` with Python bools: True for the frozen parameters.

    Args:
      params: ReIDNet parameters ({'backbone': {...}, 'embedding': ..., 'classifier': ...}).
      position: from `freeze_position`; None freezes nothing.
      freeze_from: the config value, for the error message.

    Raises:
      ValueError: the freezing point names a layer this network does not have (e.g.
        'layer3_0/conv3' on a BasicBlock ResNet, or 'embedding' with embedding_size 0).
    """

    def module_path(key_path):
        return tuple(k.key for k in key_path[:-1])  # Drop the leaf name ('kernel', ...).

    paths = [module_path(kp) for kp, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    if position is not None and not any(
        module_position(p)[: len(position)] == position for p in paths
    ):
        names = sorted({"/".join(p[1:] if p[0] == "backbone" else p) for p in paths})
        raise ValueError(
            f"config.distill.freeze_from={freeze_from!r} names no layer of this network; "
            f"its layers are: {', '.join(names)}."
        )
    return jax.tree_util.tree_map_with_path(
        lambda kp, _: is_frozen(module_path(kp), position), params
    )


@contextlib.contextmanager
def frozen_layers_in_inference_mode(position: tuple[int, ...] | None):
    """Within the context, ReIDNet's BatchNorm layers at or after `position` normalise with
    their running statistics (and do not update them) and its dropout at or after `position`
    is off, even when the network is applied with train=True (config.distill.frozen_bn='fixed').
    """

    def interceptor(next_fun, args, kwargs, context):
        module = context.module
        if context.method_name != "__call__" or not module.path:
            return next_fun(*args, **kwargs)
        if isinstance(module, models.BatchNorm) and is_frozen(module.path, position):
            if len(args) > 1:  # BatchNorm.__call__(x, train)
                args = (args[0], False, *args[2:])
            else:
                kwargs = {**kwargs, "train": False}
        elif isinstance(module, nn.Dropout) and is_frozen(module.path, position):
            return args[0] if args else kwargs["inputs"]  # Dropout in inference mode.
        return next_fun(*args, **kwargs)

    if position is None:
        yield
        return
    with nn.intercept_methods(interceptor):
        yield


def masked_optimizer(
    optim: ml_collections.ConfigDict, schedule: optax.Schedule, mask
) -> optax.GradientTransformation:
    """`train.create_optimizer` on the trainable parameters, zero updates for frozen ones.

    The frozen parameters get neither weight decay nor momentum, and no optimiser state.
    """
    labels = jax.tree.map(lambda frozen: "frozen" if frozen else "trainable", mask)
    return optax.multi_transform(
        {"trainable": train.create_optimizer(optim, schedule), "frozen": optax.set_to_zero()},
        labels,
    )


# --- the Step II train step ------------------------------------------------------------------


def distill_step(
    state: train.TrainState,
    batch: dict[str, jax.Array],
    *,
    model: nn.Module,
    tx: optax.GradientTransformation,
    schedule: optax.Schedule,
    mask,
    position: tuple[int, ...] | None,
    frozen_bn: str,
    reduction: str,
    dropout_key: jax.Array,
) -> tuple[train.TrainState, dict[str, jax.Array]]:
    """One Step II update of G on the global batch.

    Args:
      state: G's state (params, model_state with 'batch_stats', masked optimiser state).
      batch: image [B, H, W, C] float32 target-modality images; teacher [B, D] float32, F's
        embedding of each image's paired source frame (or its identity's mean).
      mask: `frozen_mask(state.params, position)` (static).
      frozen_bn: 'fixed' or 'update' (config.distill.frozen_bn).
      reduction: of `losses.mse_distillation`.

    Returns:
      The new state; metrics 'loss' (with `reduction`), 'per_sample_loss' (Eq. 6),
      'learning_rate', 'grad_norm' (of the trainable parameters).
    """
    key = jax.random.fold_in(dropout_key, state.step)
    inference = frozen_bn == "fixed"

    def loss_fn(params):
        # No gradient for frozen parameters: XLA then skips their weight gradients.
        params = jax.tree.map(lambda p, f: jax.lax.stop_gradient(p) if f else p, params, mask)
        scope = frozen_layers_in_inference_mode(position if inference else None)
        with scope:
            (embedding, _), new_model_state = model.apply(
                {"params": params, **state.model_state},
                batch["image"],
                train=True,
                mutable=list(state.model_state.keys()),
                rngs={"dropout": key},
            )
        loss = losses.mse_distillation(embedding, batch["teacher"], reduction=reduction)
        per_sample = losses.mse_distillation(embedding, batch["teacher"], reduction="per_sample")
        return loss, (new_model_state, per_sample)

    (loss, (new_model_state, per_sample)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params
    )
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    # Frozen parameters are passed through untouched (x + 0.0 would turn -0.0 into +0.0).
    params = jax.tree.map(lambda new, old, f: old if f else new, params, state.params, mask)
    metrics = {
        "loss": loss,
        "per_sample_loss": per_sample,
        "learning_rate": schedule(state.step),
        "grad_norm": optax.tree.norm(grads),
    }
    new_state = train.TrainState(
        step=state.step + 1, params=params, model_state=new_model_state, opt_state=opt_state
    )
    return new_state, metrics


# --- targets ---------------------------------------------------------------------------------


def paired_targets(
    target: ImageSet, source: ImageSet, source_embeddings: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """F's embedding of each target image's simultaneous source frame (same frame_id).

    Args:
      target: the target-modality images.
      source: the source-modality images of the same split.
      source_embeddings: [N_source, D] float32, F's embeddings of `source`, in its order.

    Returns:
      keep: [M] int64 indices of the target images that have a paired source frame.
      targets: [M, D] float32, the paired source embedding of each kept target image.

    Raises:
      ValueError: a frame_id occurs twice in `source` (the pairing would be ambiguous).
    """
    by_frame = {}
    for j, frame in enumerate(source.frame_ids):
        if frame == "":
            continue
        if frame in by_frame:
            raise ValueError(
                f"frame_id {frame!r} occurs twice in the {source.modality} images "
                f"({source.filenames[by_frame[frame]]}, {source.filenames[j]}); paired "
                "distillation needs one source frame per frame_id."
            )
        by_frame[frame] = j
    keep, rows = [], []
    for i, frame in enumerate(target.frame_ids):
        j = by_frame.get(frame) if frame != "" else None
        if j is not None:
            keep.append(i)
            rows.append(j)
    source_embeddings = np.asarray(source_embeddings, np.float32)
    return np.asarray(keep, np.int64), source_embeddings[np.asarray(rows, np.int64)]


def class_mean_targets(
    target: ImageSet, source: ImageSet, source_embeddings: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The mean F embedding of each target image's identity over its source images
    (Hafner 2018 §5.2.3.3; the author's gt_extractor.extract_gt_av).

    Returns:
      keep: [M] int64 indices of the target images whose identity has source images.
      targets: [M, D] float32.
    """
    source_embeddings = np.asarray(source_embeddings, np.float32)
    means = {
        pid: source_embeddings[source.person_ids == pid].mean(axis=0)
        for pid in np.unique(source.person_ids)
    }
    keep = np.asarray([i for i, pid in enumerate(target.person_ids) if pid in means], np.int64)
    targets = (
        np.stack([means[target.person_ids[i]] for i in keep])
        if len(keep)
        else (np.zeros((0, source_embeddings.shape[1]), np.float32))
    )
    return keep, targets.astype(np.float32)


def resolve_targets(kind: str, target: ImageSet, source: ImageSet) -> str:
    """'paired' or 'class_mean' for config.distill.targets ('auto': paired if any pairs)."""
    if kind != "auto":
        return kind
    source_frames = set(source.frame_ids.tolist()) - {""}
    paired = any(f in source_frames for f in target.frame_ids.tolist() if f != "")
    return "paired" if paired else "class_mean"


def distillation_targets(
    kind: str, target: ImageSet, source: ImageSet, source_embeddings: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`paired_targets` or `class_mean_targets` for kind 'paired' / 'class_mean'."""
    if kind == "paired":
        keep, targets = paired_targets(target, source, source_embeddings)
    elif kind == "class_mean":
        keep, targets = class_mean_targets(target, source, source_embeddings)
    else:
        raise ValueError(f"config.distill.targets={kind!r}; expected one of {TARGETS}.")
    if not len(keep):
        raise ValueError(
            f"No {target.modality} image has a {kind} target in the {source.modality} images"
            + (
                "; set config.distill.targets='class_mean' for unpaired data."
                if kind == "paired"
                else "."
            )
        )
    return keep, targets


# --- Step II batches -------------------------------------------------------------------------


def step2_batches(
    target: ImageSet,
    targets: np.ndarray,
    norm: preprocessing.Normalization,
    config: ml_collections.ConfigDict,
    *,
    start_step: int,
    num_steps: int,
    process_index: int = 0,
    process_count: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
    """This host's share of the P x K target-modality batches of steps start_step+1..num_steps.

    Args:
      target: the target images that have a target embedding.
      targets: [len(target), D] float32, the target embedding of each image of `target`.
      config: the run's config (batch, data augmentation, input layout, seed).

    Yields:
      image [B, H, W, C] float32 (augmented as config.data says), teacher [B, D] float32,
      label [B] int32; B = P * K / process_count.
    """
    index = sampler.index_identities([target.person_ids])
    p, k = config.batch.num_identities, config.batch.images_per_identity
    local = p * k // process_count
    lo, hi = process_index * local, (process_index + 1) * local
    batches = pipeline.train_batches(
        [target],
        [norm],
        index,
        num_identities=p,
        images_per_identity=k,
        layout=config.data.input_layout,
        seed=config.seed,
        start_step=start_step,
        num_steps=num_steps,
        random_flip=config.data.random_flip,
        pad_crop=config.data.pad_crop,
        process_index=process_index,
        process_count=process_count,
    )
    for step, batch in zip(range(start_step, num_steps), batches):
        # The pipeline draws the batch of `step` with this same pure function of (seed, step);
        # drawing it again tells which images it holds.
        labels, _, positions = sampler.sample_batch(index, p, k, config.seed, step)
        if not np.array_equal(labels[lo:hi], batch["label"]):
            raise RuntimeError(
                f"Step II batch {step}: the pipeline's labels differ from "
                "sampler.sample_batch's; the teacher targets would be misaligned."
            )
        yield {
            "image": batch["image"],
            "teacher": targets[positions[lo:hi]],
            "label": batch["label"],
        }


# --- Step I and the teacher ------------------------------------------------------------------


def check_config(config: ml_collections.ConfigDict) -> tuple[str, str]:
    """Validates the distillation settings; returns (source modality, target modality)."""
    d = config.distill
    modalities = tuple(config.data.modalities)
    if len(modalities) != 2 or d.source_modality not in modalities:
        raise ValueError(
            f"config.distill.source_modality={d.source_modality!r} and config.data.modalities="
            f"{modalities}: distillation needs two modalities, the source one of them."
        )
    for key, valid in (
        ("targets", TARGETS),
        ("frozen_bn", FROZEN_BN),
        ("early_stopping", EARLY_STOPPING),
        ("loss_reduction", losses.MSE_REDUCTIONS),
    ):
        if d[key] not in valid:
            raise ValueError(f"config.distill.{key}={d[key]!r}; expected one of {valid}.")
    if config.data.input_layout not in ("shared", "gray"):
        raise ValueError(
            f"config.data.input_layout={config.data.input_layout!r}: F and G share one input "
            "format, expected 'shared' or 'gray' (zero padding is a one-network method)."
        )
    if config.model.get("head", "linear") != "linear":
        raise ValueError(
            f"config.model.head={config.model.head!r}: distillation freezes layers of ReIDNet's "
            "linear head; expected 'linear'."
        )
    freeze_position(d.freeze_from, config.model.backbone)
    source = d.source_modality
    return source, next(m for m in modalities if m != source)


def step1_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The config of Step I: the single-modal network F on the source modality."""
    step1 = copy.deepcopy(config)
    step1.data.modalities = (config.distill.source_modality,)
    step1.eval.val_pairs = ()
    step1.eval.test_protocol = "pairs"  # 'sysu' / 'regdb' need both modalities.
    step1.distill.enabled = False
    return step1


@dataclasses.dataclass
class Teacher:
    """F, restored from a finished Step I workdir.

    Attributes:
      workdir: the Step I workdir.
      config: Step I's config (from run.json).
      num_classes: classifier size of F (and G).
      class_person_ids: [C] person id of each class.
      image_shape: (H, W, C) network input.
      normalization: {modality: Normalization} of Step I.
      state: F's TrainState at `step` (the checkpoint Step I tested: best validation mAP).
      step: that checkpoint's step.
      results: Step I's results.json.
    """

    workdir: str
    config: ml_collections.ConfigDict
    num_classes: int
    class_person_ids: list
    image_shape: tuple
    normalization: dict
    state: train.TrainState
    step: int
    results: dict


def load_teacher(workdir: str) -> Teacher:
    """Restores F from a finished Step I workdir (run.json, results.json, best/).

    Raises:
      FileNotFoundError: Step I has not finished there.
    """
    results_path = os.path.join(workdir, "results.json")
    if not os.path.exists(results_path):
        raise FileNotFoundError(
            f"config.distill.teacher_workdir={workdir!r} holds no finished Step I run "
            "(results.json missing); train it with jaxreid.main first."
        )
    with open(os.path.join(workdir, "run.json")) as f:
        run_info = json.load(f)
    with open(results_path) as f:
        results = json.load(f)
    config = ml_collections.ConfigDict(run_info["config"])
    image_shape = tuple(run_info["image_shape"])
    restore_config = copy.deepcopy(config)
    restore_config.model.pretrained = ""  # The checkpoint holds the weights.
    run = train.Run(restore_config, run_info["num_classes"], image_shape)
    abstract = _abstract(run.init_state())
    step = int(results["step"])
    manager = ocp.CheckpointManager(os.path.join(workdir, "best"))
    if step not in manager.all_steps():
        raise FileNotFoundError(
            f"Step I tested the checkpoint of step {step}, but {workdir}/best has steps "
            f"{manager.all_steps()}."
        )
    state = manager.restore(step, args=ocp.args.StandardRestore(abstract))
    manager.close()
    norms = {
        m: preprocessing.Normalization(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in n.items()}
        )
        for m, n in run_info["normalization"].items()
    }
    return Teacher(
        workdir=workdir,
        config=config,
        num_classes=int(run_info["num_classes"]),
        class_person_ids=run_info["class_person_ids"],
        image_shape=image_shape,
        normalization=norms,
        state=state,
        step=step,
        results=results,
    )


def _abstract(tree):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)


def step2_config(config: ml_collections.ConfigDict, teacher: Teacher) -> ml_collections.ConfigDict:
    """The config of Step II's `train.Run`: F's network and input, Step II's optimiser."""
    step2 = copy.deepcopy(config)
    for group, keys in (
        ("model", None),
        ("loss", ("name",)),
        ("data", ("image_size", "input_layout", "normalization", "center_depth")),
    ):
        for key in keys or teacher.config[group].keys():
            if key not in teacher.config[group] or key not in step2[group]:
                continue  # A key of another schema version.
            value, mine = teacher.config[group][key], step2[group][key]
            if _plain(value) != _plain(mine):
                logging.warning(
                    "Step II uses Step I's config.%s.%s=%r (this config says %r).",
                    group,
                    key,
                    value,
                    mine,
                )
            step2[group][key] = tuple(value) if isinstance(value, list) else value
    step2.optim = copy.deepcopy(config.distill.optim)
    step2.num_train_steps = config.distill.num_train_steps
    return step2


def _plain(x):
    return list(x) if isinstance(x, (list, tuple)) else x


# --- Step II ---------------------------------------------------------------------------------


def _embed(run: train.Run, state: train.TrainState, image_set: ImageSet, norm) -> np.ndarray:
    # The optimiser state is not needed to embed; dropping it lets F and G share one compile.
    return run.embed(state.replace(opt_state=None), image_set, norm)


class PerModalityNetworks:
    """Stands in for `train.Run` in `train.evaluate_sets` / `train.test_results`: embeds each
    modality with its own network (Hafner 2018 §3.3.3: F for the source modality, G for the
    target), so that validation and test use the trainer's protocols unchanged.

    Attributes:
      run: the Step II run (mesh, compiled embed step, config).
      states: {modality: TrainState} of the network that embeds it.
    """

    def __init__(self, run: train.Run, states: dict):
        self.run, self.states, self.config = run, states, run.config

    def embed(self, _state, image_set: ImageSet, norm) -> np.ndarray:
        return _embed(self.run, self.states[image_set.modality], image_set, norm)


def init_student(run: train.Run, teacher: Teacher, *, copy_weights: bool):
    """G's initial (params, model_state): F's, copied, or G's own initialisation.

    Copies are new buffers, because the train step donates (invalidates) its input and F is
    still needed. The own initialisation is `run.init_state()` with the key
    fold_in(key(config.seed), 1), so that G does not start from F's Step I initialisation
    (with config.model.pretrained set it is the pretrained network, as in the author's code,
    whose `--dont-load-weights` G starts from ImageNet weights).
    """
    if copy_weights:
        return (
            jax.tree.map(jnp.copy, teacher.state.params),
            jax.tree.map(jnp.copy, teacher.state.model_state),
        )
    init_key = run.init_key
    run.init_key = jax.random.fold_in(jax.random.key(run.config.seed), 1)
    try:
        own = run.init_state()
    finally:
        run.init_key = init_key
    return own.params, own.model_state


def _step2(
    config: ml_collections.ConfigDict, teacher: Teacher, workdir: str, source: str, target: str
) -> dict:
    """Trains and tests G (Step II) in `workdir`; resumes if it holds a run."""
    os.makedirs(workdir, exist_ok=True)
    cfg = step2_config(config, teacher)
    d = config.distill
    writer = metric_writers.create_default_writer(workdir, just_logging=jax.process_index() > 0)
    writer.write_hparams(train._flat_hparams(cfg))  # pylint: disable=protected-access

    splits, norms = train.load_data(cfg)
    norms[source] = teacher.normalization[source]  # F's own input statistics.
    image_shape = (*cfg.data.image_size, preprocessing.input_channels(cfg.data.input_layout))
    if tuple(image_shape) != tuple(teacher.image_shape):
        raise ValueError(
            f"Step II input {image_shape} differs from Step I's {teacher.image_shape}."
        )
    run = train.Run(cfg, teacher.num_classes, image_shape)

    # F's embeddings of the source images (computed once: F is frozen).
    f_train = _embed(run, teacher.state, splits["train"][source], norms[source])
    f_val = _embed(run, teacher.state, splits["val"][source], norms[source])
    kind = resolve_targets(d.targets, splits["train"][target], splits["train"][source])
    keep, targets = distillation_targets(
        kind, splits["train"][target], splits["train"][source], f_train
    )
    val_keep, val_targets = distillation_targets(
        kind, splits["val"][target], splits["val"][source], f_val
    )
    train_set = splits["train"][target].select(keep)
    logging.info(
        "Step II: %s -> %s, %s targets for %d of %d %s training images (%d identities); "
        "freeze_from=%s, frozen_bn=%s, copy_weights=%s.",
        source,
        target,
        kind,
        len(keep),
        len(splits["train"][target]),
        target,
        len(np.unique(train_set.person_ids)),
        d.freeze_from,
        d.frozen_bn,
        d.copy_weights,
    )

    params, model_state = init_student(run, teacher, copy_weights=d.copy_weights)
    position = freeze_position(d.freeze_from, cfg.model.backbone)
    mask = frozen_mask(params, position, d.freeze_from)
    tx = masked_optimizer(cfg.optim, run.schedule, mask)
    state = jax.device_put(
        train.TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            model_state=model_state,
            opt_state=tx.init(params),
        ),
        run.replicated,
    )
    step_fn = jax.jit(
        functools.partial(
            distill_step,
            model=run.model,
            tx=tx,
            schedule=run.schedule,
            mask=mask,
            position=position,
            frozen_bn=d.frozen_bn,
            reduction=d.loss_reduction,
            dropout_key=run.dropout_key,
        ),
        in_shardings=(run.replicated, run.data_sharding),
        out_shardings=(run.replicated, run.replicated),
        donate_argnums=0,
    )
    num_frozen = sum(
        int(np.prod(p.shape)) for p, f in zip(jax.tree.leaves(params), jax.tree.leaves(mask)) if f
    )
    logging.info(
        "Step II: %d of %d parameters frozen.",
        num_frozen,
        sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params)),
    )

    by_loss = d.early_stopping == "val_loss"
    latest = ocp.CheckpointManager(
        os.path.join(workdir, "checkpoints"),
        options=ocp.CheckpointManagerOptions(max_to_keep=cfg.keep_checkpoints, create=True),
    )
    best = ocp.CheckpointManager(
        os.path.join(workdir, "best"),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=1,
            best_fn=(lambda m: m["val_loss"]) if by_loss else (lambda m: m["val_mAP"]),
            best_mode="min" if by_loss else "max",
            keep_checkpoints_without_metrics=False,
            create=True,
        ),
    )
    if latest.latest_step() is not None:
        state = latest.restore(
            latest.latest_step(), args=ocp.args.StandardRestore(_abstract(state))
        )
        logging.info("Resumed Step II from step %d in %s.", int(state.step), workdir)
    start_step = int(state.step)
    if jax.process_index() == 0:
        train.write_json_atomically(
            os.path.join(workdir, "run.json"),
            {
                "config": cfg.to_dict(),
                "num_classes": teacher.num_classes,
                "class_person_ids": teacher.class_person_ids,
                "image_shape": image_shape,
                "normalization": {m: n.to_dict() for m, n in norms.items()},
                # Which network embeds which modality at inference (Hafner 2018 §3.3.3).
                "networks": {
                    source: {
                        "workdir": teacher.workdir,
                        "checkpoint": "best",
                        "step": teacher.step,
                    },
                    target: {"workdir": workdir, "checkpoint": "best"},
                },
                "targets": kind,
            },
        )

    def validate(state):
        """(validation loss, validation mAP): G's MSE to the targets; F/G cross-modal mAP."""
        g_val = _embed(run, state, splits["val"][target], norms[target])
        loss = float(np.mean(np.sum((g_val[val_keep] - val_targets) ** 2, axis=1)))
        networks = PerModalityNetworks(run, {source: teacher.state, target: state})
        pairs = train.evaluate_sets(networks, None, splits["val"], norms, cfg.eval.val_protocol)
        return loss, train.validation_score(cfg, pairs)

    num_steps = cfg.num_train_steps
    batches = step2_batches(
        train_set,
        targets,
        norms[target],
        cfg,
        start_step=start_step,
        num_steps=num_steps,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
    )
    report = periodic_actions.ReportProgress(num_train_steps=num_steps, writer=writer)
    global_batch = cfg.batch.num_identities * cfg.batch.images_per_identity
    history, tick = [], time.time()
    for step in range(start_step + 1, num_steps + 1):
        batch = next(batches)
        state, metrics = step_fn(
            state, run.global_batch({"image": batch["image"], "teacher": batch["teacher"]})
        )
        report(step)
        history.append(metrics)
        if step % cfg.log_every_steps == 0 or step == num_steps:
            summary = {
                k: float(np.mean([jax.device_get(m[k]) for m in history])) for k in history[0]
            }
            summary["images_per_sec"] = len(history) * global_batch / max(time.time() - tick, 1e-9)
            writer.write_scalars(step, {f"train/{k}": v for k, v in summary.items()})
            history, tick = [], time.time()
        is_last = step == num_steps
        if step % d.eval_every_steps == 0 or is_last:
            with report.timed("eval"):
                val_loss, val_map = validate(state)
            writer.write_scalars(step, {"val/loss": val_loss, "val/mAP": val_map})
            logging.info(
                "Step II step %d: validation loss %.4f, mAP %.2f%%.", step, val_loss, 100 * val_map
            )
            best.save(
                step,
                args=ocp.args.StandardSave(state),
                metrics={"val_loss": val_loss, "val_mAP": val_map},
            )
        if step % cfg.checkpoint_every_steps == 0 or is_last:
            latest.save(step, args=ocp.args.StandardSave(state))
    latest.wait_until_finished()
    best.wait_until_finished()

    tick = time.time()
    final_step = int(state.step)
    best_step = best.best_step()
    if best_step is not None and best_step != final_step:
        state = best.restore(best_step, args=ocp.args.StandardRestore(_abstract(state)))
    val_loss, val_map = validate(state)
    networks = PerModalityNetworks(run, {source: teacher.state, target: state})
    test = train.test_results(networks, None, splits["test"], norms)
    results = {
        "config": config.to_dict(),
        "method": "distill",
        "source_modality": source,
        "target_modality": target,
        "targets": kind,
        "final_step": final_step,
        "step": int(state.step),  # Of the tested (best) checkpoint.
        "best_step": best_step,
        "early_stopping": d.early_stopping,
        "val_loss": val_loss,
        "val_mAP": val_map,
        "num_classes": teacher.num_classes,
        "normalization": {m: n.to_dict() for m, n in norms.items()},
        "step1": {
            "workdir": teacher.workdir,
            "step": teacher.step,
            "test": teacher.results.get("test"),
        },
        "test": test,
        "test_time_sec": time.time() - tick,
    }
    if jax.process_index() == 0:
        write_results(workdir, results, config)
    writer.flush()
    latest.close()
    best.close()
    return results


def write_results(workdir: str, results: dict, config: ml_collections.ConfigDict) -> None:
    """results.json and results.md, in `train.write_results`' format (written atomically)."""
    embedding = config.model.embedding_size or "classification layer"
    title = (
        f"{config.data.name}, {config.model.backbone}, {config.loss.name}, cross-modal "
        f"distillation {results['source_modality']} -> {results['target_modality']} "
        f"(embedding {embedding}): test set, Step II checkpoint of step {results['step']} "
        f"(best {results['early_stopping'].replace('_', ' ')})"
    )
    train.write_results(workdir, results, config, title)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Runs Step I (unless config.distill.teacher_workdir is given) and Step II; resumes.

    Writes <workdir>/step1 (Step I, as `train.train_and_evaluate`), <workdir>/step2 (G's
    checkpoints, summaries, results) and <workdir>/results.json / results.md (the test
    results of the pair F, G for all four query/gallery modality pairs).

    Returns:
      The contents of results.json.
    """
    config_lib.validate(config)
    source, target = check_config(config)
    workdir = os.path.abspath(os.fspath(workdir))
    os.makedirs(workdir, exist_ok=True)
    if config.distill.teacher_workdir:
        teacher_dir = os.path.abspath(config.distill.teacher_workdir)
    else:
        teacher_dir = os.path.join(workdir, "step1")
        if not os.path.exists(os.path.join(teacher_dir, "results.json")):
            logging.info("Step I: single-modal network on %s in %s.", source, teacher_dir)
            train.train_and_evaluate(step1_config(config), teacher_dir)
    teacher = load_teacher(teacher_dir)
    if list(teacher.config.data.modalities) != [source]:
        raise ValueError(
            f"The Step I run in {teacher_dir} was trained on {list(teacher.config.data.modalities)}"
            f"; config.distill.source_modality={source!r} needs a single-modal {source} network."
        )
    step2_dir = os.path.join(workdir, "step2")
    if os.path.exists(os.path.join(step2_dir, "results.json")):
        with open(os.path.join(step2_dir, "results.json")) as f:
            results = json.load(f)
    else:
        results = _step2(config, teacher, step2_dir, source, target)
    if jax.process_index() == 0:
        write_results(workdir, results, config)
    multihost_utils.sync_global_devices("jaxreid.distill done")
    return results
