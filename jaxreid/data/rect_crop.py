"""The thesis author's `RandomSizedRectCrop` training augmentation, in TensorFlow (tf.data).

Hafner 2018's code (frhf/cross-modal-distillation-reidentification, open-reid/reid/utils/
data/transforms.py lines 22-49; used by every training transform of open-reid/examples/*.py
and transfer-reid/retrainer.py line 240, before the random flip) crops each training image:

  up to 10 attempts: target area = U(0.64, 1) x the image's area, aspect = U(2, 3) (height /
  width), h = round(sqrt(area x aspect)), w = round(sqrt(area / aspect)); the first attempt
  whose h x w box fits in the image is placed at x1 = randint(0, W - w), y1 = randint(0, H - h)
  and resized back to the network's input size, bilinearly (PIL's BILINEAR);
  fallback, when no attempt fits: the whole image resized to the input size (`RectScale`).

jaxreid applies it to the stored image, which the datasets already hold at config.data.
image_size (256 x 128 in the paper grids), so the fallback is the image itself; the author's
code crops the original frame before its resize (the area and aspect ranges are then in the
stored image's pixels). Python's `round` rounds half to even, as `tf.round` does; the box is
computed in float64, as Python computes it.

The random numbers are explicit: `draws` [B, ATTEMPTS, 4] uniforms in [0, 1) per image and
attempt (area, aspect, x1, y1), so the crop is a pure function that a test can feed.
"""

from __future__ import annotations

import tensorflow as tf

ATTEMPTS = 10  # transforms.py line 29
AREA = (0.64, 1.0)  # transforms.py line 31: fraction of the image's area
ASPECT = (2.0, 3.0)  # transforms.py line 32: height / width


def draw(key: tf.Tensor, rows: tuple[int, int, int]) -> tf.Tensor:
    """The uniforms of one global batch, this host's rows: [hi - lo, ATTEMPTS, 4] float64.

    Args:
      key: [2] int64 stateless seed.
      rows: (lo, hi, global batch size), as `pipeline._augment` takes them, so that an image
        is cropped the same on any number of hosts.
    """
    lo, hi, global_batch = rows
    uniforms = tf.random.stateless_uniform([global_batch, ATTEMPTS, 4], seed=key, dtype=tf.float64)
    return uniforms[lo:hi]


def boxes(draws: tf.Tensor, height: int, width: int) -> tuple[tf.Tensor, ...]:
    """The crop box of each image: (y1, x1, h, w), each [B] int32.

    Args:
      draws: [B, ATTEMPTS, 4] float64 uniforms in [0, 1): per attempt the area, aspect, x1 and
        y1 draws (random.uniform(a, b) = a + (b - a) u; randint(0, n) = floor(u (n + 1))).
      height, width: the image's size in pixels.
    """
    draws = tf.convert_to_tensor(draws, tf.float64)
    area = (AREA[0] + (AREA[1] - AREA[0]) * draws[..., 0]) * float(height * width)
    aspect = ASPECT[0] + (ASPECT[1] - ASPECT[0]) * draws[..., 1]
    h = tf.round(tf.sqrt(area * aspect))  # [B, ATTEMPTS]
    w = tf.round(tf.sqrt(area / aspect))
    fits = (w <= width) & (h <= height)
    first = tf.argmax(tf.cast(fits, tf.int32), axis=1, output_type=tf.int32)  # 0 if none fits

    def at_first(values):
        return tf.gather(values, first, axis=1, batch_dims=1)

    h, w = at_first(h), at_first(w)
    x1 = tf.floor(at_first(draws[..., 2]) * (width - w + 1))
    y1 = tf.floor(at_first(draws[..., 3]) * (height - h + 1))
    found = tf.reduce_any(fits, axis=1)
    # Fallback (RectScale): the whole image.
    y1, x1 = tf.where(found, y1, 0.0), tf.where(found, x1, 0.0)
    h, w = tf.where(found, h, float(height)), tf.where(found, w, float(width))
    return tuple(tf.cast(v, tf.int32) for v in (y1, x1, h, w))


def _taps(start, size, out: int):
    """Bilinear source taps of `out` outputs over the `size` pixels from `start` (half-pixel
    centres, edges clamped to the crop, as PIL's upscaling BILINEAR): index0, index1 [B, out]
    int32 and the weight of index1 [B, out] float32."""
    start = tf.cast(start, tf.float64)[:, None]
    size = tf.cast(size, tf.float64)[:, None]
    centre = (tf.range(out, dtype=tf.float64)[None] + 0.5) * size / out - 0.5
    low = tf.floor(centre)
    frac = centre - low
    last = size - 1.0
    index0 = tf.clip_by_value(low, 0.0, last) + start
    index1 = tf.clip_by_value(low + 1.0, 0.0, last) + start
    return tf.cast(index0, tf.int32), tf.cast(index1, tf.int32), tf.cast(frac, tf.float32)


def crop(images: tf.Tensor, draws: tf.Tensor) -> tf.Tensor:
    """[B, H, W, C] float32 -> the same shape: each image's box (`boxes`) resized to H x W.

    The box is never larger than the image, so the resize only enlarges (or keeps) each axis;
    PIL's BILINEAR is then the triangle filter at half-pixel centres.
    """
    height, width = images.shape[1], images.shape[2]
    y1, x1, h, w = boxes(draws, height, width)
    r0, r1, fy = _taps(y1, h, height)
    c0, c1, fx = _taps(x1, w, width)
    top = tf.gather(images, r0, axis=1, batch_dims=1)
    bottom = tf.gather(images, r1, axis=1, batch_dims=1)
    rows = top + (bottom - top) * fy[:, :, None, None]
    left = tf.gather(rows, c0, axis=2, batch_dims=1)
    right = tf.gather(rows, c1, axis=2, batch_dims=1)
    return left + (right - left) * fx[:, None, :, None]
