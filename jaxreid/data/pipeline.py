"""tf.data training pipeline (padded evaluation batches: jaxreid.data.eval_batches).

Training: for every step, the P x K sampler (a pure function of seed and step) picks the
global batch; this host gathers its slice, normalises each modality, and tf.data applies the
random flip and pad-and-crop (and, when asked, the thesis author's RandomSizedRectCrop first:
jaxreid.data.rect_crop) with stateless ops seeded by (seed, step), on background threads.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import tensorflow as tf

from jaxreid.data import channel_augmentation, preprocessing, rect_crop, sampler
from jaxreid.data.eval_batches import eval_batches  # noqa: F401 (re-exported)
from jaxreid.data.image_set import ImageSet

# JAX owns the accelerators; TensorFlow only feeds it from the CPU.
tf.config.set_visible_devices([], "GPU")


def train_batches(
    sets: Sequence[ImageSet],
    norms: Sequence[preprocessing.Normalization],
    index: sampler.IdentityIndex,
    *,
    num_identities: int,
    images_per_identity: int,
    layout: str,
    seed: int,
    start_step: int,
    num_steps: int,
    random_flip: bool = True,
    pad_crop: int = 0,
    process_index: int = 0,
    process_count: int = 1,
    sampling: str = "pk",
    random_erasing: float = 0.0,
    channel_erasing: float = 0.0,
    channel_exchange: float = 0.0,
    random_gray: float = 0.0,
    channel_modalities: Sequence[str] = (),
    random_sized_rect_crop: bool = False,
) -> Iterator[dict[str, np.ndarray]]:
    """Training batches for steps start_step .. num_steps-1, this host's share of each.

    Args:
      sets: one ImageSet per modality, images all of the same height and width.
      norms: the normalisation of each modality.
      index: identities present in every modality (sampler.index_identities).
      layout: how modalities share the input channels (preprocessing.INPUT_LAYOUTS).
      sampling: 'pk' (sampler.sample_batch) or 'random' (sampler.sample_random_batch).
      random_erasing, channel_erasing, channel_exchange, random_gray: probabilities per
        image of the augmentations of `jaxreid.data.channel_augmentation` (config.data.augment;
        CAJ, Ye et al. 2021 ICCV), applied after flip and crop with their own stateless keys
        of (seed, step). All 0 (the default) gives exactly the batches without them.
      channel_modalities: modality names (ImageSet.modality) whose images get the channel
        operations (channel erasing, exchange, grey); () = every modality. The channel
        operations need 3-channel input (layout 'shared' or 'zero_pad').
      random_sized_rect_crop: the thesis author's RandomSizedRectCrop (jaxreid.data.rect_crop;
        config.data.augment.random_sized_rect_crop) on every image, before the flip, with a
        key of its own (off: exactly the batches without it).

    Yields:
      dict with image [B, H, W, input_channels(layout)] float32, label [B] int32, modality [B] int32, where
      B = P * K / process_count.
    """
    global_batch = num_identities * images_per_identity
    if global_batch % process_count:
        raise ValueError(
            f"The global batch {global_batch} (P={num_identities} x K={images_per_identity}) "
            f"must divide evenly over {process_count} processes."
        )
    local = global_batch // process_count
    lo, hi = process_index * local, (process_index + 1) * local
    height, width = sets[0].images.shape[1:3]
    channels = preprocessing.input_channels(layout)

    if sampling not in sampler.SAMPLERS:
        raise ValueError(f"config.batch.sampler={sampling!r}; expected one of {sampler.SAMPLERS}.")
    augment = dict(
        random_erasing=float(random_erasing),
        channel_erasing=float(channel_erasing),
        channel_exchange=float(channel_exchange),
        random_gray=float(random_gray),
    )
    channel_augment = bool(channel_erasing or channel_exchange or random_gray)
    channel_augmentation.check_probabilities(**augment)
    if channel_augment and channels != 3:
        raise ValueError(
            f"config.data.augment channel operations need 3-channel input; "
            f"config.data.input_layout={layout!r} has {channels}."
        )
    names = [image_set.modality for image_set in sets]
    unknown = sorted(set(channel_modalities) - set(names))
    if unknown:
        raise ValueError(
            f"config.data.augment.channel_modalities has {unknown}; the trained modalities are "
            f"{names}."
        )
    slots = [
        m for m, name in enumerate(names) if not channel_modalities or name in channel_modalities
    ]

    def load(step):
        if sampling == "pk":
            labels, modality, positions = sampler.sample_batch(
                index, num_identities, images_per_identity, seed, int(step)
            )
        else:
            labels, modality, positions = sampler.sample_random_batch(
                index, global_batch, seed, int(step)
            )
        labels, modality, positions = labels[lo:hi], modality[lo:hi], positions[lo:hi]
        images = np.empty((local, height, width, channels), np.float32)
        for m, (image_set, norm) in enumerate(zip(sets, norms)):
            rows = modality == m
            images[rows] = preprocessing.normalize(
                image_set.images[positions[rows]], norm, layout, slot=m
            )
        return images, labels, modality

    def to_dict(step):
        images, labels, modality = tf.numpy_function(
            load, [step], (tf.float32, tf.int32, tf.int32), stateful=False
        )
        images.set_shape((local, height, width, channels))
        labels.set_shape((local,))
        modality.set_shape((local,))
        key = tf.stack([tf.constant(seed, tf.int64), step])
        rows = (lo, hi, global_batch)
        if random_sized_rect_crop:  # transforms.py: RandomSizedRectCrop, then the flip.
            crop_key = tf.random.experimental.stateless_fold_in(key, 2)
            images = rect_crop.crop(images, rect_crop.draw(crop_key, rows))
        images = _augment(images, key, random_flip, pad_crop, rows)
        if random_erasing or channel_augment:
            # A key of its own, so the flips and crops stay those drawn without these.
            aug_key = tf.random.experimental.stateless_fold_in(key, 1)
            eligible = tf.reduce_any(modality[:, None] == tf.constant(slots, tf.int32)[None], 1)
            images = channel_augmentation.augment(images, eligible, aug_key, rows, **augment)
        return {"image": images, "label": labels, "modality": modality}

    ds = tf.data.Dataset.range(start_step, num_steps)
    ds = ds.map(to_dict, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.prefetch(2)
    return ds.as_numpy_iterator()


def _augment(
    images: tf.Tensor, key: tf.Tensor, flip: bool, pad: int, rows: tuple[int, int, int]
) -> tf.Tensor:
    """Per-image random horizontal flip and pad-and-crop, [B, H, W, C] -> same shape.

    The random numbers are drawn for the whole global batch (rows = (lo, hi, global size)) and
    this host keeps its rows, so an image is augmented the same on any number of hosts.
    """
    lo, hi, global_batch = rows
    height, width = images.shape[1], images.shape[2]
    flip_key, crop_key = tf.unstack(tf.random.experimental.stateless_split(key, 2))
    if flip:
        mirror = tf.random.stateless_uniform([global_batch], seed=flip_key)[lo:hi] < 0.5
        images = tf.where(mirror[:, None, None, None], tf.reverse(images, axis=[2]), images)
    if pad:
        padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
        offsets = tf.random.stateless_uniform(
            [global_batch, 2], seed=crop_key, minval=0, maxval=2 * pad + 1, dtype=tf.int32
        )[lo:hi]
        row_index = offsets[:, :1] + tf.range(height)[None]  # [B, H]
        col_index = offsets[:, 1:] + tf.range(width)[None]  # [B, W]
        images = tf.gather(padded, row_index, axis=1, batch_dims=1)
        images = tf.gather(images, col_index, axis=2, batch_dims=1)
    return images
