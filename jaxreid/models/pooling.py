"""Global pooling of a backbone's last feature map: average, max, or generalised mean.

GeM (Radenović, Tolias & Chum 2019, "Fine-tuning CNN Image Retrieval with No Human
Annotation", TPAMI, Eq. 2): f_c = (1/P sum_p x_pc^p)^(1/p) over the P = H * W positions of
channel c. p = 1 is average pooling and p -> inf approaches max pooling. The AGW baseline
(Ye et al. 2021, TPAMI, §4.1) uses GeM with a fixed p = 3; Radenović et al. also learn p.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxreid.config import choices

Array = jax.Array

# config.model.pooling
POOLINGS = choices.POOLINGS  # config.model.pooling
# AGW (Ye et al. 2021, §4.1; `p = 3.0` in the AGW code's embed_net.forward).
DEFAULT_GEM_P = 3.0
# Inputs are clamped to at least this before x^p (Radenović et al.'s code uses 1e-6), so
# x^p and its derivative in p (x^p log x) stay finite at the zeros a ReLU leaves.
GEM_EPSILON = 1e-6


def gem(x: Array, p: float | Array, eps: float = GEM_EPSILON) -> Array:
    """Generalised-mean pooling over the spatial axes.

    Args:
      x: [N, H, W, C] non-negative features (after a ReLU); values below `eps` count as eps.
      p: exponent, a Python float or a float32 scalar (learnable). p = 1: average pooling.
      eps: the clamp.

    Returns:
      [N, C] float32.

    Computed as m * mean((x / m)^p)^(1/p) with m the channel's spatial maximum (a constant
    for the gradient): the same value and gradient (GeM is positively homogeneous of degree
    1), but x^p cannot overflow float32 (x = 1e13 and p = 3 would give inf).
    """
    x = jnp.maximum(x.astype(jnp.float32), eps)
    scale = jax.lax.stop_gradient(jnp.max(x, axis=(1, 2)))  # [N, C]
    # scale[:, None, None], a reshape: indexing [:, 0, 0] of a keepdims max exported as a
    # gather that TFLite's converter refused for a symbolic batch size.
    return scale * jnp.mean((x / scale[:, None, None]) ** p, axis=(1, 2)) ** (1.0 / p)


class GlobalPool(nn.Module):
    """[N, H, W, C] -> [N, C] float32 by `kind` ('avg' | 'gem' | 'max').

    Attributes:
      kind: one of POOLINGS.
      gem_p: GeM's exponent (initial value when learnable).
      gem_learnable: learn p (parameter 'p', a float32 scalar) instead of fixing it.
    """

    kind: str = "avg"
    gem_p: float = DEFAULT_GEM_P
    gem_learnable: bool = False

    @nn.compact
    def __call__(self, x: Array) -> Array:
        if self.kind == "avg":
            # Average in float32: a bfloat16 sum over H*W positions loses precision.
            return jnp.mean(x.astype(jnp.float32), axis=(1, 2))
        if self.kind == "max":
            return jnp.max(x.astype(jnp.float32), axis=(1, 2))
        if self.kind == "gem":
            if self.gem_p <= 0:
                raise ValueError(f"config.model.gem_p={self.gem_p}; expected a positive exponent.")
            p = (
                self.param("p", nn.initializers.constant(self.gem_p), (), jnp.float32)
                if self.gem_learnable
                else self.gem_p
            )
            return gem(x, p)
        raise ValueError(f"config.model.pooling={self.kind!r}; expected one of {POOLINGS}.")



def _windows(xpad: Array, window: int, stride: int, out_hw: tuple[int, int]) -> list[Array]:
    """The window * window strided views of a padded [N, Hp, Wp, C] map, each [N, Ho, Wo, C],
    in row-major window order (i, j): view (i, j)[n, p, q] = xpad[n, i + stride p, j + stride q]."""
    ho, wo = out_hw
    n, _, _, c = xpad.shape
    return [
        jax.lax.slice(
            xpad,
            (0, i, j, 0),
            (n, i + stride * (ho - 1) + 1, j + stride * (wo - 1) + 1, c),
            (1, stride, stride, 1),
        )
        for i in range(window)
        for j in range(window)
    ]


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def max_pool(x: Array, window: int, stride: int, padding: int) -> Array:
    """Max pooling of [N, H, W, C] with a square window, -inf padding on every side (torch's
    `MaxPool2d(window, stride, padding)`; the ResNet stem's 3 / 2 / 1), and a cheaper gradient.

    Values equal `nn.max_pool`'s. The gradient is the same as XLA's (and torch's): each output
    gradient goes to the *first* maximum of its window in row-major order. XLA differentiates
    `reduce_window` max by `select_and_scatter`, which the CPU backend lowers to a variadic
    reduce-window carrying four int32 index maps; here it is one comparison and one strided
    pad per window position, which XLA fuses into a few elementwise loops. In a profile of
    the main job's step the select_and_scatter was ~3% of the op time; the step went from
    79.0 to 75.0 ms (one thread, median of 9 interleaved rounds, 2026-12-07).

    Returns:
      [N, Ho, Wo, C], Ho = (H + 2 padding - window) // stride + 1 (Wo likewise), x's dtype.
    """
    return _max_pool_forward(x, window, stride, padding)


def _max_pool_forward(x, window, stride, padding):
    pads = ((0, 0), (padding, padding), (padding, padding), (0, 0))
    return jax.lax.reduce_window(
        x, -jnp.inf, jax.lax.max, (1, window, window, 1), (1, stride, stride, 1), pads
    )


def _max_pool_fwd(x, window, stride, padding):
    out = _max_pool_forward(x, window, stride, padding)
    return out, (x, out)


def _max_pool_bwd(window, stride, padding, residuals, g):
    x, out = residuals
    pads = ((0, 0), (padding, padding), (padding, padding), (0, 0))
    xpad = jnp.pad(x, pads, constant_values=-jnp.inf)
    ho, wo = out.shape[1:3]
    hp, wp = xpad.shape[1:3]
    zero = jnp.zeros((), g.dtype)
    taken = jnp.zeros(out.shape, bool)
    dxpad = jnp.zeros(xpad.shape, g.dtype)
    views = _windows(xpad, window, stride, (ho, wo))
    for k, view in enumerate(views):
        i, j = divmod(k, window)
        first = (view == out) & ~taken  # This position is its window's first maximum.
        taken = taken | first
        # The transpose of the strided slice: scatter back with interior padding.
        config = (
            (0, 0, 0),
            (i, hp - i - stride * (ho - 1) - 1, stride - 1),
            (j, wp - j - stride * (wo - 1) - 1, stride - 1),
            (0, 0, 0),
        )
        dxpad = dxpad + jax.lax.pad(jnp.where(first, g, zero), zero, config)
    h, w = x.shape[1:3]
    return (dxpad[:, padding : padding + h, padding : padding + w, :],)


max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)
