"""ResNet backbones with torchvision's exact topology, in flax.linen.

The layer layout, strides and paddings match `torchvision.models.resnet` (He et al. 2016,
"v1.5": in the Bottleneck the stride sits on the 3x3 conv) so that torchvision ImageNet
weights converted by `jaxreid.models.pretrained` reproduce torchvision's outputs.

Parameter tree (names mirror torchvision's state-dict keys, '.' -> '_' for blocks):

    conv1/kernel [7,7,C_in,w]           bn1/{scale,bias}       (batch_stats: bn1/{mean,var})
    layer{i}_{j}/conv1/kernel, bn1, conv2/kernel, bn2, [conv3/kernel, bn3]   (Bottleneck only)
    layer{i}_{j}/downsample_conv/kernel, downsample_bn    (first block of a stage, if needed)

Kernels are HWIO; BatchNorm parameters are 'scale'/'bias' in 'params' and 'mean'/'var' in
'batch_stats'.

BatchNorm follows torch semantics, not flax's: in training the batch is normalised with the
biased batch variance, and the running statistics are updated as
`running = 0.9 * running + 0.1 * batch` where the variance entering `running_var` is the
*unbiased* one (n / (n - 1) correction, n = number of reduced elements), exactly as
`torch.nn.BatchNorm2d`. flax's `nn.BatchNorm` would store the biased variance; we keep
torch's so that fine-tuning from torchvision weights matches the thesis author's PyTorch
code. `unbiased_running_var=False` gives flax's behaviour.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxreid.models.convolution import conv_function

Array = jax.Array
Dtype = Any

# torchvision: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"),
# i.e. N(0, 2 / (out_channels * kh * kw)). jax computes fan_out of an HWIO kernel the same way.
conv_kernel_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")

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
    """

    momentum: float = BN_MOMENTUM
    epsilon: float = BN_EPSILON
    dtype: Dtype = jnp.float32
    unbiased_running_var: bool = True
    scale_init: Callable[..., Array] = nn.initializers.ones

    @nn.compact
    def __call__(self, x: Array, train: bool) -> Array:
        """x: [..., C] -> [..., C] in `self.dtype`."""
        features = x.shape[-1]
        scale = self.param("scale", self.scale_init, (features,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (features,), jnp.float32)
        running_mean = self.variable(
            "batch_stats", "mean", lambda: jnp.zeros((features,), jnp.float32)
        )
        running_var = self.variable(
            "batch_stats", "var", lambda: jnp.ones((features,), jnp.float32)
        )

        x32 = x.astype(jnp.float32)
        if train:
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
        else:
            mean, var = running_mean.value, running_var.value

        multiplier = scale * jax.lax.rsqrt(var + self.epsilon)
        y = (x32 - mean) * multiplier + bias
        return y.astype(self.dtype)


def _conv(
    features: int,
    kernel: int,
    stride: int,
    padding: int,
    dtype: Dtype,
    name: str,
    conv_impl: str = "xla",
) -> nn.Conv:
    """Bias-free conv with torch's symmetric explicit padding (never 'SAME').

    Computes in `dtype` with a float32 kernel parameter; `conv_impl` is one of
    `jaxreid.models.convolution.CONV_IMPLS` (how the weight gradient is computed).
    """
    return nn.Conv(
        features,
        (kernel, kernel),
        strides=(stride, stride),
        padding=((padding, padding), (padding, padding)),
        use_bias=False,
        dtype=dtype,
        param_dtype=jnp.float32,
        kernel_init=conv_kernel_init,
        conv_general_dilated=conv_function(conv_impl),
        name=name,
    )


class BasicBlock(nn.Module):
    """torchvision BasicBlock: 3x3 conv (stride) -> BN -> ReLU -> 3x3 conv -> BN, + shortcut.

    `filters` is the block's width; its output has `filters * expansion` channels.
    `activation` is applied at each ReLU position (default `nn.relu`).
    """

    filters: int
    stride: int = 1
    dtype: Dtype = jnp.float32
    zero_init_residual: bool = False
    activation: Callable[[Array], Array] = nn.relu
    conv_impl: str = "xla"
    expansion = 1

    @nn.compact
    def __call__(self, x: Array, train: bool) -> Array:
        bn = functools.partial(BatchNorm, dtype=self.dtype)
        last_scale_init = nn.initializers.zeros if self.zero_init_residual else nn.initializers.ones
        out = _conv(self.filters, 3, self.stride, 1, self.dtype, "conv1", self.conv_impl)(x)
        out = self.activation(bn(name="bn1")(out, train))
        out = _conv(self.filters, 3, 1, 1, self.dtype, "conv2", self.conv_impl)(out)
        out = bn(name="bn2", scale_init=last_scale_init)(out, train)
        shortcut = _shortcut(
            x, self.filters * self.expansion, self.stride, self.dtype, train, self.conv_impl
        )
        return self.activation(out + shortcut)


class Bottleneck(nn.Module):
    """torchvision Bottleneck (v1.5): 1x1 -> 3x3 (stride) -> 1x1 (x4 channels), + shortcut.

    `activation` is applied at each ReLU position (default `nn.relu`).
    """

    filters: int
    stride: int = 1
    dtype: Dtype = jnp.float32
    zero_init_residual: bool = False
    activation: Callable[[Array], Array] = nn.relu
    conv_impl: str = "xla"
    expansion = 4

    @nn.compact
    def __call__(self, x: Array, train: bool) -> Array:
        bn = functools.partial(BatchNorm, dtype=self.dtype)
        last_scale_init = nn.initializers.zeros if self.zero_init_residual else nn.initializers.ones
        out = _conv(self.filters, 1, 1, 0, self.dtype, "conv1", self.conv_impl)(x)
        out = self.activation(bn(name="bn1")(out, train))
        out = _conv(self.filters, 3, self.stride, 1, self.dtype, "conv2", self.conv_impl)(out)
        out = self.activation(bn(name="bn2")(out, train))
        out = _conv(self.filters * self.expansion, 1, 1, 0, self.dtype, "conv3", self.conv_impl)(
            out
        )
        out = bn(name="bn3", scale_init=last_scale_init)(out, train)
        shortcut = _shortcut(
            x, self.filters * self.expansion, self.stride, self.dtype, train, self.conv_impl
        )
        return self.activation(out + shortcut)


def _shortcut(
    x: Array, out_channels: int, stride: int, dtype: Dtype, train: bool, conv_impl: str = "xla"
) -> Array:
    """Identity, or torchvision's `downsample` (1x1 conv stride s + BN) when the shape changes.

    Called inside a block's compact __call__, so the submodules are named in that block.
    """
    if stride == 1 and x.shape[-1] == out_channels:
        return x
    x = _conv(out_channels, 1, stride, 0, dtype, "downsample_conv", conv_impl)(x)
    return BatchNorm(dtype=dtype, name="downsample_bn")(x, train)


class ResNet(nn.Module):
    """ResNet backbone without the fc layer.

    Attributes:
      stage_sizes: blocks per stage, e.g. (2, 2, 2, 2) for ResNet18.
      block_cls: BasicBlock or Bottleneck.
      num_filters: width of the stem and of stage 1 (64 = torchvision; e.g. 8 for tests).
      dtype: compute dtype of activations, convolutions and BatchNorm outputs (bfloat16 or
        float16 for mixed precision, `jaxreid.mixed_precision`); parameters and BatchNorm
        statistics are always float32 and the pooled output is float32.
      zero_init_residual: initialise the last BN scale of each block to zero (torchvision's
        `zero_init_residual`); off by default like torchvision.
      activation: the non-linearity at every ReLU position (stem and blocks); `nn.relu`.
        Swapped only for analysis, e.g. `jaxreid.visualization.guided_relu`, which has the
        same forward pass and the parameters stay valid.
      conv_impl: how convolution weight gradients are computed, one of
        `jaxreid.models.convolution.CONV_IMPLS` ('xla' | 'gemm_wgrad'); same values.
    """

    stage_sizes: Sequence[int]
    block_cls: type[nn.Module]
    num_filters: int = 64
    dtype: Dtype = jnp.float32
    zero_init_residual: bool = False
    activation: Callable[[Array], Array] = nn.relu
    conv_impl: str = "xla"

    @nn.compact
    def __call__(self, x: Array, train: bool) -> tuple[Array, dict[str, Array]]:
        """Embeds images.

        Args:
          x: [N, H, W, C] float images, any number of channels C.
          train: use batch statistics and update 'batch_stats' (pass mutable=['batch_stats']).

        Returns:
          pooled: [N, F] global-average-pooled features, F = 8 * num_filters * expansion
            (512 for ResNet18/34, 2048 for ResNet50 at full width), float32 whatever `dtype`
            (features for losses and evaluation stay float32).
          intermediates: 'stem' [N, H/4, W/4, num_filters] (after the max-pool),
            'layer1'..'layer4' stage outputs (in `dtype`), 'pooled' [N, F] float32.
        """
        intermediates = {}
        x = jnp.asarray(x, self.dtype)
        x = _conv(self.num_filters, 7, 2, 3, self.dtype, "conv1", self.conv_impl)(x)
        x = self.activation(BatchNorm(dtype=self.dtype, name="bn1")(x, train))
        # reduce_window pads with the init value -inf, as torch's MaxPool2d(3, 2, padding=1).
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        intermediates["stem"] = x
        for i, num_blocks in enumerate(self.stage_sizes):
            for j in range(num_blocks):
                stride = 2 if i > 0 and j == 0 else 1
                x = self.block_cls(
                    filters=self.num_filters * 2**i,
                    stride=stride,
                    dtype=self.dtype,
                    zero_init_residual=self.zero_init_residual,
                    activation=self.activation,
                    conv_impl=self.conv_impl,
                    name=f"layer{i + 1}_{j}",
                )(x, train)
            intermediates[f"layer{i + 1}"] = x
        # Average in float32 (a bfloat16 sum over H*W positions loses precision) and keep it
        # float32: it feeds losses and evaluation (e.g. config.eval.feature='pooled').
        pooled = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
        intermediates["pooled"] = pooled
        return pooled, intermediates


ResNet18 = functools.partial(ResNet, stage_sizes=(2, 2, 2, 2), block_cls=BasicBlock)
ResNet34 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block_cls=BasicBlock)
ResNet50 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block_cls=Bottleneck)
