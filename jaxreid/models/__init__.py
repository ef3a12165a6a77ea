"""Model registry: backbones by name and `create_model`.

Other model pieces live next to this file: `resnet` (backbones, optionally partially shared
two-stream), `reid` (ReIDNet head), `distance` (DistanceNet), `bnneck` (BNNeckNet),
`pooling` (average / max / GeM), `non_local` (non-local blocks), `flip` (flip test),
`pretrained` (torchvision weight conversion; imports torch lazily).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from jaxreid import mixed_precision
from jaxreid.config import choices
from jaxreid.models.bnneck import BNNECK_FEATURES, BNNeckNet
from jaxreid.models.convolution import CONV_IMPLS
from jaxreid.models.distance import DistanceNet
from jaxreid.models.non_local import NonLocal
from jaxreid.models.pooling import POOLINGS, GlobalPool, gem
from jaxreid.models.reid import ReIDNet
from jaxreid.models.resnet import (
    SHARED_FROM,
    BasicBlock,
    BatchNorm,
    Bottleneck,
    ResNet,
    ResNet18,
    ResNet34,
    ResNet50,
)

BACKBONES = {
    "resnet18": ResNet18,
    "resnet34": ResNet34,
    "resnet50": ResNet50,
}
choices.check_registry(BACKBONES, choices.BACKBONES, "jaxreid.models.BACKBONES")


def _as_dtype(dtype: Any) -> Any:
    """A dtype name of mixed_precision.DTYPES ('float32', 'bfloat16', 'float16') -> the jnp
    dtype; a dtype object is returned unchanged."""
    return mixed_precision.compute_dtype(dtype) if isinstance(dtype, str) else dtype


def get_backbone(
    name: str, *, width: int = 64, dtype: Any = jnp.float32, conv_impl: str = "xla", **options
):
    """Returns the ResNet partial registered as `name` with width, dtype, conv_impl and
    `options` bound.

    Args:
      dtype: compute dtype, a jnp dtype or a name in `mixed_precision.DTYPES`.
      conv_impl: one of `CONV_IMPLS` ('auto' | 'xla' | 'gemm' | 'gemm_wgrad').
      options: further `jaxreid.models.resnet.ResNet` attributes (pooling, gem_p,
        gem_learnable, non_local, streams, shared_from, last_stride); omitted = defaults.

    Raises:
      ValueError: `name` is not in BACKBONES, `dtype` or `conv_impl` unknown (the message
        lists the valid values).
    """
    if name not in BACKBONES:
        raise ValueError(f"Unknown backbone {name!r}; valid names: {', '.join(sorted(BACKBONES))}")
    if conv_impl not in CONV_IMPLS:
        raise ValueError(f"config.model.conv_impl={conv_impl!r}; expected one of {CONV_IMPLS}.")
    return functools.partial(
        BACKBONES[name], num_filters=width, dtype=_as_dtype(dtype), conv_impl=conv_impl, **options
    )


HEADS = choices.HEADS  # config.model.head


def create_model(
    backbone: str,
    *,
    num_classes: int,
    embedding_size: int | None,
    dropout_rate: float = 0.5,
    width: int = 64,
    dtype: Any = jnp.float32,
    head: str = "linear",
    distance: dict | None = None,
    backbone_options: dict | None = None,
    conv_impl: str = "xla",
) -> ReIDNet | DistanceNet | BNNeckNet:
    """Builds a re-id network on a registered backbone.

    Both heads are called as `model.apply(variables, x, train=..., labels=...)` and return
    (embedding [N, D], intermediates with 'logits' [N, C] for the softmax loss).

    Args:
      backbone: 'resnet18' | 'resnet34' | 'resnet50'.
      num_classes: classifier size C; 0 omits the classifier.
      embedding_size: embedding layer size D, or None for the size-C logits as embedding
        (linear head only).
      dropout_rate: dropout before the classifier (Hafner 2018 §4.3.2: 0.5).
      width: backbone `num_filters` (64 = torchvision; small values for tests).
      dtype: compute dtype, a jnp dtype or 'float32' | 'bfloat16' | 'float16'
        (`mixed_precision.DTYPES`); parameters, BatchNorm statistics and the returned
        embedding / logits stay float32.
      head: 'linear' (ReIDNet: embedding layer + dropout + fully-connected classifier,
        Hafner 2018) or 'distance' (DistanceNet: the pooled backbone features scored by
        -distance to class centres, Tekeli & Can 2019).
        'bnneck' (BNNeckNet: BatchNorm without shift on the pooled features and a bias-free
        classifier; Luo et al. 2019, the AGW baseline; embedding_size is not used).
      distance: DistanceNet options for the distance head: metric, center_update, momentum.
      backbone_options: ResNet attributes (see `get_backbone`), e.g. {'pooling': 'gem',
        'non_local': (0, 2, 3, 0), 'streams': 2, 'shared_from': 'layer1'}.
      conv_impl: convolution weight-gradient implementation (`CONV_IMPLS`).
    """
    dtype = _as_dtype(dtype)
    backbone_fn = get_backbone(
        backbone, width=width, dtype=dtype, conv_impl=conv_impl, **(backbone_options or {})
    )
    if head == "distance":
        return DistanceNet(backbone=backbone_fn, num_classes=num_classes, **(distance or {}))
    if head == "bnneck":
        return BNNeckNet(
            backbone=backbone_fn, num_classes=num_classes, dropout_rate=dropout_rate, dtype=dtype
        )
    if head != "linear":
        raise ValueError(f"Unknown head {head!r}; valid heads: {', '.join(HEADS)}")
    return ReIDNet(
        backbone=backbone_fn,
        num_classes=num_classes,
        embedding_size=embedding_size,
        dropout_rate=dropout_rate,
        dtype=dtype,
    )


def backbone_options(config) -> dict:
    """The ResNet attributes set by config.model (pooling, GeM, non-local blocks, streams).

    config.model.shared_from '' gives one stream; a stage name gives one stream per
    modality of config.data.modalities, specific up to that stage.
    """
    model = config.model
    return dict(
        pooling=model.pooling,
        gem_p=model.gem_p,
        gem_learnable=model.gem_learnable,
        non_local=tuple(model.non_local),
        streams=len(config.data.modalities) if model.shared_from else 1,
        shared_from=model.shared_from or "layer1",
        last_stride=model.last_stride,
    )


def model_from_config(config, num_classes: int) -> ReIDNet | DistanceNet | BNNeckNet:
    """The network a run with this config (`jaxreid.config` schema) trains and evaluates.

    The classifier is omitted for the pure metric losses ('triplet', 'wrt'; it would receive
    no gradient).
    """
    metric_only = "softmax" not in config.loss.name.split("+")
    return create_model(
        config.model.backbone,
        num_classes=0 if metric_only else num_classes,
        embedding_size=config.model.embedding_size or None,
        dropout_rate=config.model.dropout_rate,
        width=config.model.width,
        dtype=config.model.dtype,
        head=config.model.head,
        distance=config.model.distance.to_dict(),
        backbone_options=backbone_options(config),
        conv_impl=config.model.conv_impl,
    )


# Labels of `param_group_labels`.
PARAM_GROUPS = ("backbone", "head")


def param_group_labels(params):
    """A pytree like `params` with 'backbone' for every leaf under params['backbone'] (the
    ResNet, with its non-local blocks and modality-specific stems) and 'head' for the rest
    (embedding layer, BNNeck, classifier, distance-layer centres).

    For separate learning rates, e.g. AGW's backbone at a tenth of the head's rate (Ye et al.
    2021; `ignored_params` in the AGW code's train.py):
    `optax.multi_transform({'backbone': sgd(0.1 * lr), 'head': sgd(lr)}, param_group_labels)`.
    """
    return {
        key: jax.tree.map(lambda _, k=key: "backbone" if k == "backbone" else "head", subtree)
        for key, subtree in params.items()
    }


def select_feature(embedding, intermediates: dict, feature: str = "", key="config.eval.feature"):
    """`embedding` if `feature` is '', else the named intermediate output (e.g. 'pooled' or
    'logits'): the features a run ranks (config.eval.feature) or compares in its triplet
    loss (config.loss.triplet_feature). `key` names the config key in the error message."""
    if not feature:
        return embedding
    if feature not in intermediates:
        raise ValueError(f"{key}={feature!r}; the model's outputs are {sorted(intermediates)}.")
    return intermediates[feature]


__all__ = [
    "BACKBONES",
    "BNNECK_FEATURES",
    "BNNeckNet",
    "GlobalPool",
    "NonLocal",
    "PARAM_GROUPS",
    "POOLINGS",
    "SHARED_FROM",
    "backbone_options",
    "gem",
    "param_group_labels",
    "BasicBlock",
    "BatchNorm",
    "CONV_IMPLS",
    "DistanceNet",
    "HEADS",
    "Bottleneck",
    "ReIDNet",
    "ResNet",
    "ResNet18",
    "ResNet34",
    "ResNet50",
    "create_model",
    "get_backbone",
    "model_from_config",
    "select_feature",
]
