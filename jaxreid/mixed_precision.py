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

In jaxreid the loss scale lives in the optimiser state: `with_loss_scaling(tx, dtype)` wraps
the run's optax transformation for float16 (`dynamic_loss_scaling`), so the scale is
checkpointed and restored with the rest of the state, and float32 / bfloat16 runs keep their
optimiser state (and checkpoints) unchanged. The train step (jaxreid.training.steps) reads it
before differentiating:

    loss_scale = mixed_precision.find_loss_scale(state.opt_state)      # None unless float16
    scaled_grads = jax.grad(lambda p: scale_loss(loss_fn(p), loss_scale))(state.params)
    grads = unscale(scaled_grads, loss_scale)
    updates, opt_state = tx.update(grads, ...)   # zero updates on overflow, S adjusted

and does not count an overflow as a divergence while S can still be halved.

We do not use `jmp` (google-deepmind/jmp): its last release is from 2023 and its
DynamicLossScale has an open dtype-promotion bug with float16 scales (jmp issue #47).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxreid.config import choices

# Allowed values of config.model.dtype.
DTYPES = choices.DTYPES
_JNP_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}
choices.check_registry(_JNP_DTYPES, DTYPES, "jaxreid.mixed_precision._JNP_DTYPES")

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


class DynamicLossScaleState(NamedTuple):
    """Optimiser state of `dynamic_loss_scaling`: the loss scale and the wrapped state."""

    loss_scale: LossScale
    inner_state: Any


def dynamic_loss_scaling(
    inner: optax.GradientTransformation,
    *,
    initial_scale: float = DEFAULT_INITIAL_SCALE,
    growth_factor: float = DEFAULT_GROWTH_FACTOR,
    backoff_factor: float = DEFAULT_BACKOFF_FACTOR,
    growth_period: int = DEFAULT_GROWTH_PERIOD,
    min_scale: float = 1.0,
) -> optax.GradientTransformation:
    """`inner` with dynamic loss scaling (Micikevicius et al. 2018, §3.2).

    `update` takes the *unscaled* float32 gradients. If any is inf / nan (an overflow of the
    scaled float16 backward pass) it returns zero updates and leaves `inner`'s state as it
    was (the step is skipped, as torch.cuda.amp.GradScaler.step skips it); either way the
    scale is adjusted (`adjust`). The state is a `DynamicLossScaleState`.
    """

    def init(params):
        return DynamicLossScaleState(init_loss_scale(initial_scale), inner.init(params))

    def update(grads, state, params=None):
        finite = all_finite(grads)
        updates, inner_state = inner.update(grads, state.inner_state, params)
        updates = select_tree(finite, updates, jax.tree_util.tree_map(jnp.zeros_like, updates))
        inner_state = select_tree(finite, inner_state, state.inner_state)
        loss_scale = adjust(
            state.loss_scale,
            finite,
            growth_factor=growth_factor,
            backoff_factor=backoff_factor,
            growth_period=growth_period,
            min_scale=min_scale,
        )
        return updates, DynamicLossScaleState(loss_scale, inner_state)

    return optax.GradientTransformation(init, update)


def with_loss_scaling(tx: optax.GradientTransformation, dtype: str) -> optax.GradientTransformation:
    """`dynamic_loss_scaling(tx)` for dtype 'float16', `tx` itself otherwise (config.model.dtype)."""
    return dynamic_loss_scaling(tx) if needs_loss_scaling(dtype) else tx


def find_loss_scale(opt_state: Any) -> LossScale | None:
    """The LossScale inside an optimiser state made by `dynamic_loss_scaling` (at any depth of
    optax's containers), or None if the state has none. Decided from the state's structure,
    so it is a Python-level (trace-time) choice under jit."""
    found = [
        node.loss_scale
        for node in jax.tree_util.tree_leaves(
            opt_state, is_leaf=lambda x: isinstance(x, DynamicLossScaleState)
        )
        if isinstance(node, DynamicLossScaleState)
    ]
    if len(found) > 1:
        raise ValueError(f"{len(found)} loss scales in one optimiser state; expected at most one.")
    return found[0] if found else None


__all__ = [
    "DTYPES",
    "DynamicLossScaleState",
    "LossScale",
    "adjust",
    "all_finite",
    "compute_dtype",
    "dynamic_loss_scaling",
    "find_loss_scale",
    "init_loss_scale",
    "needs_loss_scaling",
    "scale_loss",
    "select_tree",
    "unscale",
    "with_loss_scaling",
]
