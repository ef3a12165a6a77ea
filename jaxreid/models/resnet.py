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

BatchNorm follows torch semantics, not flax's (`jaxreid.models.batch_norm`).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxreid.config import architecture
from jaxreid.models.batch_norm import BatchNorm
from jaxreid.models.convolution import conv_function
from jaxreid.models.non_local import NonLocal
from jaxreid.models.pooling import max_pool

Array = jax.Array
Dtype = Any

# torchvision: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"),
# i.e. N(0, 2 / (out_channels * kh * kw)). jax computes fan_out of an HWIO kernel the same way.
conv_kernel_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def _conv(
    features: int,
    kernel: int,
    stride: int,
    padding: int,
    dtype: Dtype,
    name: str,
    conv_impl: str = "xla",
    train: bool = True,
) -> nn.Conv:
    """Bias-free conv with torch's symmetric explicit padding (never 'SAME').

    Computes in `dtype` with a float32 kernel parameter; `conv_impl` is one of
    `jaxreid.models.convolution.CONV_IMPLS` (how the convolution is computed; 'auto' depends
    on `train` and the backend).
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
        conv_general_dilated=conv_function(conv_impl, train),
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
    # Its layers in forward order (the shortcut's, when present, run after the main path).
    layers = architecture.BLOCK_LAYERS["basic"]

    @nn.compact
    def __call__(self, x: Array, train: bool, mask: Array | None = None) -> Array:
        """mask: optional [N] bool rows for the BatchNorm statistics (see BatchNorm)."""
        bn = functools.partial(BatchNorm, dtype=self.dtype)
        last_scale_init = nn.initializers.zeros if self.zero_init_residual else nn.initializers.ones
        out = _conv(self.filters, 3, self.stride, 1, self.dtype, "conv1", self.conv_impl, train)(x)
        out = self.activation(bn(name="bn1")(out, train, mask))
        out = _conv(self.filters, 3, 1, 1, self.dtype, "conv2", self.conv_impl, train)(out)
        out = bn(name="bn2", scale_init=last_scale_init)(out, train, mask)
        shortcut = _shortcut(
            x, self.filters * self.expansion, self.stride, self.dtype, train, mask, self.conv_impl
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
    layers = architecture.BLOCK_LAYERS["bottleneck"]

    @nn.compact
    def __call__(self, x: Array, train: bool, mask: Array | None = None) -> Array:
        """mask: optional [N] bool rows for the BatchNorm statistics (see BatchNorm)."""
        bn = functools.partial(BatchNorm, dtype=self.dtype)
        last_scale_init = nn.initializers.zeros if self.zero_init_residual else nn.initializers.ones
        out = _conv(self.filters, 1, 1, 0, self.dtype, "conv1", self.conv_impl, train)(x)
        out = self.activation(bn(name="bn1")(out, train, mask))
        out = _conv(self.filters, 3, self.stride, 1, self.dtype, "conv2", self.conv_impl, train)(
            out
        )
        out = self.activation(bn(name="bn2")(out, train, mask))
        out = _conv(
            self.filters * self.expansion, 1, 1, 0, self.dtype, "conv3", self.conv_impl, train
        )(out)
        out = bn(name="bn3", scale_init=last_scale_init)(out, train, mask)
        shortcut = _shortcut(
            x, self.filters * self.expansion, self.stride, self.dtype, train, mask, self.conv_impl
        )
        return self.activation(out + shortcut)


def _shortcut(
    x: Array,
    out_channels: int,
    stride: int,
    dtype: Dtype,
    train: bool,
    mask: Array | None = None,
    conv_impl: str = "xla",
) -> Array:
    """Identity, or torchvision's `downsample` (1x1 conv stride s + BN) when the shape changes.

    Called inside a block's compact __call__, so the submodules are named in that block.
    """
    if stride == 1 and x.shape[-1] == out_channels:
        return x
    x = _conv(out_channels, 1, stride, 0, dtype, "downsample_conv", conv_impl, train)(x)
    return BatchNorm(dtype=dtype, name="downsample_bn")(x, train, mask)


# config.model.shared_from: the first stage a two-stream ResNet shares between modalities;
# everything before it (the stem: conv1, bn1, ReLU, max-pool, and the stages before) has one
# copy per modality (jaxreid.config.architecture, with the AGW reference).
SHARED_FROM = architecture.SHARED_FROM
# Prefix of the modality-specific copies in the parameter tree: modality0_conv1, ...
MODALITY_PREFIX = architecture.MODALITY_PREFIX
# Prefix of non-local blocks: non_local<stage>_<k> (k-th block of that stage).
NON_LOCAL_PREFIX = architecture.NON_LOCAL_PREFIX


class ResNet(nn.Module):
    """ResNet backbone without the fc layer.

    Attributes:
      stage_sizes: blocks per stage, e.g. (2, 2, 2, 2) for ResNet18.
      block_cls: BasicBlock or Bottleneck.
      num_filters: width of the stem and of stage 1 (64 = torchvision; e.g. 8 for tests).
      dtype: compute dtype (bfloat16 on accelerators); parameters are always float32.
      zero_init_residual: initialise the last BN scale of each block to zero (torchvision's
        `zero_init_residual`); off by default like torchvision.
      activation: the non-linearity at every ReLU position (stem and blocks); `nn.relu`.
        Swapped only for analysis, e.g. `jaxreid.visualization.guided_relu`, which has the
        same forward pass and the parameters stay valid.
      pooling: global pooling, one of `jaxreid.models.pooling.POOLINGS` ('avg' | 'gem' |
        'max'); GeM uses `gem_p` (learned if `gem_learnable`).
      non_local: non-local blocks per stage (`jaxreid.models.non_local.NonLocal`), inserted
        after the last blocks of the stage; () = none. AGW: (0, 2, 3, 0) on ResNet50
        (Ye et al. 2021 §4.1), i.e. after blocks 2, 3 of layer2 and 3, 4, 5 of layer3.
      streams: 1 = one network for every modality; S > 1 = S modality-specific copies of
        the layers before `shared_from` (a partially shared two-stream network; each image
        goes through the copy of its modality, see `__call__`'s `modality`).
      shared_from: the first shared stage when streams > 1, one of SHARED_FROM.
      last_stride: stride of the first block of the last stage (2 = torchvision; AGW uses 1,
        `last_conv_stride=1`, doubling the last feature map's height and width).
      conv_impl: how convolutions are computed, one of
        `jaxreid.models.convolution.CONV_IMPLS` ('auto' | 'xla' | 'gemm' | 'gemm_wgrad');
        the same values within float32 reduction order.
    """

    stage_sizes: Sequence[int]
    block_cls: type[nn.Module]
    num_filters: int = 64
    dtype: Dtype = jnp.float32
    zero_init_residual: bool = False
    activation: Callable[[Array], Array] = nn.relu
    pooling: str = "avg"
    gem_p: float = 3.0
    gem_learnable: bool = False
    non_local: Sequence[int] = ()
    streams: int = 1
    shared_from: str = "layer1"
    last_stride: int = 2
    conv_impl: str = "xla"

    def layer_order(self) -> list[tuple[str, ...]]:
        """Paths of its layers in forward order: ('conv1',), ('bn1',), ('layer1_0', 'conv1'),
        ... ('layer4_1', 'bn2'); the order and its rules are
        `jaxreid.config.architecture.backbone_layer_order`'s, from this network's attributes.
        Layer freezing (jaxreid.training.freezing) addresses the network by this list."""
        return architecture.backbone_layer_order(
            self.stage_sizes,
            self.block_cls.layers,
            non_local=self.non_local,
            streams=self.streams,
            shared_from=self.shared_from,
            learnable_gem=self.pooling == "gem" and self.gem_learnable,
        )

    @nn.compact
    def __call__(
        self, x: Array, train: bool, modality: Array | int | None = None
    ) -> tuple[Array, dict[str, Array]]:
        """Embeds images.

        Args:
          x: [N, H, W, C] float images, any number of channels C.
          train: use batch statistics and update 'batch_stats' (pass mutable=['batch_stats']).
          modality: which modality-specific stream each image goes through when
            streams > 1: an [N] int array of stream indices (the training batches'
            'modality', the index in config.data.modalities), or one Python int for the
            whole batch (evaluation of one modality; only that stream is computed). With
            an array every stream runs on the whole batch and each row keeps its own
            stream's output; in training each stream's BatchNorm statistics use only the
            rows of its modality, so a stream's parameters get gradients only from its own
            images (through the shared layers too in inference mode; in training a shared
            layer's BatchNorm statistics mix the modalities, as in AGW's code, which couples
            every image with every other one). Ignored when streams == 1. Required when
            streams > 1, except at `init`, which creates every stream.

        Returns:
          pooled: [N, F] pooled features, F = 8 * num_filters * expansion (512 for
            ResNet18/34, 2048 for ResNet50 at full width), float32 whatever `dtype`.
          intermediates: 'stem' [N, H/4, W/4, num_filters] (after the max-pool),
            'layer1'..'layer4' stage outputs, 'pooled' [N, F].

        Raises:
          ValueError: an invalid attribute (names the config key), or modality=None with
            streams > 1 outside `init`.
        """
        self._check()
        num_specific = SHARED_FROM.index(self.shared_from) if self.streams > 1 else -1
        x = inputs = jnp.asarray(x, self.dtype)
        if self.streams == 1:
            x, intermediates = self._early(x, train, None, "")
        elif isinstance(modality, int):
            x, intermediates = self._early(x, train, None, f"{MODALITY_PREFIX}{modality}_")
            # At init the other streams are created too (their outputs are discarded).
            if self.is_initializing():
                for m in range(self.streams):
                    if m != modality:
                        self._early(inputs, train, None, f"{MODALITY_PREFIX}{m}_")
        else:
            if modality is None:
                if not self.is_initializing():
                    raise ValueError(
                        f"ResNet(streams={self.streams}, shared_from={self.shared_from!r}) "
                        "needs `modality` (an [N] int32 array or an int) to choose each "
                        "image's modality-specific layers (config.model.shared_from)."
                    )
                modality = jnp.zeros((x.shape[0],), jnp.int32)
            modality = jnp.asarray(modality)
            if modality.shape != x.shape[:1]:
                raise ValueError(
                    f"ResNet: modality must have shape {x.shape[:1]} (one per image), got "
                    f"{modality.shape}."
                )
            outputs = []
            for m in range(self.streams):
                rows = modality == m
                out = self._early(x, train, rows if train else None, f"{MODALITY_PREFIX}{m}_")
                outputs.append((rows, out))
            x, intermediates = outputs[0][1]
            for rows, (x_m, inter_m) in outputs[1:]:
                x = _select_rows(rows, x_m, x)
                intermediates = {
                    k: _select_rows(rows, inter_m[k], v) for k, v in intermediates.items()
                }
        shared_stages = range(num_specific, len(self.stage_sizes)) if self.streams > 1 else ()
        for i in shared_stages:
            x = self._stage(x, i, train, None, "")
            intermediates[f"layer{i + 1}"] = x
        from jaxreid.models.pooling import GlobalPool  # Here: keeps resnet's imports minimal.

        # Pooled in float32 and kept float32: it feeds losses and evaluation (e.g.
        # config.eval.feature='pooled'), whatever the compute dtype.
        pooled = GlobalPool(
            self.pooling, self.gem_p, self.gem_learnable, name="gem" if self.gem_learnable else None
        )(x.astype(jnp.float32))
        intermediates["pooled"] = pooled
        return pooled, intermediates

    def _check(self) -> None:
        from jaxreid.models.pooling import POOLINGS

        if self.pooling not in POOLINGS:
            raise ValueError(f"config.model.pooling={self.pooling!r}; expected one of {POOLINGS}.")
        if self.streams < 1:
            raise ValueError(f"ResNet.streams must be >= 1, got {self.streams}.")
        if self.streams > 1 and self.shared_from not in SHARED_FROM:
            raise ValueError(
                f"config.model.shared_from={self.shared_from!r}; expected one of {SHARED_FROM} "
                "(or '' for one stream)."
            )
        if self.last_stride not in (1, 2):
            raise ValueError(f"config.model.last_stride={self.last_stride}; expected 1 or 2.")
        if self.non_local:
            if len(self.non_local) != len(self.stage_sizes):
                raise ValueError(
                    f"config.model.non_local={tuple(self.non_local)} needs one count per stage "
                    f"({len(self.stage_sizes)} stages)."
                )
            for i, (count, size) in enumerate(zip(self.non_local, self.stage_sizes)):
                if not 0 <= count <= size:
                    raise ValueError(
                        f"config.model.non_local={tuple(self.non_local)}: layer{i + 1} has "
                        f"{size} blocks, so it takes 0..{size} non-local blocks, got {count}."
                    )

    def _early(self, x, train, mask, prefix, num_stages=None):
        """The stem and the first `num_stages` stages (default: the modality-specific ones, or
        every stage for one stream), with module names starting with `prefix`."""
        if num_stages is None:
            num_stages = (
                SHARED_FROM.index(self.shared_from) if self.streams > 1 else len(self.stage_sizes)
            )
        intermediates = {}
        x = _conv(self.num_filters, 7, 2, 3, self.dtype, f"{prefix}conv1", self.conv_impl, train)(x)
        x = self.activation(BatchNorm(dtype=self.dtype, name=f"{prefix}bn1")(x, train, mask))
        # torch's MaxPool2d(3, 2, padding=1), with a cheaper gradient on the CPU (pooling.py)
        # when training; the same values through nn.max_pool otherwise, which exporters know
        # (ONNX Runtime refused jax2onnx's MaxPool of the custom-gradient form).
        if train:
            x = max_pool(x, 3, 2, 1)
        else:
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        intermediates["stem"] = x
        for i in range(num_stages):
            x = self._stage(x, i, train, mask, prefix)
            intermediates[f"layer{i + 1}"] = x
        return x, intermediates

    def _stage(self, x, i, train, mask, prefix):
        """Stage i (0-based) with its non-local blocks after its last blocks."""
        num_blocks = self.stage_sizes[i]
        num_non_local = self.non_local[i] if self.non_local else 0
        for j in range(num_blocks):
            last = i == len(self.stage_sizes) - 1
            stride = 1 if i == 0 or j > 0 else self.last_stride if last else 2
            x = self.block_cls(
                filters=self.num_filters * 2**i,
                stride=stride,
                dtype=self.dtype,
                zero_init_residual=self.zero_init_residual,
                activation=self.activation,
                conv_impl=self.conv_impl,
                name=f"{prefix}layer{i + 1}_{j}",
            )(x, train, mask)
            k = j - (num_blocks - num_non_local)
            if k >= 0:
                x = NonLocal(dtype=self.dtype, name=f"{prefix}{NON_LOCAL_PREFIX}{i + 1}_{k}")(
                    x, train, mask
                )
        return x


def _select_rows(rows: Array, a: Array, b: Array) -> Array:
    """a where rows ([N] bool) is True, else b; a, b: [N, ...]."""
    return jnp.where(rows.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)


_STAGES = architecture.STAGE_SIZES  # Blocks per stage (He et al. 2016, Table 1).
ResNet18 = functools.partial(ResNet, stage_sizes=_STAGES["resnet18"], block_cls=BasicBlock)
ResNet34 = functools.partial(ResNet, stage_sizes=_STAGES["resnet34"], block_cls=BasicBlock)
ResNet50 = functools.partial(ResNet, stage_sizes=_STAGES["resnet50"], block_cls=Bottleneck)
