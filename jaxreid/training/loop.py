"""The one training loop: step, log, validate, checkpoint, stop on NaN or on a signal.

Every method (the supervised trainer, distillation Step II) configures this loop with its own
step function, batches and validation; nothing else in jaxreid loops over training steps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from jaxreid import workdir as workdir_lib
from jaxreid.data.device_prefetch import prefetch_to_device
from jaxreid.training import steps
from jaxreid.training.checkpoints import Checkpoints
from jaxreid.training.progress import Preempted, Progress, StopRequest
from jaxreid.training.state import Mesh, TrainState

# validate(state) -> (metrics offered to best/ e.g. {'val_mAP': 0.3}, scalars for TensorBoard)
Validate = Callable[[TrainState], tuple[dict[str, float], dict[str, float]]]


class NonFiniteError(RuntimeError):
    """Training produced a non-finite loss, gradient, parameter or model state.

    Attributes:
      step: the first step that did.
      what: which quantities ('loss, gradients').
    """

    def __init__(self, message: str, step: int, what: str):
        super().__init__(message)
        self.step, self.what = step, what


@dataclasses.dataclass(frozen=True)
class Phase:
    """The cadence of one training phase (config.*_every_steps).

    Attributes:
      name: shown in logs ('Training', 'Step II').
      num_steps: the last step.
      log_every, eval_every, checkpoint_every: cadences in steps; the last step does all.
      images_per_step: the global batch (for images/s).
      learning_rate_key: the config key a user lowers after a non-finite step.
    """

    name: str
    num_steps: int
    log_every: int
    eval_every: int
    checkpoint_every: int
    images_per_step: int
    learning_rate_key: str = "config.optim.learning_rate"


def run(
    phase: Phase,
    *,
    state: TrainState,
    step_fn: Callable,
    batches: Iterator[dict[str, np.ndarray]],
    mesh: Mesh,
    checkpoints: Checkpoints,
    writer: Any,
    validate: Validate,
    workdir: str,
) -> TrainState:
    """Runs steps state.step+1 .. phase.num_steps and returns the final state.

    Args:
      step_fn: compiled `(state, batch, health) -> (state, metrics, health)`.
      batches: this process's share of the batch of every remaining step (NumPy; put on
        the devices two steps ahead).
      writer: a `summaries.SummaryWriter` (write_scalars).
      validate: evaluated every `eval_every` steps; its first dict goes to best/.

    Raises:
      NonFiniteError: a step was not finite (nothing non-finite was saved; run.json in
        `workdir` records the step as 'diverged', `jaxreid.workdir.mark_diverged`).
      Preempted: SIGTERM/SIGINT; a checkpoint of the current step was saved and waited for
        first (so that `python -m jaxreid.main` may exit at once, skipping the interpreter's
        teardown).
    """
    start = int(state.step)
    progress = Progress(
        phase.name,
        start_step=start,
        num_steps=phase.num_steps,
        images_per_step=phase.images_per_step,
    )
    health = jax.device_put(steps.healthy(), mesh.replicated)
    # Two batches in flight on the devices: the copy of batch t+1 overlaps the step of t.
    batches = prefetch_to_device(batches, 2, mesh.data)
    history: list[dict] = []
    multi_process = jax.process_count() > 1

    def check_health():
        bad = steps.describe_health(jax.device_get(health))
        if bad is None:
            return
        progress.clear()
        last = checkpoints.latest_step()
        resume = (
            f"the latest checkpoint (step {last}) holds finite values and a re-run resumes from it"
            if last is not None
            else "no checkpoint was written, a re-run starts afresh"
        )
        if jax.process_index() == 0:
            # run.json says where the run stopped, so that a re-run may change the optimiser.
            workdir_lib.mark_diverged(workdir, bad[0], bad[1])
        raise NonFiniteError(
            f"{phase.name} step {bad[0]}: the {bad[1]} became non-finite (NaN or inf); the run "
            f"stopped and saved nothing after it. {resume.capitalize()}: lower "
            f"{phase.learning_rate_key} (or set config.optim.grad_clip_norm) and re-run.",
            step=bad[0],
            what=bad[1],
        )

    # The batches are closed however the loop ends: the tf.data iterator behind them and its
    # threads are released here, not whenever the exception's traceback is collected.
    with StopRequest() as stop, contextlib.closing(batches):
        for step in range(start + 1, phase.num_steps + 1):
            with jax.profiler.StepTraceAnnotation("train", step_num=step):
                state, metrics, health = step_fn(state, next(batches), health)
            history.append(metrics)
            progress.update(step, lambda: float(jax.device_get(metrics["loss"])))
            is_last = step == phase.num_steps
            if step % phase.log_every == 0 or is_last:
                check_health()
                summary = {
                    k: float(np.mean([jax.device_get(m[k]) for m in history])) for k in history[0]
                }
                rate = progress.rate(step)
                if rate:
                    summary["images_per_sec"] = rate[0]
                writer.write_scalars(step, {f"train/{k}": v for k, v in summary.items()})
                progress.log(step, summary)
                history = []
            tick = time.time()
            if step % phase.eval_every == 0 or is_last:
                check_health()
                best_metrics, scalars = validate(state)
                writer.write_scalars(step, scalars)
                progress.clear()
                logging.info(
                    "%s step %d: %s.",
                    phase.name,
                    step,
                    ", ".join(f"{k} {v:.4f}" for k, v in best_metrics.items()),
                )
                checkpoints.offer_best(step, state, best_metrics)
            if step % phase.checkpoint_every == 0 or is_last:
                check_health()
                checkpoints.save(step, state)
            progress.exclude(time.time() - tick)
            signal_name = stop.signal_name
            if multi_process and (step % phase.log_every == 0 or is_last):
                # Every process stops at the same step, or the others would wait forever.
                flags = multihost_utils.process_allgather(np.int32(signal_name is not None))
                signal_name = signal_name or ("SIGTERM" if np.any(flags) else None)
            elif multi_process:
                signal_name = None
            if signal_name and not is_last:
                check_health()
                if checkpoints.latest_step() != step:
                    checkpoints.save(step, state)
                checkpoints.wait()
                progress.clear()
                raise Preempted(step, signal_name, workdir)
    checkpoints.wait()
    progress.clear()
    return state
