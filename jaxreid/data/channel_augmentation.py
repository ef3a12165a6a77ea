"""Random erasing and channel augmentation of training batches (TensorFlow, stateless).

The augmentations of channel-augmented joint learning (CAJ; Ye et al. 2021, "Channel
Augmented Joint Learning for Visible-Infrared Recognition", ICCV, §3.1; `ChannelExchange`,
`ChannelAdapGray` and `ChannelRandomErasing` in github.com/mangye16/Cross-Modal-Re-ID-baseline
ICCV21_CAJ, read, not copied), each applied to an image with its own probability:

  random erasing    a random rectangle of every channel set to 0 (Zhong et al. 2020,
                    "Random Erasing Data Augmentation", AAAI, Alg. 1: area fraction
                    U(0.02, 0.4), aspect ratio U(0.3, 1/0.3)). Images are normalised per
                    modality before augmentation, so 0 is the channel's training mean.
  channel erasing   the same rectangle in one random channel only (R, G or B).
  channel exchange  one random channel (R, G or B, equally likely) copied to all three, so a
                    colour image looks like a one-channel (infrared-like) image of one band.
  random grey       the BT.601 luma (0.299 R + 0.587 G + 0.114 B) in all three channels.

Exchange and grey exclude each other: with probabilities p_x and p_g (p_x + p_g <= 1) an
image is exchanged with probability p_x, else made grey with probability p_g. CAJ's code in
these terms: visible images of its extra view get exchange 1.0, grey 0 (`ChannelExchange(gray
=2)` draws randint(0, 2), i.e. never its grey branch); infrared images get exchange 0.75 and
grey 0.125 (`ChannelAdapGray(0.5)`); every image random erasing 0.5.

Differences from that code: CAJ erases with the constants (0.4914, 0.4822, 0.4465) in
normalised units, here with 0 (the mean); CAJ retries up to 100 rectangle draws until one
fits, here one draw whose height and width are clipped to fit (at most H - 1 by W - 1).

All random numbers are drawn for the whole global batch from a stateless key and this host
keeps its rows, as `jaxreid.data.pipeline` does for flips and crops, so a batch is the same
on any number of hosts and a pure function of (seed, step).
"""

from __future__ import annotations

import tensorflow as tf

# Zhong et al. 2020, Alg. 1 / §3.1: s_l, s_h, r_1.
ERASE_AREA = (0.02, 0.4)
ERASE_ASPECT = 0.3
# ITU-R BT.601 luma (as jaxreid.data.preprocessing, PIL's convert('L')).
LUMA = (0.299, 0.587, 0.114)


def check_probabilities(
    random_erasing: float, channel_erasing: float, channel_exchange: float, random_gray: float
) -> None:
    """Raises ValueError unless each is in [0, 1] and exchange + grey <= 1."""
    named = dict(
        random_erasing=random_erasing,
        channel_erasing=channel_erasing,
        channel_exchange=channel_exchange,
        random_gray=random_gray,
    )
    for name, p in named.items():
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"config.data.augment.{name}={p}; expected a probability in [0, 1].")
    if channel_exchange + random_gray > 1.0 + 1e-9:
        raise ValueError(
            f"config.data.augment.channel_exchange={channel_exchange} + random_gray="
            f"{random_gray} > 1; they exclude each other, so their sum must be <= 1."
        )


