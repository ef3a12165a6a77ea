"""BatchNorm with torch's semantics, the normalisation of every jaxreid network.

In training the batch is normalised with the biased batch variance, and the running
statistics are updated as `running = 0.9 * running + 0.1 * batch` where the variance
entering `running_var` is the *unbiased* one (n / (n - 1) correction, n = number of reduced
elements), exactly as `torch.nn.BatchNorm2d`. flax's `nn.BatchNorm` would store the biased
variance; we keep torch's so that fine-tuning from torchvision weights matches the thesis
author's PyTorch code. `unbiased_running_var=False` gives flax's behaviour.

As torch, a training batch with a single value per channel is refused (the batch variance
would be 0, every output 0): here at trace time, from the static shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array
Dtype = Any

# torch.nn.BatchNorm2d defaults: momentum 0.1 on the new value (= 0.9 on the old), eps 1e-5.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


class BatchNorm(nn.Module):
    """Batch normalisation over all axes but the last, with torch's running-stat semantics.

    Attributes:
      momentum: weight of the old running value (torch momentum 0.1 -> 0.9 here).
      epsilon: added to the variance.
      dtype: output dtype; statistics are always computed in float32.
      unbiased_running_var: store the unbiased batch variance in 'var' (torch) instead of
        the biased one (flax).
      scale_init: initialiser of 'scale' (ones; zeros for zero-init residual branches).
      use_bias: learn a shift 'bias'; False = no shift at all (the BNNeck of Luo et al. 2019,
        whose PyTorch code freezes the bias at 0).
    """

    momentum: float = BN_MOMENTUM
    epsilon: float = BN_EPSILON
    dtype: Dtype = jnp.float32
    unbiased_running_var: bool = True
    scale_init: Callable[..., Array] = nn.initializers.ones
    use_bias: bool = True

    @nn.compact
    def __call__(self, x: Array, train: bool, mask: Array | None = None) -> Array:
        """x: [N, ..., C] -> [N, ..., C] in `self.dtype`.

        mask: optional [N] bool; in training the batch statistics (and the running-statistics
        update) use only the rows where it is True, so the other rows influence neither the
        statistics nor, through them, the gradients (a modality-specific layer run on a mixed
        batch). Rows where it is False are normalised with those statistics too; callers
        discard them. A batch without any True row leaves the running statistics unchanged.
        """
        features = x.shape[-1]
        scale = self.param("scale", self.scale_init, (features,), jnp.float32)
        bias = (
            self.param("bias", nn.initializers.zeros, (features,), jnp.float32)
            if self.use_bias
            else jnp.zeros((features,), jnp.float32)
        )
        running_mean = self.variable(
            "batch_stats", "mean", lambda: jnp.zeros((features,), jnp.float32)
        )
        running_var = self.variable(
            "batch_stats", "var", lambda: jnp.ones((features,), jnp.float32)
        )

        x32 = x.astype(jnp.float32)
        if train and not self.is_initializing():
            self._check_values_per_channel(x)
        if train and mask is None:
            axes = tuple(range(x.ndim - 1))
            mean = jnp.mean(x32, axis=axes)
            # Two-pass variance: E[(x - mean)^2] is more accurate than E[x^2] - mean^2.
            var = jnp.mean(jnp.square(x32 - mean), axis=axes)
            if not self.is_initializing():
                n = 1
                for axis in axes:
                    n *= x.shape[axis]
                stored_var = var * (n / max(n - 1, 1)) if self.unbiased_running_var else var
                running_mean.value = (
                    self.momentum * running_mean.value + (1.0 - self.momentum) * mean
                )
                running_var.value = (
                    self.momentum * running_var.value + (1.0 - self.momentum) * stored_var
                )
        elif train:
            axes = tuple(range(x.ndim - 1))
            per_row = 1
            for axis in axes[1:]:
                per_row *= x.shape[axis]
            weight = mask.astype(jnp.float32).reshape((-1,) + (1,) * (x.ndim - 1))
            n = jnp.sum(mask.astype(jnp.float32)) * per_row
            mean = jnp.sum(x32 * weight, axis=axes) / jnp.maximum(n, 1.0)
            var = jnp.sum(jnp.square(x32 - mean) * weight, axis=axes) / jnp.maximum(n, 1.0)
            if not self.is_initializing():
                stored_var = var * (n / jnp.maximum(n - 1, 1)) if self.unbiased_running_var else var
                seen = n > 0
                running_mean.value = jnp.where(
                    seen,
                    self.momentum * running_mean.value + (1.0 - self.momentum) * mean,
                    running_mean.value,
                )
                running_var.value = jnp.where(
                    seen,
                    self.momentum * running_var.value + (1.0 - self.momentum) * stored_var,
                    running_var.value,
                )
        else:
            mean, var = running_mean.value, running_var.value

        multiplier = scale * jax.lax.rsqrt(var + self.epsilon)
        y = (x32 - mean) * multiplier + bias
        return y.astype(self.dtype)

    def _check_values_per_channel(self, x: Array) -> None:
        """Raises ValueError, at trace time (shapes are static), when a training batch gives
        fewer than 2 values per channel: the batch variance would be 0, every output 0 and the
        running variance pulled toward 0. torch.nn.BatchNorm refuses the same ("Expected more
        than 1 value per channel when training"). With a mask only the upper bound (every row
        selected) is static; `jaxreid.config.validate` checks the rows of each stream."""
        values = 1
        for size in x.shape[:-1]:
            values *= size
        if values < 2:
            layer = "/".join(str(p) for p in self.scope.path) or self.name or "(top level)"
            raise ValueError(
                f"BatchNorm {layer} in training mode got input of shape {tuple(x.shape)}: "
                f"{values} value per channel, expected at least 2 (the batch variance of one "
                "value is 0). Train with more images per step (config.batch.num_identities x "
                "config.batch.images_per_identity) or larger images (config.data.image_size)."
            )
