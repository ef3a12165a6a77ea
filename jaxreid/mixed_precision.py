"""Mixed precision: the compute dtype of a run and dynamic loss scaling for float16.

Policy (config.model.dtype; Micikevicius et al. 2018, "Mixed Precision Training", §3):
parameters, optimiser state, BatchNorm statistics, losses and evaluation features stay
float32; activations and convolutions / matmuls run in the compute dtype. `jaxreid.models`
implements the model side (param_dtype=float32, BatchNorm statistics and normalisation in
float32, embedding / logits / pooled features cast back to float32).

bfloat16 has float32's exponent range, so gradients do not underflow and it needs no loss
scaling. float16 (5 exponent bits, smallest normal 2^-14) does: small gradients flush to zero
unless the loss is multiplied by a large factor S before differentiation and the gradients
divided by S afterwards (Micikevicius 2018, §3.2). Dynamic loss scaling picks S: halve it and
skip the update when the gradients overflow (inf / nan), double it after `period` finite
steps in a row (the defaults of torch.cuda.amp.GradScaler: initial 2^16, growth 2,
backoff 0.5, period 2000).

The functions below are pure and jit-friendly; the train step uses them as

    def loss_fn(params):
        loss, aux = ...                                   # float32 scalar
        return mixed_precision.scale_loss(loss, state.loss_scale), aux
    scaled_grads, aux = jax.grad(loss_fn, has_aux=True)(state.params)
    grads = mixed_precision.unscale(scaled_grads, state.loss_scale)
    # (cross-device gradient averaging, if any, before the finite check, so every device
    #  takes the same decision)
    finite = mixed_precision.all_finite(grads)
    new_state = <the usual optimiser update with grads>
    new_state = mixed_precision.select_tree(finite, new_state, state)   # skip on overflow
    new_state = new_state.replace(loss_scale=mixed_precision.adjust(state.loss_scale, finite))

For float32 / bfloat16 runs `LossScale` can be left out (or kept at scale 1, where these
functions are exact no-ops up to the finite check).

We do not use `jmp` (google-deepmind/jmp): its last release is from 2023 and its
DynamicLossScale has an open dtype-promotion bug with float16 scales (jmp issue #47).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

# Allowed values of config.model.dtype.
DTYPES = ("float32", "bfloat16", "float16")
_JNP_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}

# torch.cuda.amp.GradScaler defaults (init_scale, growth_factor, backoff_factor, growth_interval).
DEFAULT_INITIAL_SCALE = 2.0**16
DEFAULT_GROWTH_FACTOR = 2.0
DEFAULT_BACKOFF_FACTOR = 0.5
DEFAULT_GROWTH_PERIOD = 2000


def compute_dtype(name: str) -> Any:
    """'float32' | 'bfloat16' | 'float16' -> the jnp dtype.

    Raises:
      ValueError: `name` is not in DTYPES (config.model.dtype).
    """
    if name not in _JNP_DTYPES:
        raise ValueError(f"config.model.dtype={name!r}; expected one of {DTYPES}.")
    return _JNP_DTYPES[name]


def needs_loss_scaling(name: str) -> bool:
    """True for float16, whose narrow exponent range makes small gradients underflow."""
    return compute_dtype(name) == jnp.float16


class LossScale(NamedTuple):
    """State of dynamic loss scaling (a pytree: keep it in the train state).

    Attributes:
      scale: float32 scalar S (a power of two, so scaling and unscaling are exact).
      good_steps: int32 scalar, finite steps since the last change of S.
    """

    scale: jax.Array
    good_steps: jax.Array


def init_loss_scale(initial_scale: float = DEFAULT_INITIAL_SCALE) -> LossScale:
    """A LossScale at `initial_scale` (float32) with no finite steps counted yet."""
    return LossScale(jnp.asarray(initial_scale, jnp.float32), jnp.zeros((), jnp.int32))


def scale_loss(loss: jax.Array, loss_scale: LossScale) -> jax.Array:
    """loss * S, computed in float32 (loss: float scalar)."""
    return loss.astype(jnp.float32) * loss_scale.scale


def unscale(grads: Any, loss_scale: LossScale) -> Any:
    """Every leaf of `grads` divided by S, in float32 (parameters are float32).

    Returns a pytree of float32 arrays with the structure of `grads`.
    """
    inverse = 1.0 / loss_scale.scale
    return jax.tree_util.tree_map(lambda g: g.astype(jnp.float32) * inverse, grads)


def all_finite(tree: Any) -> jax.Array:
    """bool scalar: no leaf of `tree` holds an inf or nan (True for an empty tree)."""
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        return jnp.asarray(True)
    return jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]).all()


def adjust(
    loss_scale: LossScale,
    finite: jax.Array,
    *,
    growth_factor: float = DEFAULT_GROWTH_FACTOR,
    backoff_factor: float = DEFAULT_BACKOFF_FACTOR,
    growth_period: int = DEFAULT_GROWTH_PERIOD,
    min_scale: float = 1.0,
) -> LossScale:
    """The LossScale after a step whose unscaled gradients were `finite` (bool scalar).

    Overflow: S <- max(S * backoff_factor, min_scale), counter reset. Finite: the counter
    grows; when it reaches `growth_period`, S <- S * growth_factor and the counter resets.
    The scale stays float32 (in float16 the doubled scale would itself overflow at 2^16).
    """
    good = jnp.where(finite, loss_scale.good_steps + 1, 0).astype(jnp.int32)
    grow = good >= growth_period
    scale = jnp.where(
        finite,
        jnp.where(grow, loss_scale.scale * growth_factor, loss_scale.scale),
        jnp.maximum(loss_scale.scale * backoff_factor, min_scale),
    ).astype(jnp.float32)
    return LossScale(scale, jnp.where(grow, 0, good).astype(jnp.int32))


def select_tree(pred: jax.Array, on_true: Any, on_false: Any) -> Any:
    """Leafwise `on_true if pred else on_false` for two pytrees of one structure (pred: bool
    scalar); used to keep the old parameters and optimiser state on an overflowing step."""
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


__all__ = [
    "DTYPES",
    "LossScale",
    "adjust",
    "all_finite",
    "compute_dtype",
    "init_loss_scale",
    "needs_loss_scaling",
    "scale_loss",
    "select_tree",
    "unscale",
]
