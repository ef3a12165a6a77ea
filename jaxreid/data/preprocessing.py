"""Per-modality normalisation and channel conversion (NumPy; shared by training and eval)."""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxreid.config import choices

# torchvision's ImageNet statistics, for networks initialised from ImageNet weights.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# ITU-R BT.601 luma, as PIL's convert('L') computes grayscale (Tekeli 2019, §3.3).
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclasses.dataclass(frozen=True)
class Normalization:
    """x -> (x / scale - mean) / std, channel-wise, after channel conversion.

    Attributes:
      scale: the largest value of the stored dtype (255 for uint8, 65535 for uint16).
      mean: [C] float, in units of x / scale.
      std: [C] float.
      center: subtract each image's own reference level first (`center_person`): for depth,
        whose raw values mostly say how far the person stood from the sensor.
    """

    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    center: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Normalization:
        """The inverse of `to_dict` (after a JSON round trip: lists become tuples)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def convert_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """[N, H, W, C] -> [N, H, W, channels] float32, still in stored units.

    RGB to one channel is the luma; one channel to three is replication, so that depth and
    infrared can share a three-channel network with RGB (the one-stream network, §3.1).
    """
    images = images.astype(np.float32, copy=False)
    have = images.shape[-1]
    if have == channels:
        return images
    if have == 3 and channels == 1:
        return images @ _LUMA[:, None]
    if have == 1 and channels == 3:
        return np.repeat(images, 3, axis=-1)
    raise ValueError(f"Cannot convert {have}-channel images to {channels} channels.")


# The person is the nearest large object in a re-id crop, so a low percentile of the valid
# (non-zero) depths is a robust estimate of its distance; holes (0) are left at 0.
_PERSON_PERCENTILE = 15


def center_person(images: np.ndarray) -> np.ndarray:
    """[N, H, W, C] float depth -> the same with each image's person distance subtracted.

    Makes depth describe shape rather than position (where the person stood); missing
    measurements (0) become 0, i.e. the person's distance.
    """
    valid = images > 0
    # Per image: the percentile of its valid values (= np.nanpercentile with holes as nan,
    # bit for bit, at a third of the cost: no nan array, a partition of the valid values
    # only); 0 for an image without any valid depth.
    level = np.zeros((len(images), 1, 1, 1), images.dtype)
    for i, (image, mask) in enumerate(zip(images, valid)):
        values = image[mask]
        if values.size:
            level[i] = np.percentile(values, _PERSON_PERCENTILE)
    return np.where(valid, images - level, 0.0).astype(np.float32)


def dtype_scale(dtype) -> float:
    return float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 1.0


def fit_normalization(
    images: np.ndarray, layout: str, kind: str, max_images: int = 2000, center: bool = False
) -> Normalization:
    """Statistics for one modality's training images.

    Args:
      images: [N, H, W, C] uint8/uint16 training images of one modality.
      layout: the input layout (see INPUT_LAYOUTS).
      kind: 'dataset' (statistics of these images, from at most `max_images` evenly spaced
        ones) or 'imagenet' (torchvision's statistics, for pretrained weights).
    """
    channels = modality_channels(layout)
    scale = dtype_scale(images.dtype)
    if kind == "imagenet":
        if channels == 3:
            return Normalization(scale, IMAGENET_MEAN, IMAGENET_STD, center)
        return Normalization(
            scale, (float(np.mean(IMAGENET_MEAN)),), (float(np.mean(IMAGENET_STD)),), center
        )
    if kind != "dataset":
        raise ValueError(f"config.data.normalization={kind!r}; expected one of {NORMALIZATIONS}.")
    step = max(1, len(images) // max_images)
    sample = convert_channels(images[::step], channels)
    if center:
        sample = center_person(sample)
    sample = sample / scale
    mean = sample.mean(axis=(0, 1, 2))
    std = np.maximum(sample.std(axis=(0, 1, 2)), 1e-6)
    return Normalization(scale, tuple(map(float, mean)), tuple(map(float, std)), center)


# How modalities share the network input (config.data.input_layout; each described in
# jaxreid.config.choices.INPUT_CHANNELS) and config.data.normalization.
INPUT_LAYOUTS = choices.INPUT_LAYOUTS
NORMALIZATIONS = choices.NORMALIZATIONS
_ZERO_PAD_CHANNEL = {"zero_pad": (0, 2), "zero_pad2": (0, 1)}


def check_layout(layout: str) -> None:
    if layout not in INPUT_LAYOUTS:
        raise ValueError(f"config.data.input_layout={layout!r}; expected one of {INPUT_LAYOUTS}.")


def input_channels(layout: str) -> int:
    """Channels of the network input for `layout`."""
    check_layout(layout)
    return choices.INPUT_CHANNELS[layout]


def modality_channels(layout: str) -> int:
    """Channels each modality is converted to before it is placed in the input."""
    return 3 if layout == "shared" else 1


def normalize(images: np.ndarray, norm: Normalization, layout: str, slot: int = 0) -> np.ndarray:
    """[N, H, W, C] stored images -> [N, H, W, input_channels(layout)] float32 network input.

    Args:
      images: stored images of one modality.
      norm: that modality's statistics (fitted with `modality_channels(layout)` channels).
      layout: one of INPUT_LAYOUTS.
      slot: the modality's index in config.data.modalities (its channel in zero-padding
        layouts). Zero padding is applied after normalisation, so the other channels are
        exactly zero ("no signal"), as in Wu et al. 2017.
    """
    x = convert_channels(images, modality_channels(layout))
    if norm.center:
        x = center_person(x)
    x = (x / norm.scale - np.asarray(norm.mean, np.float32)) / np.asarray(norm.std, np.float32)
    if layout not in _ZERO_PAD_CHANNEL:
        return x
    if slot > 1:
        raise ValueError(f"Zero-padding layouts take two modalities; got modality slot {slot}.")
    out = np.zeros((*x.shape[:-1], input_channels(layout)), np.float32)
    out[..., _ZERO_PAD_CHANNEL[layout][slot]] = x[..., 0]
    return out
