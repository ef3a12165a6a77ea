"""The vocabulary of config values: every name a config key may hold, defined once, here.

`jaxreid.config` is the bottom layer of jaxreid (docs/architecture.md): validation reads its
allowed values from this module and imports nothing else of jaxreid, so a config is checked
without importing JAX, Flax or TensorFlow. The modules that act on a value take their tuple
from here (`LOSS_NAMES = choices.LOSS_NAMES`); a module whose dispatch table maps names to
code keeps that table and checks at import that its keys are these names (`check_registry`).
The structure of the networks (stage names, layer order, feature-map sizes) is in
`jaxreid.config.architecture`.

Grouped by the config group that uses them; each says which key(s).
"""

from __future__ import annotations

from collections.abc import Iterable

# config.method: the methods of jaxreid.methods.METHODS (checked there at import).
METHODS = ("supervised", "distillation", "classical")

# --- data (config.data.*) ------------------------------------------------------------------

# Modalities the data layer knows (config.data.modalities, config.distill.source_modality).
# RGB-D datasets use ('rgb', 'depth'); RGB-IR datasets ('rgb', 'infrared') or ('visible',
# 'thermal') for RegDB.
MODALITIES = ("rgb", "depth", "infrared", "thermal")
# config.data.name -> the modalities of that dataset (its builder's configs); the builder
# modules are registered in jaxreid.datasets.BUILDER_MODULES under the same names.
DATASET_MODALITIES: dict[str, tuple[str, ...]] = {
    "synthetic": ("rgb", "depth", "infrared"),
    "sysu_mm01": ("rgb", "infrared"),
    "regdb": ("rgb", "thermal"),
    "biwi_rgbd_id": ("rgb", "depth"),
    "robotpku": ("rgb", "depth"),
    "llcm": ("rgb", "infrared"),
    "market1501": ("rgb",),
}
DATASETS = tuple(DATASET_MODALITIES)  # config.data.name
# config.data.layout values each dataset reads ('' = as distributed; its builder configs are
# '<modality>_<layout>' otherwise). 'processed': the thesis author's processed images.
DATASET_LAYOUTS: dict[str, tuple[str, ...]] = {
    "synthetic": ("",),
    "sysu_mm01": ("",),
    "regdb": ("",),
    "biwi_rgbd_id": ("", "processed"),
    "robotpku": ("",),
    "llcm": ("",),
    "market1501": ("",),
}
# config.data.input_layout -> channels of the network input (jaxreid.data.preprocessing):
#   'shared'    three channels for every modality; RGB as is, depth / infrared replicated
#               (the one-stream network, Hafner 2018 §3.1).
#   'gray'      one channel for every modality; RGB converted to luma (Tekeli 2019, §3.3).
#   'zero_pad'  three channels, modality 0 (grayscale) in channel 0, modality 1 in channel 2,
#               the rest zero (the zero-padding network as the thesis implements it, §5.2.2).
#   'zero_pad2' two channels, one per modality (Wu et al. 2017's original form).
INPUT_CHANNELS: dict[str, int] = {"shared": 3, "gray": 1, "zero_pad": 3, "zero_pad2": 2}
INPUT_LAYOUTS = tuple(INPUT_CHANNELS)
# config.data.normalization: 'dataset' = mean/std of the training images of each modality;
# 'imagenet' = torchvision's ImageNet statistics (for pretrained weights).
NORMALIZATIONS = ("dataset", "imagenet")
# config.batch.sampler: 'pk' = P identities x K images (Hermans et al. 2017); 'random' = P*K
# images drawn uniformly from all training images (Tekeli 2019 §4.2).
SAMPLERS = ("pk", "random")

# --- model (config.model.*) ----------------------------------------------------------------

# config.model.backbone: the registered ResNets (their stages: jaxreid.config.architecture).
BACKBONES = ("resnet18", "resnet34", "resnet50")
# config.model.head: 'linear' (ReIDNet, Hafner 2018), 'distance' (DistanceNet, Tekeli 2019),
# 'bnneck' (BNNeckNet, Luo et al. 2019).
HEADS = ("linear", "distance", "bnneck")
DISTANCE_METRICS = ("l1", "l2", "sql2", "linf", "dot")  # config.model.distance.metric, Eqs. 4-8
CENTER_UPDATES = ("sgd", "ema", "median", "midrange")  # config.model.distance.center_update
DTYPES = ("float32", "bfloat16", "float16")  # config.model.dtype, the compute dtype
CONV_IMPLS = ("auto", "xla", "gemm", "gemm_wgrad")  # config.model.conv_impl (jaxreid.models.convolution)
POOLINGS = ("avg", "gem", "max")  # config.model.pooling

# --- loss (config.loss.*, config.distill.loss_reduction) -------------------------------------

