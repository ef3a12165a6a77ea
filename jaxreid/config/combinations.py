"""Rules across keys: each function takes a config whose single values are valid and yields
one message per problem, naming every key involved and its value (`COMBINATIONS`); and the
check that the training batch splits over the devices (`check_batch_sharding`).

A new cross-key rule is a generator function added to `COMBINATIONS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import ml_collections

from jaxreid.config import architecture, choices


def _modalities_split_k(c) -> Iterator[str]:
    k, modalities = c.batch.images_per_identity, tuple(c.data.modalities)
    if k % len(modalities):
        yield (
            f"config.batch.images_per_identity={k} must be a multiple of the number of "
            f"modalities in config.data.modalities={modalities}, so that each identity's K "
            "images split evenly over them."
        )


def _layout_modalities(c) -> Iterator[str]:
    layout, modalities = c.data.input_layout, tuple(c.data.modalities)
    if layout.startswith("zero_pad") and len(modalities) != 2:
        yield (
            f"config.data.input_layout={layout!r} gives each of two modalities its own "
            f"channel; config.data.modalities={modalities} has {len(modalities)}."
        )


def _fold_in_range(c) -> Iterator[str]:
    if c.data.fold >= c.data.num_folds:
        yield (
            f"config.data.fold={c.data.fold}: expected 0..{c.data.num_folds - 1} "
            f"(config.data.num_folds={c.data.num_folds})."
        )


def _val_pairs_default(c) -> Iterator[str]:
    modalities = tuple(c.data.modalities)
    if len(modalities) > 2 and not c.eval.val_pairs:
        yield (
            f"config.data.modalities={modalities}: with more than two modalities name the "
            f"validation pairs in config.eval.val_pairs, some of {choices.val_pair_names(c)}."
        )


def _head_and_loss(c) -> Iterator[str]:
    parts = c.loss.name.split("+")
    if c.model.head == "distance" and "softmax" not in parts:
        yield (
            f"config.model.head='distance' is trained by the softmax loss over its distance "
            f"scores (Tekeli 2019 §3.3); config.loss.name={c.loss.name!r} has no 'softmax'."
        )
    if c.model.head == "linear" and c.model.embedding_size == 0 and c.loss.name == "triplet":
        yield (
            "config.model.embedding_size=0 makes the classification layer the embedding, but "
            "config.loss.name='triplet' trains no classification layer; set an embedding "
            "size or add the softmax loss."
        )


def _test_protocol_modalities(c) -> Iterator[str]:
    needed = choices.PROTOCOL_MODALITIES.get(c.eval.test_protocol, ())
    modalities = tuple(c.data.modalities)
    if any(m not in modalities for m in needed):
        yield (
            f"config.eval.test_protocol={c.eval.test_protocol!r} needs the modalities "
            f"{needed}; config.data.modalities={modalities}."
        )
    if (
        c.eval.test_protocol == "sysu"
        and c.eval.sysu_sampler == "official"
        and not c.eval.sysu_perm_file
    ):
        yield (
            "config.eval.sysu_sampler='official' needs config.eval.sysu_perm_file (the "
            "dataset's exp/rand_perm_cam.mat); or use config.eval.sysu_sampler='seeded'."
        )


def _hafner_code_options(c) -> Iterator[str]:
    # Both only change the 'hafner_code' test of the 'pairs' test protocol.
    code_test = c.eval.test_protocol == "pairs" and c.eval.protocol == "hafner_code"
    for key in ("camera_rule", "hafner_code_use_all_quirk"):
        if c.eval[key] and not code_test:
            yield (
                f"config.eval.{key}=True applies to config.eval.protocol='hafner_code' with "
                f"config.eval.test_protocol='pairs'; got {c.eval.protocol!r} and "
                f"{c.eval.test_protocol!r}."
            )
    if c.eval.camera_rule and c.eval.hafner_code_use_all_quirk:
        yield (
            "config.eval.hafner_code_use_all_quirk=True is the masking of the relaxed rule "
            "(the author's use_all=True); config.eval.camera_rule=True is the other rule."
        )
    if code_test and c.eval.rerank:
        yield (
            "config.eval.rerank=True: the 'hafner_code' protocol has no re-ranking (the "
            "author's code has none); use config.eval.protocol='hafner_text' or 'full'."
        )


def _warmup_shorter_than_training(c) -> Iterator[str]:
    pairs = [("optim", c.optim.warmup_steps, "num_train_steps", c.num_train_steps)]
    if c.method == "distillation":
        pairs.append(
            (
                "distill.optim",
                c.distill.optim.warmup_steps,
                "distill.num_train_steps",
                c.distill.num_train_steps,
            )
        )
    for optim, warmup, steps, total in pairs:
        if warmup and warmup >= total:  # No warm-up is fine for any length, even 0 steps.
            yield (
                f"config.{optim}.warmup_steps={warmup} must be less than config.{steps}={total}."
            )


def _distillation(c) -> Iterator[str]:
    if c.method != "distillation":
        return
    d, modalities = c.distill, tuple(c.data.modalities)
    if len(modalities) != 2 or d.source_modality not in modalities:
        yield (
            f"config.distill.source_modality={d.source_modality!r} and config.data.modalities="
            f"{modalities}: distillation needs two modalities, the source one of them."
        )
    if c.data.input_layout not in choices.DISTILL_INPUT_LAYOUTS:
        yield (
            f"config.data.input_layout={c.data.input_layout!r}: F and G share one input "
            f"format, expected one of {choices.DISTILL_INPUT_LAYOUTS} (zero padding is a one-network "
            "method)."
        )
    if c.model.head != "linear":
        yield (
            f"config.model.head={c.model.head!r}: distillation freezes layers of ReIDNet's "
            "linear head; expected 'linear'."
        )


def _freeze_from_in_model(c) -> Iterator[str]:
    """config.distill.freeze_from names a layer of the network, in its own layer order
    (`architecture.layer_order`, the list of the model's `layer_order()`), that has
    parameters. Only distillation freezes layers: without it the key is not used."""
    if c.method != "distillation" or c.model.head != "linear":
        return  # Distillation needs the linear head (`_distillation` says so).
    order = architecture.layer_order(c)
    try:
        index = architecture.freeze_index(order, c.distill.freeze_from, c.model.backbone)
    except ValueError as e:
        yield str(e)
        return
    layer = order[index][0] if index is not None else None
    if layer in ("embedding", "embedding_bn") and not c.model.embedding_size:
        yield (
            f"config.distill.freeze_from={c.distill.freeze_from!r}: with "
            "config.model.embedding_size=0 the network has no embedding layer."
        )
    if layer in ("classifier", architecture.DROPOUT) and c.loss.name == "triplet":
        yield (
            f"config.distill.freeze_from={c.distill.freeze_from!r}: with "
            "config.loss.name='triplet' the network has no classifier."
        )


def _channel_augmentation_layout(c) -> Iterator[str]:
    augment = c.data.augment
    used = [
        f"config.data.augment.{name}={getattr(augment, name)}"
        for name in ("channel_erasing", "channel_exchange", "random_gray")
        if getattr(augment, name)
    ]
    channels = choices.INPUT_CHANNELS[c.data.input_layout]
    if used and channels != 3:
        yield (
            f"{', '.join(used)}: the channel operations work on the R, G and B channels of a "
            f"3-channel input; config.data.input_layout={c.data.input_layout!r} gives "
            f"{channels}. Fix: config.data.input_layout='shared', or set "
            f"{' and '.join(u.split('=')[0] for u in used)} to 0."
        )


def batch_norm_values(c) -> list[tuple[str, int, int]]:
    """[(layer, images, positions)] of every group of BatchNorm layers a training step runs,
    in forward order: each normalises over `images` x `positions` values per channel.

    The stem's 'bn1' and the stages 'layer1'.. see the H x W positions of their own feature
    map (`architecture.feature_map_sizes`); the head's BatchNorm ('embedding_bn' of the
    linear head with an embedding layer, 'bnneck_bn' of the BNNeck) one position. A modality-specific
    layer of a partially shared network (config.model.shared_from) sees only its modality's
    P x K / M images; everything else the whole P x K batch, which is one modality in each
    step of distillation.
    """
    batch = c.batch.num_identities * c.batch.images_per_identity
    modalities = len(c.data.modalities)
    if c.method == "distillation":
        modalities = 1  # Step I trains F on the source images, Step II G on the target ones.
    shared_from = c.model.shared_from
    specific = architecture.SHARED_FROM.index(shared_from) if shared_from else 0
    per_stream = batch // modalities if shared_from and modalities > 1 else batch
    sizes = architecture.feature_map_sizes(c.data.image_size, c.model.backbone, c.model.last_stride)
    (_, height, width), _, *stages = sizes
    groups = [("bn1", per_stream if specific > 0 else batch, height * width)]
    for i, (name, height, width) in enumerate(stages):
        images = per_stream if i < specific else batch
        groups.append((name, images, height * width))
    if c.model.head == "bnneck":
        groups.append(("bnneck_bn", batch, 1))
    elif c.model.head == "linear" and c.model.embedding_size:
        groups.append(("embedding_bn", batch, 1))
    return groups


def _batch_norm_sees_two_values(c) -> Iterator[str]:
    """PyTorch refuses a training batch in which a BatchNorm sees one value per channel
    ("Expected more than 1 value per channel when training"): the batch variance is 0, so
    every feature is normalised to 0, and the running variance is pulled toward 0."""
    if c.method == "classical":
        return  # No network is trained.
    p, k = c.batch.num_identities, c.batch.images_per_identity
    for layer, images, positions in batch_norm_values(c):
        if images * positions >= 2:
            continue
        stream = (
            f", {images} per modality stream (config.model.shared_from={c.model.shared_from!r})"
            if images != p * k
            else ""
        )
        need = -(-2 // positions) * (p * k // images)  # Images per step the layer needs.
        fix_p = -(-need // k)
        yield (
            f"config.batch.num_identities={p} x config.batch.images_per_identity={k} = "
            f"{p * k} training image(s) per step{stream}: the BatchNorm of {layer!r} would see "
            f"{images} image(s) x {positions} position(s) = {images * positions} value per "
            f"channel, normalise every feature to 0 and pull its running variance toward 0 "
            f"(PyTorch refuses this). Fix: at least {need} images per step, e.g. "
            f"--config.batch.num_identities={max(fix_p, p + 1)}."
        )
        return  # The first such layer; the later ones follow from the same batch.


COMBINATIONS: tuple[Callable[[Any], Iterator[str]], ...] = (
    _modalities_split_k,
    _layout_modalities,
    _fold_in_range,
    _val_pairs_default,
    _head_and_loss,
    _test_protocol_modalities,
    _hafner_code_options,
    _warmup_shorter_than_training,
    _distillation,
    _freeze_from_in_model,
    _channel_augmentation_layout,
    _batch_norm_sees_two_values,
)


# --- devices -------------------------------------------------------------------------------


def check_batch_sharding(
    config: ml_collections.ConfigDict, num_devices: int, num_processes: int = 1
) -> str | None:
    """None if the global training batch P x K splits evenly over the devices and processes,
    else a message naming the keys, the device count and the nearest P and K that do.

    The batch of every training step (supervised, and both steps of distillation, which use
    the same P and K) is sharded over all devices, so P*K must be a multiple of
    lcm(num_devices, num_processes); K stays a multiple of the number of modalities.
    """
    p, k = config.batch.num_identities, config.batch.images_per_identity
    n = math.lcm(num_devices, num_processes)
    if (p * k) % n == 0:
        return None
    m = len(config.data.modalities)
    p_step = n // math.gcd(k, n)  # P*K % n == 0  <=>  P is a multiple of this.
    k_step = math.lcm(m, n // math.gcd(p, n))
    ps = sorted(
        {q for q in (p // p_step * p_step, -(-p // p_step) * p_step) if q >= 1},
        key=lambda q: (abs(q - p), q),
    )
    ks = sorted(
        {q for q in (k // k_step * k_step, -(-k // k_step) * k_step) if q >= 1},
        key=lambda q: (abs(q - k), q),
    )
    over = f"{num_devices} devices" + (
        f" in {num_processes} processes" if num_processes > 1 else ""
    )
    options = [f"--config.batch.num_identities={q} (batch {q * k})" for q in ps]
    options += [f"--config.batch.images_per_identity={q} (batch {p * q})" for q in ks]
    return (
        f"config.batch.num_identities={p} x config.batch.images_per_identity={k} = {p * k} "
        f"training images per step do not split evenly over {over} (the batch is sharded "
        f"over the devices; it must be a multiple of {n}). Nearest valid values, e.g. "
        + ", or ".join(options)
        + "."
    )
