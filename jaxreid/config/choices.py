"""Allowed values of config keys whose code is slow to import for validation alone
(jaxreid.training.distillation brings Orbax and the whole trainer): kept here, and
tests/test_config.py checks that they equal the code's own constants. Every other allowed
value is imported by `validation.rules()` from the module that uses it.
"""

from __future__ import annotations

# config.method: the keys of jaxreid.methods.METHODS (tests/test_methods.py compares them).
METHODS = ("supervised", "distillation", "classical")
DISTILL_FROZEN_BN = ("fixed", "update")  # jaxreid.training.distillation.FROZEN_BN
DISTILL_EARLY_STOPPING = ("val_loss", "val_mAP")  # jaxreid.training.distillation.EARLY_STOPPING
# F and G share one input format; zero padding is a one-network method (Hafner 2018 §3.3).
DISTILL_INPUT_LAYOUTS = ("shared", "gray")


def val_pair_names(config) -> tuple[str, ...]:
    """The query/gallery pairs config.eval.val_pairs may name: every ordered pair of
    config.data.modalities, as evaluation.pair_name writes them ('Q:rgb G:depth')."""
    modalities = tuple(config.data.modalities)
    return tuple(f"Q:{q} G:{g}" for q in modalities for g in modalities)
