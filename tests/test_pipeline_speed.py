"""The input pipeline's faster paths give bit-identical batches to the plain formulations."""

import numpy as np
import tensorflow as tf

from jaxreid.data import pipeline, preprocessing, sampler
from jaxreid.data.image_set import ImageSet


def _image_set(modality, ids, per_id, channels, dtype, seed=0):
    rng = np.random.default_rng(seed)
    n = len(ids) * per_id
    images = rng.integers(0, np.iinfo(dtype).max, size=(n, 9, 6, channels)).astype(dtype)
    return ImageSet(
        modality=modality,
        images=images,
        person_ids=np.repeat(np.asarray(ids), per_id).astype(np.int32),
        camera_ids=np.ones(n, np.int32),
        frame_ids=np.array([str(i) for i in range(n)], object),
        file_index=np.arange(n, dtype=np.int32) + 1,
        filenames=np.array([""] * n, object),
    )


def _reference_augment(images, seed, step, pad, rows):
    """Flip, zero-pad and crop with TensorFlow ops, one operation per stage (the pipeline's
    earlier formulation): same stateless draws from (seed, step)."""
    lo, hi, global_batch = rows
    height, width = images.shape[1:3]
    key = tf.constant([seed, step], tf.int64)
    flip_key, crop_key = tf.unstack(tf.random.experimental.stateless_split(key, 2))
    mirror = tf.random.stateless_uniform([global_batch], seed=flip_key)[lo:hi] < 0.5
    images = tf.where(mirror[:, None, None, None], tf.reverse(images, axis=[2]), images)
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    offsets = tf.random.stateless_uniform(
        [global_batch, 2], seed=crop_key, minval=0, maxval=2 * pad + 1, dtype=tf.int32
    )[lo:hi].numpy()
    return np.stack(
        [padded[i, oy : oy + height, ox : ox + width].numpy() for i, (oy, ox) in enumerate(offsets)]
    )


def test_augmented_batches_equal_flip_pad_crop_reference():
    sets = [
        _image_set("rgb", range(6), 4, 3, np.uint8),
        _image_set("depth", range(6), 4, 1, np.uint16, seed=1),
    ]
    norms = [preprocessing.fit_normalization(s.images, "shared", "dataset") for s in sets]
    index = sampler.index_identities([s.person_ids for s in sets])
    # pad 3 on 9 x 6 images: shifts up to 3 px, half the width; odd P x K per process.
    kw = dict(num_identities=3, images_per_identity=2, layout="shared", seed=7, start_step=0)
    for process_index in range(2):
        proc = dict(process_index=process_index, process_count=2, num_steps=3)
        plain = pipeline.train_batches(
            sets, norms, index, random_flip=False, pad_crop=0, **kw, **proc
        )
        augmented = pipeline.train_batches(
            sets, norms, index, random_flip=True, pad_crop=3, **kw, **proc
        )
        lo = process_index * 3
        for step, (p, a) in enumerate(zip(plain, augmented)):
            expected = _reference_augment(p["image"], 7, step, 3, (lo, lo + 3, 6))
            np.testing.assert_array_equal(a["image"], expected)


def test_center_person_equals_nanpercentile_formulation():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 8000, size=(5, 12, 7, 1)).astype(np.float32)
    images[:, :3] = 0  # Holes.
    images[2] = 0  # No valid depth at all.
    images[3] = 0
    images[3, 4, 4] = 1234.0  # A single valid pixel.
    valid = images > 0
    flat = np.where(valid, images, np.nan).reshape(len(images), -1)
    with np.errstate(all="ignore"):
        level = np.nan_to_num(np.nanpercentile(flat, 15, axis=1))[:, None, None, None]
    expected = np.where(valid, images - level, 0.0).astype(np.float32)
    out = preprocessing.center_person(images)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)
