"""tf.data training pipeline and padded evaluation batches.

Training: for every step, the P x K sampler (a pure function of seed and step) picks the
global batch; this host gathers its slice, normalises each modality and applies the random flip
and pad-and-crop (NumPy; the random numbers from TensorFlow's stateless ops seeded by
(seed, step)), in tf.data's background threads.
Evaluation: every image is embedded exactly once on any device count, by padding the last
global batch and returning a mask.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import tensorflow as tf

from jaxreid.data import preprocessing, sampler
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
) -> Iterator[dict[str, np.ndarray]]:
    """Training batches for steps start_step .. num_steps-1, this host's share of each.

    Args:
      sets: one ImageSet per modality, images all of the same height and width.
      norms: the normalisation of each modality.
      index: identities present in every modality (sampler.index_identities).
      layout: how modalities share the input channels (preprocessing.INPUT_LAYOUTS).
      sampling: 'pk' (sampler.sample_batch) or 'random' (sampler.sample_random_batch).

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

    if sampling not in ("pk", "random"):
        raise ValueError(f"config.batch.sampler={sampling!r}; expected 'pk' or 'random'.")

    def load(step, mirror, offsets):
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
        return augment(images, mirror, offsets, pad_crop), labels, modality

    def to_dict(step):
        key = tf.stack([tf.constant(seed, tf.int64), step])
        mirror, offsets = _augmentation_draws(key, random_flip, pad_crop, (lo, hi, global_batch))
        images, labels, modality = tf.numpy_function(
            load, [step, mirror, offsets], (tf.float32, tf.int32, tf.int32), stateful=False
        )
        images.set_shape((local, height, width, channels))
        labels.set_shape((local,))
        modality.set_shape((local,))
        return {"image": images, "label": labels, "modality": modality}

    ds = tf.data.Dataset.range(start_step, num_steps)
    ds = ds.map(to_dict, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.prefetch(2)
    return ds.as_numpy_iterator()


def _augmentation_draws(
    key: tf.Tensor, flip: bool, pad: int, rows: tuple[int, int, int]
) -> tuple[tf.Tensor, tf.Tensor]:
    """This host's random flips [B] bool and crop offsets [B, 2] int32 (row, column) in
    [0, 2 pad], stateless in `key` = (seed, step).

    The random numbers are drawn for the whole global batch (rows = (lo, hi, global size)) and
    this host keeps its rows, so an image is augmented the same on any number of hosts.
    """
    lo, hi, global_batch = rows
    flip_key, crop_key = tf.unstack(tf.random.experimental.stateless_split(key, 2))
    if flip:
        mirror = tf.random.stateless_uniform([global_batch], seed=flip_key)[lo:hi] < 0.5
    else:
        mirror = tf.zeros([hi - lo], tf.bool)
    if pad:
        offsets = tf.random.stateless_uniform(
            [global_batch, 2], seed=crop_key, minval=0, maxval=2 * pad + 1, dtype=tf.int32
        )[lo:hi]
    else:
        offsets = tf.zeros([hi - lo, 2], tf.int32)
    return mirror, offsets


def augment(images: np.ndarray, mirror: np.ndarray, offsets: np.ndarray, pad: int) -> np.ndarray:
    """Per-image horizontal flip, then zero padding by `pad` pixels and a crop back to H x W.

    Image i is mirrored if mirror[i]; its crop starts at offsets[i] = (row, column) of the
    padded image, each in [0, 2 pad]. Equivalent to flip -> pad -> crop, but each output
    pixel is written once (one copy of the visible region, zeros elsewhere).

    Args:
      images: [B, H, W, C]. mirror: [B] bool. offsets: [B, 2] int. pad: >= 0.

    Returns:
      [B, H, W, C] in the dtype of `images` (the input itself when nothing changes).
    """
    if pad == 0 and not np.any(mirror):
        return images
    _, height, width, _ = images.shape
    out = np.zeros_like(images)
    for i in range(len(images)):
        source = images[i, :, ::-1] if mirror[i] else images[i]
        # Output pixel (r, c) = padded (r + oy, c + ox) = source (r + dy, c + dx).
        dy, dx = int(offsets[i, 0]) - pad, int(offsets[i, 1]) - pad
        rows, cols = max(height - abs(dy), 0), max(width - abs(dx), 0)
        out[i, max(-dy, 0) : max(-dy, 0) + rows, max(-dx, 0) : max(-dx, 0) + cols] = source[
            max(dy, 0) : max(dy, 0) + rows, max(dx, 0) : max(dx, 0) + cols
        ]
    return out


def eval_batches(
    image_set: ImageSet,
    norm: preprocessing.Normalization,
    *,
    layout: str,
    slot: int,
    global_batch: int,
    process_index: int = 0,
    process_count: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
    """This host's share of padded global batches covering every image exactly once.

    Args:
      layout, slot: the input layout and this modality's index in it (preprocessing.normalize).

    Yields:
      dict with image [global_batch / process_count, H, W, C] float32 and mask [same]
      bool (False on padding). Concatenating the masked outputs of all hosts, batch by batch,
      restores the order of `image_set`.
    """
    if global_batch % process_count:
        raise ValueError(f"eval batch {global_batch} must divide over {process_count} processes.")
    local = global_batch // process_count
    n = len(image_set)
    height, width = image_set.images.shape[1:3]
    channels = preprocessing.input_channels(layout)
    for start in range(0, n, global_batch):
        lo = min(start + process_index * local, n)
        hi = min(lo + local, n)
        images = np.zeros((local, height, width, channels), np.float32)
        mask = np.zeros((local,), bool)
        images[: hi - lo] = preprocessing.normalize(image_set.images[lo:hi], norm, layout, slot)
        mask[: hi - lo] = True
        yield {"image": images, "mask": mask}
