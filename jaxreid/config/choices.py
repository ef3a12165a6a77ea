"""Allowed values of config keys whose code imports TensorFlow today (jaxreid.train,
jaxreid.distill), kept here so that validation does not; move each next to its code once
that code is TF-free, and import it in `validation.rules()` from there.
"""

from __future__ import annotations

LOSS_PARTS = ("softmax", "triplet")  # config.loss.name: parts joined by '+' (train.LOSSES)
OPTIMIZERS = ("sgd", "momentum", "adam")  # train.create_optimizer
SCHEDULES = ("constant", "cosine", "step")  # train.learning_rate_schedule
TEST_PROTOCOLS = ("pairs", "sysu", "regdb")  # train.test_results
# Modalities the test protocols need (train.test_results: SYSU-MM01 infrared queries
# against an RGB gallery; RegDB visible and thermal).
TEST_PROTOCOL_MODALITIES = {"sysu": ("infrared", "rgb"), "regdb": ("rgb", "thermal")}
DISTILL_TARGETS = ("auto", "paired", "class_mean")  # distill.TARGETS
DISTILL_FROZEN_BN = ("fixed", "update")  # distill.FROZEN_BN
DISTILL_EARLY_STOPPING = ("val_loss", "val_mAP")  # distill.EARLY_STOPPING
DISTILL_INPUT_LAYOUTS = ("shared", "gray")  # F and G share one input format (distill.check_config)
# config.distill.freeze_from (distill.freeze_position): a stage, block or layer of the
# backbone, a layer of the linear head, or 'auto' / 'none'.
BLOCK_LAYERS = ("conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "downsample_conv", "downsample_bn")
FREEZE_FROM = (
    r"auto|none|stem|embedding|embedding_bn|classifier"
    r"|layer[1-9]\d*(_\d+(/(" + "|".join(BLOCK_LAYERS) + r"))?)?"
)


def val_pair_names(config) -> tuple[str, ...]:
    """The query/gallery pairs config.eval.val_pairs may name: every ordered pair of
    config.data.modalities, as evaluation.pair_name writes them ('Q:rgb G:depth')."""
    modalities = tuple(config.data.modalities)
    return tuple(f"Q:{q} G:{g}" for q in modalities for g in modalities)
