"""Padded evaluation batches: every image is embedded exactly once on any device count.

The last global batch is padded with zeros and comes with a mask (False on padding), so no
image is dropped and none is embedded twice. NumPy only (no TensorFlow).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from jaxreid.data import preprocessing
from jaxreid.data.image_set import ImageSet


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
        if hi > lo:  # A later process's share of the last batch may be all padding.
            images[: hi - lo] = preprocessing.normalize(
                image_set.images[lo:hi], norm, layout, slot
            )
        mask[: hi - lo] = True
        yield {"image": images, "mask": mask}
