"""Checkpoints of a work directory: the latest ones (resume), the best one (test), restoring.

Layout (jaxreid.workdir): <workdir>/checkpoints/<step>/ (the latest `keep` steps) and
<workdir>/best/<step>/ (the one with the best validation score), each an Orbax PyTree of a
`TrainState`. Orbax writes a checkpoint into a temporary folder and renames it when complete,
so a run killed while saving resumes from the previous checkpoint.

One way to restore: `restore` (the whole train state, with an abstract target of shapes and
shardings) for resuming, and `restore_variables` (parameters and model state only, never the
optimiser state) for a network that is only embedded; `load_trained_run` (run.json, the network
it describes and a checkpoint's variables) is the one loader of trained runs (inference,
`jaxreid.evaluate`, the distillation teacher).
"""

from __future__ import annotations

import dataclasses
import logging as pylogging
import math
import os

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from jaxreid import models
from jaxreid import workdir as workdir_lib
from jaxreid.data import preprocessing
from jaxreid.training.state import Mesh, abstract


class NonFiniteCheckpointError(RuntimeError):
    """A checkpoint was about to be written with a non-finite value."""


@jax.jit
def _finite(tree) -> jax.Array:
    leaves = [
        jnp.all(jnp.isfinite(x))
        for x in jax.tree.leaves(tree)
        if jnp.issubdtype(x.dtype, jnp.inexact)
    ]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def all_finite(tree) -> bool:
    """Whether every floating-point value of `tree` is finite (computed on device)."""
    return bool(_finite(tree))


class Checkpoints:
    """The latest and the best checkpoints of one run directory.

    Args:
      directory: the work directory.
      keep: how many of the latest checkpoints to keep (config.keep_checkpoints).
      best_metric: the metric of `offer_best` that ranks checkpoints ('val_mAP', or
        'val_loss' for distillation Step II; stored with each checkpoint in best/).
      best_mode: 'max' (validation mAP) or 'min' (validation loss).
    """

    def __init__(
        self, directory: str, *, keep: int, best_metric: str = "val_mAP", best_mode: str = "max"
    ):
        self.latest = ocp.CheckpointManager(
            os.path.join(directory, workdir_lib.LATEST_DIR),
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
        )
        self.best = ocp.CheckpointManager(
            os.path.join(directory, workdir_lib.BEST_DIR),
            options=ocp.CheckpointManagerOptions(
                max_to_keep=1,
                best_fn=lambda metrics: metrics[best_metric],
                best_mode=best_mode,
                keep_checkpoints_without_metrics=False,
                create=True,
            ),
        )
        self.best_metric = best_metric

    def latest_step(self) -> int | None:
        return self.latest.latest_step()

    def best_step(self) -> int | None:
        return self.best.best_step()

    def save(self, step: int, state) -> None:
        """Saves `state` as the latest checkpoint of `step`.

        Raises:
          NonFiniteCheckpointError: `state` holds a non-finite value (nothing is written).
        """
        if not all_finite(state):
            raise NonFiniteCheckpointError(f"Step {step}: the train state is not finite.")
        self.latest.save(step, args=ocp.args.StandardSave(state), force=True)

    def offer_best(self, step: int, state, metrics: dict[str, float]) -> bool:
        """Saves `state` in best/ if metrics[best_metric] beats the kept checkpoint's.

        A NaN score is warned about and never kept (it would displace a real best).

        Returns:
          Whether the score was finite (and so offered).
        """
        score = float(metrics[self.best_metric])
        if not math.isfinite(score):
            logging.warning(
                "Step %d: the %s is %s (e.g. no validation query has a true match in the "
                "gallery); this checkpoint is not considered for best/.",
                step,
                self.best_metric,
                score,
            )
            return False
        if not all_finite(state):
            raise NonFiniteCheckpointError(f"Step {step}: the train state is not finite.")
        metrics = {k: float(v) for k, v in metrics.items()}
        self.best.save(step, args=ocp.args.StandardSave(state), metrics=metrics, force=True)
        if jax.process_count() > 1:
            # Orbax names its cross-process barriers by step: a latest/ save of the same step
            # while this one is still in flight would reuse them and fail.
            self.best.wait_until_finished()
        return True

    def restore_latest(self, target):
        """The latest checkpoint restored like `target` (a TrainState), or None."""
        step = self.latest.latest_step()
        return None if step is None else restore(self.latest, step, target)

    def restore_best(self, target):
        step = self.best.best_step()
        return None if step is None else restore(self.best, step, target)

    def state_to_test(self, state):
        """(the best checkpoint's state, or `state` if it is the best or none was kept,
        the final step, the best step or None): what a finished run tests."""
        final_step, best_step = int(state.step), self.best.best_step()
        if best_step is not None and best_step != final_step:
            state = self.restore_best(state)
        return state, final_step, best_step

    def wait(self) -> None:
        self.latest.wait_until_finished()
        self.best.wait_until_finished()

    def close(self) -> None:
        self.latest.close()
        self.best.close()


