"""Flip test: the feature of an image is the mean of the features of the image and of its
horizontal mirror image (a common re-id test-time augmentation, e.g. Luo et al. 2019's
strong-baseline code and the AGW/CAJ evaluation of visible-infrared re-id code bases)."""

from __future__ import annotations

from collections.abc import Callable


def flip_embed(embed_fn: Callable, images):
    """(embed_fn(images) + embed_fn(mirrored images)) / 2.

    Args:
      embed_fn: [B, H, W, C] images -> [B, D] features (e.g. a jitted embed step with the
        state bound). Called twice, with arrays of the same shape and dtype.
      images: [B, H, W, C] array (NumPy or JAX); mirrored along W (axis 2).

    Returns:
      [B, D] features, the array type embed_fn returns.
    """
    if images.ndim != 4:
        raise ValueError(f"flip_embed: expected images [B, H, W, C], got shape {images.shape}.")
    return (embed_fn(images) + embed_fn(images[:, :, ::-1])) / 2
