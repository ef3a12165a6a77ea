"""TFDS datasets -> in-memory ImageSets at the network's input size."""

from __future__ import annotations

import os

import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from jaxreid import datasets
from jaxreid.data.image_set import ImageSet

DEFAULT_DATA_DIR = os.path.join("~", "tensorflow_datasets")


def data_dir(data_config: ml_collections.ConfigDict) -> str:
  return os.path.expanduser(data_config.data_dir or DEFAULT_DATA_DIR)


def synthetic_config(options: ml_collections.ConfigDict):
  """The generator's SyntheticConfig with the config's non-zero fields overriding defaults."""
  from jaxreid.datasets.synthetic import generation

  overrides = {k: v for k, v in options.items() if v}
  overrides["seed"] = options.seed
  return generation.SyntheticConfig(**overrides)


def prepared_builder(data_config: ml_collections.ConfigDict, modality: str):
  """The TFDS builder of `data_config.name` for one modality, built if it is not yet."""
  kwargs = {}
  if data_config.name == "synthetic":
    kwargs["synthetic_config"] = synthetic_config(data_config.synthetic)
  builder = datasets.builder(
      data_config.name, modality=modality, data_dir=data_dir(data_config), **kwargs
  )
  download_config = tfds.download.DownloadConfig(
      manual_dir=os.path.expanduser(data_config.manual_dir) if data_config.manual_dir else None
  )
  builder.download_and_prepare(download_config=download_config)
  return builder


def load_image_set(data_config: ml_collections.ConfigDict, modality: str, split: str) -> ImageSet:
  """All images of one modality and split, resized to `data_config.image_size`.

  Images keep their stored dtype (uint16 depth stays uint16); resizing is bilinear with
  anti-aliasing, rounded back to that dtype.
  """
  builder = prepared_builder(data_config, modality)
  if split not in builder.info.splits:
    raise ValueError(
        f"Dataset {builder.info.full_name} has no split {split!r}; it has "
        f"{sorted(builder.info.splits)}."
    )
  height, width = data_config.image_size
  dtype = tf.as_dtype(builder.info.features["image"].dtype)
  limit = float(dtype.max)

  def resize(example):
    image = tf.image.resize(example["image"], (height, width), antialias=True)
    example["image"] = tf.cast(tf.clip_by_value(tf.round(image), 0.0, limit), dtype)
    return example

  ds = builder.as_dataset(split=split, shuffle_files=False)
  ds = ds.map(resize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(512)
  columns = {k: [] for k in ("image", "person_id", "camera_id", "frame_id", "file_index", "filename")}
  for batch in tfds.as_numpy(ds):
    for k in columns:
      columns[k].append(batch[k])
  columns = {k: np.concatenate(v) for k, v in columns.items()}
  decode = lambda a: np.array([s.decode() if isinstance(s, bytes) else s for s in a], dtype=object)
  return ImageSet(
      modality=modality,
      images=columns["image"],
      person_ids=columns["person_id"].astype(np.int32),
      camera_ids=columns["camera_id"].astype(np.int32),
      frame_ids=decode(columns["frame_id"]),
      file_index=columns["file_index"].astype(np.int32),
      filenames=decode(columns["filename"]),
  )
