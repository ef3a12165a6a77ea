"""The loss composition and the compiled step functions: pure functions of (state, batch).

Imports JAX, Flax and optax only (never TensorFlow), so tests and benchmarks of the steps
start fast.

Non-finite values: every train step also carries `health`, [2] int32 = (first bad step, what
was not finite as a bit mask of `NON_FINITE`; (0, 0) while all is well). A step whose loss,
gradients, new parameters or new model state are not finite leaves the state unchanged and
records itself in `health`; once `health` is set, every later step leaves the state unchanged
too. The loop reads `health` before it logs, validates or saves, so no checkpoint ever holds a
non-finite value and the run stops naming the first bad step (`describe_health`).

float16 (config.model.dtype): the loss is scaled before differentiation by the scale kept in
the optimiser state (`mixed_precision.dynamic_loss_scaling`). An overflow (non-finite
gradients) is then expected now and then: the update is skipped, the scale halved and the
step counted, without touching `health`; only an overflow at the smallest scale (1) is
recorded as non-finite gradients and stops the run.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxreid import losses, mixed_precision, models
from jaxreid.models.flip import flip_embed
from jaxreid.training import freezing
from jaxreid.training.state import TrainState

# Bits of health[1]: what was not finite at the first bad step.
NON_FINITE = {1: "loss", 2: "gradients", 4: "parameters", 8: "model state (BatchNorm statistics)"}


def healthy() -> jax.Array:
    """The initial health, (0, 0): no non-finite value seen."""
    return jnp.zeros((2,), jnp.int32)


def describe_health(health) -> tuple[int, str] | None:
    """(first bad step, 'loss, gradients') from a health array, or None if all is well."""
    step, bits = (int(v) for v in np.asarray(health))
    if not step:
        return None
    return step, ", ".join(name for bit, name in NON_FINITE.items() if bits & bit)


def _all_finite(tree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _value_and_grad(loss_fn, params, loss_scale):
    """((loss, aux), gradients) of `loss_fn(params) -> (loss, aux)`; with a float16 loss scale
    the gradients are those of S * loss, divided by S again (float32)."""
    if loss_scale is None:
        return jax.value_and_grad(loss_fn, has_aux=True)(params)

    def scaled(p):
        loss, aux = loss_fn(p)
        return mixed_precision.scale_loss(loss, loss_scale), (loss, aux)

    (_, (loss, aux)), grads = jax.value_and_grad(scaled, has_aux=True)(params)
    return (loss, aux), mixed_precision.unscale(grads, loss_scale)


def _apply_update(state, grads, loss, new_model_state, tx, health, frozen=None):
    """The optimiser update of `state`, or `state` unchanged if anything is not finite (or,
    with float16 loss scaling, the step skipped on an overflow; see the module docstring)."""
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    if frozen is not None:
        # Frozen parameters pass through untouched (x + 0.0 would turn -0.0 into +0.0).
        params = jax.tree.map(lambda new, old, f: old if f else new, params, state.params, frozen)
    loss_scale = mixed_precision.find_loss_scale(state.opt_state)
    skipped = jnp.array(False)
    if loss_scale is not None:
        # tx (dynamic_loss_scaling) returned zero updates on the overflow; the forward pass's
        # BatchNorm statistics of that step are dropped too.
        skipped = ~_all_finite(grads) & (loss_scale.scale > 1.0)
        new_model_state = mixed_precision.select_tree(skipped, state.model_state, new_model_state)
    finite = jnp.stack(
        [
            jnp.isfinite(loss) | skipped,
            _all_finite(grads) | skipped,
            _all_finite(params),
            _all_finite(new_model_state),
        ]
    )
    bits = jnp.sum(jnp.where(finite, 0, jnp.array([1, 2, 4, 8], jnp.int32)))
    ok = (bits == 0) & (health[0] == 0)
    new_state = TrainState(
        step=state.step + 1, params=params, model_state=new_model_state, opt_state=opt_state
    )
    new_state = jax.tree.map(lambda new, old: jnp.where(ok, new, old), new_state, state)
    bad_now = (bits != 0) & (health[0] == 0)
    health = jnp.where(bad_now, jnp.stack([state.step + 1, bits]), health)
    return new_state, health


def _loss_scale_metrics(loss_scale) -> dict:
    """{'loss_scale': S} for a float16 run (logged beside the loss), {} otherwise."""
    return {} if loss_scale is None else {"loss_scale": loss_scale.scale}


def train_step(
    state: TrainState,
    batch: dict[str, jax.Array],
    health: jax.Array,
    *,
    model: nn.Module,
    tx: optax.GradientTransformation,
    schedule: optax.Schedule,
    loss_config: ml_collections.ConfigDict,
    dropout_key: jax.Array,
) -> tuple[TrainState, dict[str, jax.Array], jax.Array]:
    """One update on the global batch (image [B, H, W, C] float32, label [B] int32, and
    modality [B] int32: each image's slot in config.data.modalities, which a two-stream
    backbone and cross-modal mining need). The loss is `losses.compose(config.loss, ...)`.

    Returns:
      (new state, metrics, health); see the module docstring for `health`.
    """
    key = jax.random.fold_in(dropout_key, state.step)

    def loss_fn(params):
        (embedding, intermediates), new_model_state = model.apply(
            {"params": params, **state.model_state},
            batch["image"],
            train=True,
            labels=batch["label"],
            modality=batch.get("modality"),
            mutable=list(state.model_state.keys()),
            rngs={"dropout": key},
        )
        loss, metrics = losses.compose(
            loss_config, embedding, intermediates, batch["label"], batch.get("modality")
        )
        return loss, (new_model_state, metrics)

    loss_scale = mixed_precision.find_loss_scale(state.opt_state)
    (_, (new_model_state, metrics)), grads = _value_and_grad(loss_fn, state.params, loss_scale)
    new_state, health = _apply_update(state, grads, metrics["loss"], new_model_state, tx, health)
    metrics["learning_rate"] = schedule(state.step)
    metrics["grad_norm"] = optax.tree.norm(grads)
    metrics.update(_loss_scale_metrics(loss_scale))
    return new_state, metrics, health


def distill_step(
    state: TrainState,
    batch: dict[str, jax.Array],
    health: jax.Array,
    *,
    model: nn.Module,
    tx: optax.GradientTransformation,
    schedule: optax.Schedule,
    frozen,
    frozen_from: int | None,
    frozen_bn: str,
    reduction: str,
    dropout_key: jax.Array,
) -> tuple[TrainState, dict[str, jax.Array], jax.Array]:
    """One Step II update of G on the global batch (Hafner 2018 §3.3, Eq. 6).

    Args:
      state: G's state (params, model_state with 'batch_stats', masked optimiser state).
      batch: image [B, H, W, C] float32 target-modality images; teacher [B, D] float32, F's
        embedding of each image's paired source frame (or its identity's mean).
      frozen: `freezing.frozen_mask(...)` of the parameters (static Python bools).
      frozen_from: index of the first frozen layer in the model's `layer_order()`, or None.
      frozen_bn: 'fixed' (frozen BatchNorm layers in inference mode) or 'update'.
      reduction: of `losses.mse_distillation`.

    Returns:
      (new state, metrics 'loss' (with `reduction`), 'per_sample_loss' (Eq. 6),
      'learning_rate', 'grad_norm' (of the trainable parameters), health).
    """
    key = jax.random.fold_in(dropout_key, state.step)
    fixed = frozen_from if frozen_bn == "fixed" else None

    def loss_fn(params):
        # No gradient for frozen parameters: XLA then skips their weight gradients.
        params = jax.tree.map(lambda p, f: jax.lax.stop_gradient(p) if f else p, params, frozen)
        with freezing.frozen_layers_in_inference_mode(model, fixed):
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

    loss_scale = mixed_precision.find_loss_scale(state.opt_state)
    (loss, (new_model_state, per_sample)), grads = _value_and_grad(
        loss_fn, state.params, loss_scale
    )
    new_state, health = _apply_update(state, grads, loss, new_model_state, tx, health, frozen)
    metrics = {
        "loss": loss,
        "per_sample_loss": per_sample,
        "learning_rate": schedule(state.step),
        "grad_norm": optax.tree.norm(grads),
        **_loss_scale_metrics(loss_scale),
    }
    return new_state, metrics, health


def embed_step(
    variables: dict,
    images: jax.Array,
    modality: jax.Array,
    *,
    model: nn.Module,
    feature: str = "",
    flip: bool = False,
) -> jax.Array:
    """[B, H, W, C] -> [B, D] float32 features in inference mode.

    Args:
      variables: {'params': ..., **model_state}.
      modality: [B] int32, each image's slot in config.data.modalities (two-stream models).
      feature: '' for the model's embedding, or the name of an intermediate output.
      flip: the mean of the features of the images and of their mirror images (flip test).
    """

    def embed(x):
        embedding, intermediates = model.apply(variables, x, train=False, modality=modality)
        return models.select_feature(embedding, intermediates, feature).astype(jnp.float32)

    return flip_embed(embed, images) if flip else embed(images)
