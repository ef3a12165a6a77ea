"""The structure of jaxreid's networks as plain data and integer arithmetic (no Flax).

Config validation needs a network's stage names, its layers in forward order (where
config.distill.freeze_from may point) and the spatial size of every feature map (a BatchNorm
that would see one value per channel); this module computes them from the config alone, so
that validation imports no JAX. The Flax models (jaxreid.models) build their ResNets from the
same tables (`STAGE_SIZES`, `BLOCK_LAYERS`, ...) and list their layers with
`backbone_layer_order`; tests/test_config.py compares the arithmetic here with the shapes of
the built models for several input sizes, depths and options.

Sizes follow torchvision's ResNet: conv1 7x7 stride 2 padding 3, max-pool 3x3 stride 2
padding 1, a stride-2 first block in every stage after layer1 (the last one's stride is
config.model.last_stride); each stride-2 step maps a side of n to ceil(n / 2).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from jaxreid.config import choices

# Blocks per stage of each backbone (He et al. 2016, Table 1) and its block type.
STAGE_SIZES: dict[str, tuple[int, ...]] = {
    "resnet18": (2, 2, 2, 2),
    "resnet34": (3, 4, 6, 3),
    "resnet50": (3, 4, 6, 3),
}
BACKBONE_BLOCKS: dict[str, str] = {
    "resnet18": "basic",
    "resnet34": "basic",
    "resnet50": "bottleneck",
}
# The layers of each block type in forward order (the shortcut's, when present, run after the
# main path): jaxreid.models.resnet.BasicBlock.layers / Bottleneck.layers.
BLOCK_LAYERS: dict[str, tuple[str, ...]] = {
    "basic": ("conv1", "bn1", "conv2", "bn2", "downsample_conv", "downsample_bn"),
    "bottleneck": (
        *("conv1", "bn1", "conv2", "bn2", "conv3", "bn3"),
        *("downsample_conv", "downsample_bn"),
    ),
}
NON_LOCAL_LAYERS = ("theta", "phi", "g", "out", "out_bn")  # jaxreid.models.non_local.NonLocal
# The stem's layers (before the max-pool) and the stage names 'layer1'..'layer4'.
STEM_LAYERS = ("conv1", "bn1")
STAGES = ("layer1", "layer2", "layer3", "layer4")
# config.model.shared_from: the first stage a two-stream ResNet shares between modalities;
# everything before it has one copy per modality. 'layer1' = AGW's partially shared network
# (Ye et al. 2021, TPAMI §4.1: modality-specific first convolution block, shared stages).
SHARED_FROM = STAGES
MODALITY_PREFIX = "modality"  # modality0_conv1, ...: the modality-specific copies
NON_LOCAL_PREFIX = "non_local"  # non_local<stage>_<k>: k-th non-local block of that stage
DROPOUT = "Dropout_0"  # Flax's name of the heads' dropout before the classifier
# The layers after the backbone, in forward order, of the heads that list theirs
# (jaxreid.models.reid.ReIDNet, jaxreid.models.bnneck.BNNeckNet).
HEAD_LAYERS: dict[str, tuple[str, ...]] = {
    "linear": ("embedding", "embedding_bn", DROPOUT, "classifier"),
    "bnneck": ("bnneck_bn", DROPOUT, "classifier"),
}

# 'auto' freezing point: the thesis author's code freezes every parameter from the first one
# with 256 output channels (ResNet18) / 1024 (ResNet50) onwards (transfer-reid/retrainer.py).
# At width w these are layer3 (4w channels, BasicBlock) and layer3_0's conv3 (16w channels,
# Bottleneck; its conv1/conv2 have 4w channels and stay trainable). ResNet34 follows ResNet18.
AUTO_FREEZE_FROM = {"resnet18": "layer3", "resnet34": "layer3", "resnet50": "layer3_0/conv3"}
FREEZE_SYNTAX = (
    "'auto', 'none', 'stem', 'layer<i>', 'layer<i>_<j>', 'layer<i>_<j>/<layer>' (e.g. "
    "'layer3_0/conv3'), 'embedding', 'embedding_bn' or 'classifier'"
)
_STAGE = re.compile(r"layer(\d+)")

choices.check_registry(STAGE_SIZES, choices.BACKBONES, "jaxreid.config.architecture.STAGE_SIZES")


def stage_names(backbone: str) -> tuple[str, ...]:
    """'layer1'..'layer<n>' of `backbone` (a name of choices.BACKBONES); all four for an
    unknown name (whose own rule reports it)."""
    return STAGES[: len(STAGE_SIZES.get(backbone, STAGES))]


def _ceil_div(size: int, stride: int) -> int:
    return -(-size // stride)


def feature_map_sizes(
    image_size: Sequence[int], backbone: str = "resnet18", last_stride: int = 2
) -> list[tuple[str, int, int]]:
    """[(name, height, width)] of every feature map of the backbone, in forward order: 'conv1'
    (the stem's convolution, normalised by 'bn1'), 'stem' (after the max-pool), then each
    stage 'layer1'..'layer<n>'.

    Args:
      image_size: (height, width) of the input in pixels.
      backbone: a name of choices.BACKBONES.
      last_stride: stride of the last stage's first block (config.model.last_stride, 1 or 2).

    E.g. (64, 32) on ResNet18: conv1 32x16, stem 16x8, layer1 16x8, layer2 8x4, layer3 4x2,
    layer4 2x1.
    """
    height, width = (_ceil_div(s, 2) for s in image_size)  # conv1, stride 2
    sizes = [("conv1", height, width)]
    height, width = _ceil_div(height, 2), _ceil_div(width, 2)  # the max-pool, stride 2
    sizes.append(("stem", height, width))
    stages = stage_names(backbone)
    for i, name in enumerate(stages):
        if i > 0:
            stride = last_stride if i == len(stages) - 1 else 2
            height, width = _ceil_div(height, stride), _ceil_div(width, stride)
        sizes.append((name, height, width))
    return sizes


def backbone_layer_order(
    stage_sizes: Sequence[int],
    block_layers: Sequence[str],
    *,
    non_local: Sequence[int] = (),
    streams: int = 1,
    shared_from: str = "layer1",
    learnable_gem: bool = False,
) -> list[tuple[str, ...]]:
    """Paths of a ResNet's layers in forward order: ('conv1',), ('bn1',), ('layer1_0',
    'conv1'), ... ('layer4_1', 'bn2'); jaxreid.models.resnet.ResNet.layer_order.

    Layer freezing addresses the network by this list; a layer that a block does not create
    (a shortcut without downsampling) is listed anyway and simply matches nothing. Non-local
    blocks follow the block they come after; with streams > 1 each modality's copies come
    first (modality 0's stem and specific stages, then modality 1's, ...), then the shared
    stages; a learnable GeM exponent ('gem',) comes last.

    Args:
      stage_sizes: blocks per stage, e.g. (2, 2, 2, 2).
      block_layers: the layers of one block (`BLOCK_LAYERS`).
      non_local: non-local blocks per stage (after the stage's last blocks); () = none.
      streams: 1, or the number of modality-specific copies of the layers before
        `shared_from` (one of `SHARED_FROM`).
      learnable_gem: GeM pooling with a learned exponent.
    """
    num_stages = len(stage_sizes)
    prefixes = [f"{MODALITY_PREFIX}{m}_" for m in range(streams)] if streams > 1 else [""]
    specific = SHARED_FROM.index(shared_from) if streams > 1 else num_stages

    def stage(i, prefix):
        num_blocks = stage_sizes[i]
        num_non_local = non_local[i] if non_local else 0
        out = []
        for j in range(num_blocks):
            out += [(f"{prefix}layer{i + 1}_{j}", name) for name in block_layers]
            k = j - (num_blocks - num_non_local)
            if k >= 0:
                block = f"{prefix}{NON_LOCAL_PREFIX}{i + 1}_{k}"
                out += [(block, name) for name in NON_LOCAL_LAYERS]
        return out

    order = []
    for prefix in prefixes:
        order += [(f"{prefix}{name}",) for name in STEM_LAYERS]
        for i in range(specific):
            order += stage(i, prefix)
    for i in range(specific, num_stages):
        order += stage(i, "")
    if learnable_gem:
        order.append(("gem",))
    return order


def layer_order(config) -> list[tuple[str, ...]]:
    """The layers of the network `config` builds (jaxreid.models.model_from_config), in
    forward order, as its `layer_order()` lists them: ('backbone', ...) then the head's.

    Raises:
      ValueError: config.model.head is 'distance', whose network lists no layers (it is never
        frozen: distillation needs the linear head).
    """
    model = config.model
    if model.head not in HEAD_LAYERS:
        raise ValueError(f"config.model.head={model.head!r} lists no layers.")
    backbone = backbone_layer_order(
        STAGE_SIZES[model.backbone],
        BLOCK_LAYERS[BACKBONE_BLOCKS[model.backbone]],
        non_local=tuple(model.non_local),
        streams=len(config.data.modalities) if model.shared_from else 1,
        shared_from=model.shared_from or "layer1",
        learnable_gem=model.pooling == "gem" and model.gem_learnable,
    )
    return [("backbone", *p) for p in backbone] + [(name,) for name in HEAD_LAYERS[model.head]]


def display_path(path: Sequence[str]) -> str:
    """A layer's path as config.distill.freeze_from names it: without the 'backbone/'."""
    return "/".join(path[1:] if path[0] == "backbone" else path)


def freeze_index(order: Sequence[tuple[str, ...]], freeze_from: str, backbone: str) -> int | None:
    """Index in `order` (a network's layer order) of the first frozen layer (Hafner 2018 §3.3:
    it and every later layer are frozen in Step II), or None for 'none'.

    Args:
      freeze_from: config.distill.freeze_from (syntax: FREEZE_SYNTAX).
      backbone: config.model.backbone (for 'auto', `AUTO_FREEZE_FROM`).

    Raises:
      ValueError: naming the value, the syntax, and the network's layers when none matches.
    """
    if freeze_from == "none":
        return None
    if freeze_from == "auto":
        if backbone not in AUTO_FREEZE_FROM:
            raise ValueError(
                f"config.distill.freeze_from='auto' has no default for config.model.backbone="
                f"{backbone!r}; known: {sorted(AUTO_FREEZE_FROM)}. Name a layer instead."
            )
        freeze_from = AUTO_FREEZE_FROM[backbone]
    order = list(order)
    backbone_layers = [p for p in order if p[0] == "backbone"]
    stage = _STAGE.fullmatch(freeze_from)
    if freeze_from == "stem":
        matches = backbone_layers[:1]
    elif stage:
        matches = [p for p in backbone_layers if len(p) > 2 and p[1].startswith(freeze_from + "_")]
    else:
        parts = tuple(freeze_from.split("/"))
        matches = [p for p in order if p[: len(parts)] == parts] or [
            p for p in backbone_layers if p[1 : 1 + len(parts)] == parts
        ]
    if not matches:
        names = ", ".join(dict.fromkeys(display_path(p) for p in order))
        raise ValueError(
            f"config.distill.freeze_from={freeze_from!r}; expected {FREEZE_SYNTAX}, naming a "
            f"layer of this network: {names}."
        )
    return order.index(matches[0])
