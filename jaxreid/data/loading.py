"""What a network method takes from `config.data` before it trains: the splits of every
modality, each modality's normalisation (fitted on its training images), the network's input
shape and the training augmentation.

    splits, norms = loading.load_data(config)     # TensorFlow (TFDS) is imported here
    shape = loading.image_shape(config)           # (H, W, C); NumPy only
    batches = pipeline.train_batches(..., **loading.augmentation(config))

Shared by the supervised trainer and both steps of distillation (jaxreid.methods).
"""

from __future__ import annotations

import ml_collections

from jaxreid.data import preprocessing
from jaxreid.data.image_set import ImageSet


def load_data(
    config: ml_collections.ConfigDict,
) -> tuple[dict[str, dict[str, ImageSet]], dict[str, preprocessing.Normalization]]:
    """The train / val / test (and query) ImageSets per modality and the per-modality
    normalisation of `config.data`.

    Returns:
      (splits, norms): splits = `sources.load_splits`' {'train': {modality: ImageSet}, ...};
      norms = {modality: Normalization} fitted on that modality's training images
      (`config.data.normalization`; depth centred when `config.data.center_depth`).

    Raises:
      jaxreid.data.sources.DatasetError: the dataset is missing, half-written or stale.
    """
    from jaxreid.data import sources  # TensorFlow: only when data are actually loaded.

    splits = sources.load_splits(config.data)
    norms = {
        m: preprocessing.fit_normalization(
            splits["train"][m].images,
            config.data.input_layout,
            config.data.normalization,
            center=config.data.center_depth and m == "depth",
        )
        for m in config.data.modalities
    }
    return splits, norms


def image_shape(config: ml_collections.ConfigDict) -> tuple[int, int, int]:
    """(height, width, channels) of the network input: `config.data.image_size` and the
    channels of `config.data.input_layout` (preprocessing.INPUT_LAYOUTS)."""
    return (*config.data.image_size, preprocessing.input_channels(config.data.input_layout))


def augmentation(config: ml_collections.ConfigDict) -> dict:
    """The random erasing / channel augmentation / RandomSizedRectCrop keywords of `pipeline.train_batches` (and of
    distillation's Step II batches) from `config.data.augment`: probabilities per training
    image, and the modalities the channel operations apply to."""
    augment = config.data.augment
    return dict(
        random_erasing=augment.random_erasing,
        channel_erasing=augment.channel_erasing,
        channel_exchange=augment.channel_exchange,
        random_gray=augment.random_gray,
        channel_modalities=tuple(augment.channel_modalities),
        random_sized_rect_crop=augment.random_sized_rect_crop,
    )