def restore(manager: ocp.CheckpointManager, step: int, target):
    """The whole checkpoint of `step`, with the shapes, dtypes and shardings of `target`."""
    return manager.restore(step, args=ocp.args.StandardRestore(abstract(target)))


# --- reading checkpoints of finished runs ----------------------------------------------------


class _ReadOnlyNotices(pylogging.Filter):
    """Drops Orbax's warnings that a read-only manager is read-only (that is the point)."""

    def filter(self, record: pylogging.LogRecord) -> bool:
        message = record.getMessage()
        return not (
            message.startswith("Given directory is read only")
            or message.startswith("CheckpointManagerOptions.read_only=True")
            or message.startswith("Metadata file does not exist")
        )


_READ_ONLY_NOTICES = _ReadOnlyNotices()


def read_only_manager(directory: str) -> ocp.CheckpointManager:
    """A manager that never creates, deletes or cleans up anything in `directory`."""
    pylogging.getLogger("absl").addFilter(_READ_ONLY_NOTICES)  # a no-op when already added
    options = ocp.CheckpointManagerOptions(
        read_only=True,
        create=False,
        save_interval_steps=0,
        max_to_keep=None,
        cleanup_tmp_directories=False,
    )
    return ocp.CheckpointManager(directory, options=options)


def _steps(directory: str) -> list[int]:
    if not os.path.isdir(directory):
        return []
    manager = read_only_manager(directory)
    try:
        return sorted(int(s) for s in manager.all_steps())
    finally:
        manager.close()


def find_checkpoint(workdir, checkpoint: str | int = "best") -> tuple[str, int]:
    """(checkpoint directory, step) selected by `checkpoint`.

    Args:
      checkpoint: 'best' — the checkpoint in best/ that the run tested (results.json 'step');
        while a run is still training, the newest step in best/ (best/ keeps one); 'latest'
        — the newest step in checkpoints/ or best/; or a step number (looked up in
        checkpoints/, then best/).

    Raises:
      FileNotFoundError: no such checkpoint, naming what there is.
      ValueError: `checkpoint` is none of the above.
    """
    workdir = os.fspath(workdir)
    best_dir = os.path.join(workdir, workdir_lib.BEST_DIR)
    latest_dir = os.path.join(workdir, workdir_lib.LATEST_DIR)
    if checkpoint == "best":
        kept = _steps(best_dir)
        if not kept:
            raise FileNotFoundError(
                f"{best_dir} holds no checkpoint (steps in {latest_dir}: {_steps(latest_dir)}); "
                "use checkpoint='latest' or a step number"
            )
        tested = workdir_lib.tested_step(workdir)
        return best_dir, tested if tested in kept else kept[-1]
    if checkpoint == "latest":
        found = [(s, d) for d in (latest_dir, best_dir) for s in _steps(d)]
        if not found:
            raise FileNotFoundError(
                f"{workdir} has no checkpoint in {workdir_lib.LATEST_DIR}/ or "
                f"{workdir_lib.BEST_DIR}/"
            )
        step, directory = max(found)
        return directory, int(step)
    if isinstance(checkpoint, (int, np.integer)) and not isinstance(checkpoint, bool):
        for directory in (latest_dir, best_dir):
            if int(checkpoint) in _steps(directory):
                return directory, int(checkpoint)
        raise FileNotFoundError(
            f"{workdir} has no checkpoint of step {checkpoint}: {workdir_lib.LATEST_DIR}/ has "
            f"{_steps(latest_dir)}, {workdir_lib.BEST_DIR}/ has {_steps(best_dir)}"
        )
    raise ValueError(f"checkpoint={checkpoint!r}; expected 'best', 'latest' or a step number")


def _check_shapes(directory: str, step: int, target) -> None:
    """Compares the checkpoint's array shapes with `target`'s before anything is read (a
    failed Orbax restore leaves reads in flight that warn when garbage-collected).

    Raises:
      ValueError: naming the first differing or missing arrays.
    """
    path = os.path.join(directory, str(step), "default")
    if not os.path.isdir(path):
        return  # Another layout: let Orbax report it.
    pylogging.getLogger("absl").addFilter(_READ_ONLY_NOTICES)
    metadata = ocp.StandardCheckpointer().metadata(path)
    metadata = getattr(metadata, "item_metadata", metadata)
    metadata = getattr(metadata, "tree", metadata)
    saved = {
        jax.tree_util.keystr(k): tuple(v.shape)
        for k, v in jax.tree_util.tree_flatten_with_path(metadata)[0]
        if hasattr(v, "shape")
    }
    problems = []
    for key, leaf in jax.tree_util.tree_flatten_with_path(target)[0]:
        name = jax.tree_util.keystr(key)
        if name not in saved:
            problems.append(f"{name} missing")
        elif saved[name] != tuple(leaf.shape):
            problems.append(f"{name} has shape {saved[name]}, expected {tuple(leaf.shape)}")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ValueError(
            f"{directory}/{step}: the checkpoint does not match the network described by "
            f"{workdir_lib.RUN_FILE}: " + "; ".join(problems[:3]) + more
        )


