"""Per-modality normalisation and channel conversion (NumPy; shared by training and eval)."""

from __future__ import annotations

import dataclasses

import numpy as np

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
  """

  scale: float
  mean: tuple[float, ...]
  std: tuple[float, ...]

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)


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


def dtype_scale(dtype) -> float:
  return float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 1.0


def fit_normalization(
    images: np.ndarray, channels: int, kind: str, max_images: int = 2000
) -> Normalization:
  """Statistics for one modality's training images.

  Args:
    images: [N, H, W, C] uint8/uint16 training images of one modality.
    channels: channels of the network input.
    kind: 'dataset' (statistics of these images, from at most `max_images` evenly spaced
      ones) or 'imagenet' (torchvision's statistics, for pretrained weights).
  """
  scale = dtype_scale(images.dtype)
  if kind == "imagenet":
    if channels == 3:
      return Normalization(scale, IMAGENET_MEAN, IMAGENET_STD)
    return Normalization(scale, (float(np.mean(IMAGENET_MEAN)),), (float(np.mean(IMAGENET_STD)),))
  if kind != "dataset":
    raise ValueError(f"config.data.normalization={kind!r}; expected 'dataset' or 'imagenet'.")
  step = max(1, len(images) // max_images)
  sample = convert_channels(images[::step], channels) / scale
  mean = sample.mean(axis=(0, 1, 2))
  std = np.maximum(sample.std(axis=(0, 1, 2)), 1e-3)
  return Normalization(scale, tuple(map(float, mean)), tuple(map(float, std)))


def normalize(images: np.ndarray, norm: Normalization, channels: int) -> np.ndarray:
  """[N, H, W, C] stored images -> [N, H, W, channels] float32 network input."""
  x = convert_channels(images, channels) / norm.scale
  return (x - np.asarray(norm.mean, np.float32)) / np.asarray(norm.std, np.float32)