def _boxes(key, global_batch, rows, height, width):
    """[B, H, W] bool random-erasing rectangles (Zhong et al. 2020) of this host's rows."""
    lo, hi = rows
    u = tf.random.stateless_uniform([global_batch, 4], seed=key)[lo:hi]
    area = (ERASE_AREA[0] + (ERASE_AREA[1] - ERASE_AREA[0]) * u[:, 0]) * (height * width)
    aspect = ERASE_ASPECT + (1.0 / ERASE_ASPECT - ERASE_ASPECT) * u[:, 1]
    h = tf.clip_by_value(tf.round(tf.sqrt(area * aspect)), 1.0, max(height - 1, 1))
    w = tf.clip_by_value(tf.round(tf.sqrt(area / aspect)), 1.0, max(width - 1, 1))
    top = tf.floor(u[:, 2] * (height - h + 1.0))
    left = tf.floor(u[:, 3] * (width - w + 1.0))
    ys = tf.range(height, dtype=tf.float32)[None, :]
    xs = tf.range(width, dtype=tf.float32)[None, :]
    in_rows = (ys >= top[:, None]) & (ys < (top + h)[:, None])  # [B, H]
    in_cols = (xs >= left[:, None]) & (xs < (left + w)[:, None])  # [B, W]
    return in_rows[:, :, None] & in_cols[:, None, :]


def augment(
    images: tf.Tensor,
    eligible: tf.Tensor,
    key: tf.Tensor,
    rows: tuple[int, int, int],
    *,
    random_erasing: float = 0.0,
    channel_erasing: float = 0.0,
    channel_exchange: float = 0.0,
    random_gray: float = 0.0,
) -> tf.Tensor:
    """Random erasing, channel erasing, channel exchange / grey, in that order (as CAJ).

    Args:
      images: [B, H, W, C] float32 normalised images of this host (C = 3 for the channel
        operations; random erasing works with any C).
      eligible: [B] bool, the images the channel operations (erasing one channel,
        exchange, grey) may change; random erasing may change every image.
      key: [2] int64 stateless seed of this step.
      rows: (lo, hi, global batch size): this host's rows of the global batch.
      random_erasing, channel_erasing, channel_exchange, random_gray: probabilities per image
        (see the module docstring).

    Returns:
      [B, H, W, C] float32; every value is an input value of the same pixel, a convex
      combination of them (grey), or 0 (erased).
    """
    lo, hi, global_batch = rows
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    keys = tf.unstack(tf.random.experimental.stateless_split(key, 6))
    draw = lambda k: tf.random.stateless_uniform([global_batch], seed=k)[lo:hi]
    if random_erasing:
        box = _boxes(keys[0], global_batch, (lo, hi), height, width)
        erase = box & (draw(keys[1]) < random_erasing)[:, None, None]
        images = tf.where(erase[..., None], tf.zeros_like(images), images)
    if channel_erasing:
        box = _boxes(keys[2], global_batch, (lo, hi), height, width)
        channel = tf.cast(tf.floor(draw(keys[3]) * channels), tf.int32)
        one_channel = tf.one_hot(
            tf.minimum(channel, channels - 1),
            channels,
            on_value=True,
            off_value=False,
            dtype=tf.bool,
        )  # [B, C]
        apply = (draw(keys[4]) < channel_erasing) & eligible
        erase = (box & apply[:, None, None])[..., None] & one_channel[:, None, None, :]
        images = tf.where(erase, tf.zeros_like(images), images)
    if channel_exchange or random_gray:
        u = tf.random.stateless_uniform([global_batch, 2], seed=keys[5])[lo:hi]
        channel = tf.minimum(tf.cast(tf.floor(u[:, 1] * 3), tf.int32), 2)
        picked = tf.gather(images, channel, axis=3, batch_dims=1)  # [B, H, W]
        exchanged = tf.repeat(picked[..., None], 3, axis=3)
        luma = tf.reduce_sum(images * tf.constant(LUMA, tf.float32), axis=3, keepdims=True)
        gray = tf.repeat(luma, 3, axis=3)
        do_exchange = (u[:, 0] < channel_exchange) & eligible
        do_gray = (u[:, 0] >= channel_exchange) & (u[:, 0] < channel_exchange + random_gray)
        do_gray &= eligible
        images = tf.where(do_exchange[:, None, None, None], exchanged, images)
        images = tf.where(do_gray[:, None, None, None], gray, images)
    return images