def restore_variables(directory: str, step: int, variables_shape, sharding) -> dict:
    """The model variables ({'params': ..., **model_state}) of a train-state checkpoint.

    Only `params` and `model_state` are read (the optimiser state stays on disk).

    Args:
      variables_shape: the variables' shapes, e.g. `jax.eval_shape(model.init, ...)`, so a
        checkpoint of another network fails here naming the mismatch.
      sharding: where the restored arrays go (e.g. replicated over a mesh).

    Raises:
      ValueError: the checkpoint does not match `variables_shape`.
    """
    shapes = dict(flax.core.unfreeze(variables_shape))
    params = shapes.pop("params")
    target = {"params": params, "model_state": shapes}
    target = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), target
    )
    args = ocp.args.PyTreeRestore(
        item=target,
        restore_args=ocp.checkpoint_utils.construct_restore_args(target),
        partial_restore=True,
    )
    _check_shapes(directory, step, target)
    manager = read_only_manager(directory)
    try:
        restored = manager.restore(step, args=args)
    except ValueError as e:
        raise ValueError(
            f"{directory}/{step}: the checkpoint does not match the network described by "
            f"{workdir_lib.RUN_FILE}: {e}"
        ) from None
    finally:
        manager.close()
    return {"params": restored["params"], **restored["model_state"]}


# --- a finished (or running) work directory as a network ------------------------------------


@dataclasses.dataclass
class TrainedRun:
    """A network of a work directory, as its run.json describes it, with restored variables.

    Attributes:
      workdir: the absolute work directory.
      info: run.json (jaxreid.workdir.read_run_info; 'config' a ConfigDict), e.g. 'networks'
        of a distillation Step II.
      config: the config the run was trained with (info['config']).
      model: the Flax network (`models.model_from_config`), not initialised.
      num_classes: classifier size.
      class_person_ids: [C] int64 person id of each class.
      image_shape: (H, W, C) network input.
      normalization: {modality: Normalization} of the run's training images.
      variables: {'params', **model_state} of the checkpoint, on `sharding`.
      step: the checkpoint's step; checkpoint_dir: best/ or checkpoints/.
    """

    workdir: str
    info: dict
    config: ml_collections.ConfigDict
    model: flax.linen.Module
    num_classes: int
    class_person_ids: np.ndarray
    image_shape: tuple[int, int, int]
    normalization: dict
    variables: dict
    step: int
    checkpoint_dir: str


def load_trained_run(
    workdir, checkpoint: str | int = "best", sharding: jax.sharding.Sharding | None = None
) -> TrainedRun:
    """The one loader of trained runs (jaxreid.inference.load_run, jaxreid.evaluate, the
    distillation teacher): run.json, the network it describes, and a checkpoint's variables.

    Args:
      checkpoint: 'best' (the checkpoint the run tested), 'latest' or a step number
        (`find_checkpoint`).
      sharding: where the variables go; default replicated over every device
        (`jaxreid.training.state.Mesh().replicated`, as an Engine's state is).

    Raises:
      FileNotFoundError: no run.json, or no such checkpoint (naming what there is).
      ValueError: run.json lacks a key or a modality's normalisation, or the checkpoint does
        not match the network it describes.
    """
    workdir = os.path.abspath(os.fspath(workdir))
    info = workdir_lib.read_run_info(workdir)
    config = info["config"]
    num_classes = int(info["num_classes"])
    image_shape = tuple(int(v) for v in info["image_shape"])
    normalization = {
        m: preprocessing.Normalization.from_dict(n) for m, n in info["normalization"].items()
    }
    missing = [m for m in config.data.modalities if m not in normalization]
    if missing:
        raise ValueError(
            f"{os.path.join(workdir, workdir_lib.RUN_FILE)}: no normalization for {missing}"
        )
    directory, step = find_checkpoint(workdir, checkpoint)
    model = models.model_from_config(config, num_classes)

    def init(key):
        dummy = jnp.zeros((1, *image_shape), jnp.float32)
        return model.init({"params": key, "dropout": key}, dummy, train=False)

    # Shapes only (nothing is computed), so a run.json that does not describe the checkpoint
    # fails with the mismatch before anything is read.
    shapes = jax.eval_shape(init, jax.random.key(0))
    variables = restore_variables(
        directory, step, shapes, Mesh().replicated if sharding is None else sharding
    )
    return TrainedRun(
        workdir=workdir,
        info=info,
        config=config,
        model=model,
        num_classes=num_classes,
        class_person_ids=np.asarray(info.get("class_person_ids", []), np.int64),
        image_shape=image_shape,
        normalization=normalization,
        variables=variables,
        step=step,
        checkpoint_dir=directory,
    )
