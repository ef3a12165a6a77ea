"""Learning-rate schedules by epoch, as re-id code writes them (pure functions of the step).

`agw_schedule` is the schedule of the AGW baseline's code (Ye et al. 2021, TPAMI;
`adjust_learning_rate` in github.com/mangye16/Cross-Modal-Re-ID-baseline train.py, read,
not copied), also used by CAJ (Ye et al. 2021, ICCV): in epoch e (0-based)

    lr(e) = base * (e + 1) / warmup_epochs          e < warmup_epochs  (linear warm-up,
                                                                         constant within an epoch)
    lr(e) = base * factor ** #{m in milestones: m <= e}   otherwise

i.e. with the published 10 / (20, 50): 0.01, 0.02, ..., 0.1 over epochs 0-9 (base 0.1),
0.1 for epochs 10-19, 0.01 for 20-49 and 0.001 from 50 on. The backbone trains at a tenth of
this (`jaxreid.models.param_group_labels`; config.optim.backbone_lr_factor).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp

from jaxreid.config import choices

# config.optim.schedule values: 'constant' | 'cosine' | 'step' (jaxreid.train) and 'agw'.
SCHEDULES = choices.SCHEDULES
# AGW code: warm-up over epochs 0-9, x0.1 at epochs 20 and 50 (81 epochs in all).
AGW_WARMUP_EPOCHS = 10
AGW_MILESTONES = (20, 50)
AGW_FACTOR = 0.1


def agw_schedule(
    base_lr: float,
    steps_per_epoch: int,
    warmup_epochs: int = AGW_WARMUP_EPOCHS,
    milestones: Sequence[int] = AGW_MILESTONES,
    factor: float = AGW_FACTOR,
):
    """The AGW warm-up + step schedule as an optax schedule (step -> float32 learning rate).

    Args:
      base_lr: the peak learning rate (AGW: 0.1 for the head, SGD with Nesterov momentum).
      steps_per_epoch: optimiser steps per epoch (> 0); step s is in epoch s // steps_per_epoch.
      warmup_epochs: epochs of linear warm-up (0 = none).
      milestones: epochs (increasing) at whose start the rate is multiplied by `factor`.
      factor: the multiplier per milestone.

    Returns:
      A function of an int step (Python or traced [] int32) returning [] float32.

    Raises:
      ValueError: steps_per_epoch < 1, warmup_epochs < 0 or milestones not increasing.
    """
    if steps_per_epoch < 1:
        raise ValueError(f"config.optim.steps_per_epoch={steps_per_epoch}; expected >= 1 here.")
    if warmup_epochs < 0:
        raise ValueError(f"config.optim.warmup_epochs={warmup_epochs}; expected >= 0.")
    milestones = tuple(int(m) for m in milestones)
    if list(milestones) != sorted(set(milestones)):
        raise ValueError(f"config.optim.milestone_epochs={milestones}; expected increasing epochs.")

    def schedule(step):
        epoch = jnp.asarray(step, jnp.int32) // steps_per_epoch
        decays = sum((epoch >= m).astype(jnp.float32) for m in milestones) if milestones else 0.0
        rate = base_lr * jnp.power(jnp.float32(factor), decays)
        if warmup_epochs:
            warm = base_lr * (epoch + 1).astype(jnp.float32) / warmup_epochs
            rate = jnp.where(epoch < warmup_epochs, warm, rate)
        return jnp.asarray(rate, jnp.float32)

    return schedule


__all__ = ["AGW_FACTOR", "AGW_MILESTONES", "AGW_WARMUP_EPOCHS", "SCHEDULES", "agw_schedule"]
