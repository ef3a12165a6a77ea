"""Global pooling of a backbone's last feature map: average, max, or generalised mean.

GeM (Radenović, Tolias & Chum 2019, "Fine-tuning CNN Image Retrieval with No Human
Annotation", TPAMI, Eq. 2): f_c = (1/P sum_p x_pc^p)^(1/p) over the P = H * W positions of
channel c. p = 1 is average pooling and p -> inf approaches max pooling. The AGW baseline
(Ye et al. 2021, TPAMI, §4.1) uses GeM with a fixed p = 3; Radenović et al. also learn p.
"""

from __future__ import annotations

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
    scale = jax.lax.stop_gradient(jnp.max(x, axis=(1, 2), keepdims=True))
    return scale[:, 0, 0] * jnp.mean((x / scale) ** p, axis=(1, 2)) ** (1.0 / p)


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
