"""Optimisers and learning-rate schedules of config.optim (and config.distill.optim)."""

from __future__ import annotations

import jax
import ml_collections
import optax

from jaxreid import schedules
from jaxreid.config import choices

OPTIMIZERS = choices.OPTIMIZERS  # config.optim.name
SCHEDULES = schedules.SCHEDULES  # 'constant', 'cosine', 'step', 'agw'


def learning_rate_schedule(optim: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
    """Linear warm-up, then constant, cosine decay to 0, or steps at fractions of training;
    or 'agw': AGW's epoch-based warm-up and steps (Ye et al. 2021; jaxreid.schedules), which
    needs optim.steps_per_epoch > 0 (the trainer resolves 0 from the data)."""
    if optim.schedule == "agw":
        return schedules.agw_schedule(
            optim.learning_rate,
            optim.steps_per_epoch,
            optim.warmup_epochs,
            tuple(optim.milestone_epochs),
        )
    base, warmup = optim.learning_rate, min(optim.warmup_steps, max(num_steps - 1, 0))
    rest = max(num_steps - warmup, 1)
    if optim.schedule == "constant":
        main = optax.constant_schedule(base)
    elif optim.schedule == "cosine":
        main = optax.cosine_decay_schedule(base, rest)
    elif optim.schedule == "step":
        main = optax.piecewise_constant_schedule(
            base, {int(f * num_steps) - warmup: optim.step_factor for f in optim.step_boundaries}
        )
    else:
        raise ValueError(f"optim.schedule={optim.schedule!r}; expected one of {SCHEDULES}.")
    if not warmup:
        return main
    return optax.join_schedules([optax.linear_schedule(0.0, base, warmup), main], [warmup])


def create_optimizer(
    optim: ml_collections.ConfigDict, schedule: optax.Schedule
) -> optax.GradientTransformation:
    """SGD with Nesterov momentum or Adam (Hafner 2018, §4.3.2), with coupled weight decay.

    Weight decay is added to the gradient of every kernel (ndim > 1) before the optimiser, as
    torch.optim applies `weight_decay`; BatchNorm scales and biases are not decayed. With
    optim.backbone_lr_factor != 1 the backbone's parameters (models.param_group_labels) step
    at that fraction of the schedule (AGW: 0.1, Ye et al. 2021).
    """
    chain = []
    if optim.grad_clip_norm:
        chain.append(optax.clip_by_global_norm(optim.grad_clip_norm))
    factor = optim.get("backbone_lr_factor", 1.0)
    if factor == 1.0:  # The optimiser state as checkpoints before param groups existed.
        chain += _decayed_optimizer(optim, schedule)
    else:
        from jaxreid import models

        backbone = optax.chain(*_decayed_optimizer(optim, lambda step: factor * schedule(step)))
        head = optax.chain(*_decayed_optimizer(optim, schedule))
        chain.append(
            optax.multi_transform(
                {"backbone": backbone, "head": head}, models.param_group_labels
            )
        )
    return optax.chain(*chain)


def _decayed_optimizer(optim, schedule) -> list[optax.GradientTransformation]:
    """[weight decay (if any), the optimiser] of `optim` with `schedule`."""
    if optim.name == "sgd":
        opt = optax.sgd(schedule, momentum=optim.momentum, nesterov=True)
    elif optim.name == "momentum":
        opt = optax.sgd(schedule, momentum=optim.momentum)
    elif optim.name == "adam":
        opt = optax.adam(schedule)
    else:
        raise ValueError(f"optim.name={optim.name!r}; expected one of {OPTIMIZERS}.")
    if not optim.weight_decay:
        return [opt]
    kernels = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)
    return [optax.add_decayed_weights(optim.weight_decay, mask=kernels), opt]


def masked_optimizer(
    optim: ml_collections.ConfigDict, schedule: optax.Schedule, frozen
) -> optax.GradientTransformation:
    """`create_optimizer` on the trainable parameters, zero updates for the frozen ones.

    Args:
      frozen: a pytree like the parameters with Python bools, True = frozen. Frozen
        parameters get neither weight decay nor momentum, and no optimiser state.
    """
    labels = jax.tree.map(lambda f: "frozen" if f else "trainable", frozen)
    return optax.multi_transform(
        {"trainable": create_optimizer(optim, schedule), "frozen": optax.set_to_zero()}, labels
    )