# config.loss.name is these parts joined by '+'; LOSS_NAMES are the combinations accepted.
LOSS_PARTS = ("softmax", "triplet", "wrt")
LOSS_NAMES = ("softmax", "triplet", "wrt", "softmax+triplet", "softmax+wrt")
MINING = ("batch", "cross_modal")  # config.loss.mining
MSE_REDUCTIONS = ("sum", "per_sample", "mean")  # config.distill.loss_reduction (Hafner Eq. 6)

# --- optimiser (config.optim.*, config.distill.optim.*) --------------------------------------

OPTIMIZERS = ("sgd", "momentum", "adam")
SCHEDULES = ("constant", "cosine", "step", "agw")

# --- evaluation (config.eval.*) ------------------------------------------------------------

# config.eval.protocol / val_protocol: the query/gallery pair protocols (jaxreid.evaluation
# .hafner): the thesis text's, the author's evaluation code's, and the full gallery.
PAIR_PROTOCOLS = ("hafner_text", "hafner_code", "full")
# Former values of eval.protocol / eval.val_protocol and what replaced them.
RETIRED_PAIR_PROTOCOLS = (
    (
        "hafner",
        (
            "it is now 'hafner_text' (the thesis text's protocol, the former 'hafner') or "
            "'hafner_code' (the author's evaluation code, which produced the published tables)"
        ),
    ),
)
TEST_PROTOCOLS = ("pairs", "sysu", "regdb", "llcm", "market")  # config.eval.test_protocol
# The modalities each test protocol needs: (query, gallery); Market-1501's queries come from
# its query split (config.data.query_split), its gallery from the test split.
PROTOCOL_MODALITIES: dict[str, tuple[str, ...]] = {
    "sysu": ("infrared", "rgb"),
    "regdb": ("rgb", "thermal"),
    "llcm": ("rgb", "infrared"),
    "market": ("rgb",),
}
# config.eval.metric: canonical ranking metrics, and the aliases each name may be given by.
RANKING_METRICS = ("euclidean", "sqeuclidean", "l1", "linf", "cosine")
RANKING_METRIC_ALIASES: dict[str, str] = {
    "euclidean": "euclidean",
    "l2": "euclidean",
    "sqeuclidean": "sqeuclidean",
    "l2_squared": "sqeuclidean",
    "l1": "l1",
    "manhattan": "l1",
    "cityblock": "l1",
    "linf": "linf",
    "chebyshev": "linf",
    "cosine": "cosine",
}
AP_DEFINITIONS = ("non_interpolated", "trapezoid")  # config.eval.ap
SYSU_SAMPLERS = ("official", "seeded")  # config.eval.sysu_sampler
# config.eval.sysu_settings -> (gallery cameras, images per gallery identity): the grid of
# Tekeli 2019, Table 3 (single-shot 1, multi-shot 10).
SYSU_SETTINGS: dict[str, tuple[str, int]] = {
    "all_single": ("all", 1),
    "all_multi": ("all", 10),
    "indoor_single": ("indoor", 1),
    "indoor_multi": ("indoor", 10),
}
LLCM_VIS_TO_IR_ROLES = ("released", "vis_queries")  # config.eval.llcm_vis_to_ir

# --- cross-modal distillation (config.distill.*, Hafner 2018 §3.3) ---------------------------

DISTILL_TARGETS = ("auto", "paired", "class_mean")  # config.distill.targets
DISTILL_FROZEN_BN = ("fixed", "update")  # config.distill.frozen_bn
DISTILL_EARLY_STOPPING = ("val_loss", "val_mAP")  # config.distill.early_stopping
# F and G share one input format; zero padding is a one-network method (Hafner 2018 §3.3).
DISTILL_INPUT_LAYOUTS = ("shared", "gray")

# --- conventional baselines (config.classical.*, Hafner 2018 §5.3) ---------------------------

CLASSICAL_FEATURES = ("lomo", "whos")  # Liao 2015 §3; Lisanti 2015
CLASSICAL_MATCHINGS = ("euclidean", "xqda")  # features compared directly, or Liao 2015 §4
XQDA_SOLVERS = ("svd", "eig")  # the published XQDA.m | Liao 2015 Eq. 14


def val_pair_names(config) -> tuple[str, ...]:
    """The query/gallery pairs config.eval.val_pairs may name: every ordered pair of
    config.data.modalities, as evaluation.pair_name writes them ('Q:rgb G:depth')."""
    modalities = tuple(config.data.modalities)
    return tuple(f"Q:{q} G:{g}" for q in modalities for g in modalities)


def check_registry(table: Iterable[str], names: tuple[str, ...], where: str) -> None:
    """Raises TypeError unless the names `table` registers (a dispatch table's keys) are
    exactly `names`, the vocabulary validation accepts: called at import by the module
    that owns `table` (named `where`), so a name added on one side only fails at once."""
    registered = tuple(table)
    if set(registered) != set(names):
        raise TypeError(
            f"{where} registers {sorted(registered)}, but jaxreid.config.choices allows "
            f"{sorted(names)}: add the name to both."
        )
