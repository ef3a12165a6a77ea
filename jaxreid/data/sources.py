"""TFDS datasets -> in-memory ImageSets at the network's input size."""

from __future__ import annotations

import logging
import os
import re

import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from jaxreid import datasets
from jaxreid.data.image_set import ImageSet
from jaxreid.datasets import common  # What a prepared dataset records of its source.

DEFAULT_DATA_DIR = os.path.join("~", "tensorflow_datasets")


def data_dir(data_config: ml_collections.ConfigDict) -> str:
    return os.path.expanduser(data_config.data_dir or DEFAULT_DATA_DIR)


def synthetic_config(options: ml_collections.ConfigDict):
    """The generator's SyntheticConfig with the config's non-zero fields overriding defaults."""
    from jaxreid.datasets.synthetic import generation

    overrides = {k: v for k, v in options.items() if v}
    overrides["seed"] = options.seed
    return generation.SyntheticConfig(**overrides)


class DatasetError(Exception):
    """A dataset that cannot be used as it is; the message names the dataset, the folder or
    file at fault and the fix. `python -m jaxreid.main` prints it as one `Error:` line."""


class DatasetMissingError(DatasetError, FileNotFoundError):
    """A real dataset is neither prepared in the data directory nor given as manual data."""


class PreparedDatasetError(DatasetError):
    """A prepared dataset (a TFDS version folder) that is corrupt, half-written, or was
    prepared from another manual folder or builder version than the config asks for."""


def _delete_to_rebuild(version_dir: str) -> str:
    return (
        f"Fix: delete {version_dir} so that it is rebuilt from config.data.manual_dir "
        "(--config.data.manual_dir=PATH of the extracted dataset)."
    )


def check_prepared(builder, data_config: ml_collections.ConfigDict) -> None:
    """Refuses a prepared version folder that cannot be what the config asks for: written
    only in part (no dataset_info.json, or no splits), or prepared from another manual folder
    or builder version than `data_config.manual_dir` and the builder's. Call it only when the
    version folder exists.

    Raises:
      PreparedDatasetError: naming the dataset, the version folder and the fix.
    """
    version_dir = os.fspath(builder.data_dir)
    name = f"{builder.name}/{builder.builder_config.name}" if builder.builder_config else builder.name
    info_file = os.path.join(version_dir, "dataset_info.json")
    missing = not tf.io.gfile.exists(info_file)
    if missing or not list(builder.info.splits):
        what = "is missing" if missing else "lists no splits"
        raise PreparedDatasetError(
            f"The prepared dataset {name} in {version_dir} was written only in part (a build "
            f"that stopped, or a copy that did not finish): {info_file} {what}. "
            f"{_delete_to_rebuild(version_dir)}"
        )
    if data_config.name == "synthetic" or not data_config.manual_dir:
        return  # The synthetic set has no manual folder; '' uses what is prepared.
    wanted = os.path.realpath(os.path.expanduser(data_config.manual_dir))
    metadata = builder.info.metadata or {}
    recorded = metadata.get(common.SOURCE_MANUAL_DIR)
    if not os.path.isdir(wanted):
        source = f" from {recorded}" if recorded else ""
        raise PreparedDatasetError(
            f"config.data.manual_dir={data_config.manual_dir!r}: no such folder. The dataset "
            f"{name} is prepared in {version_dir}{source}; to use it, set "
            "--config.data.manual_dir='' (or to the folder it was built from)."
        )
    if recorded is None:
        logging.warning(
            "The prepared dataset %s in %s does not record the manual folder it was built "
            "from (prepared by an older jaxreid); using it for config.data.manual_dir=%s. "
            "Delete the folder to rebuild it from there.",
            name,
            version_dir,
            data_config.manual_dir,
        )
    elif os.path.realpath(recorded) != wanted:
        raise PreparedDatasetError(
            f"config.data.manual_dir={data_config.manual_dir!r}: the dataset {name} in "
            f"{version_dir} was prepared from another folder, {recorded}. Set "
            f"--config.data.manual_dir={recorded!r} (or '') to use it, or delete {version_dir} "
            f"so that it is rebuilt from {wanted}."
        )
    built_by = metadata.get(common.SOURCE_BUILDER_VERSION)
    if built_by is not None and str(built_by) != str(builder.version):
        raise PreparedDatasetError(
            f"The prepared dataset {name} in {version_dir} was written by builder version "
            f"{built_by}; this jaxreid's builder is {builder.version}. "
            f"{_delete_to_rebuild(version_dir)}"
        )


def prepared_builder(data_config: ml_collections.ConfigDict, modality: str):
    """The TFDS builder of `data_config.name` for one modality, built if it is not yet.

    Raises:
      DatasetMissingError: a manually downloaded dataset is not prepared and
        `data_config.manual_dir` is not set (nothing is left in the data directory).
      PreparedDatasetError: the prepared version folder is half-written or was prepared
        from another manual folder (`check_prepared`).
    """
    kwargs = {}
    if data_config.name == "synthetic":
        kwargs["synthetic_config"] = synthetic_config(data_config.synthetic)
    config_name = f"{modality}_{data_config.layout}" if data_config.layout else modality
    root = data_dir(data_config)
    existed = _existing_dirs(os.path.join(root, data_config.name))
    builder = datasets.builder(data_config.name, modality=config_name, data_dir=root, **kwargs)
    # TFDS reuses any existing version folder, complete or not: check it first.
    if tf.io.gfile.exists(builder.data_dir):
        check_prepared(builder, data_config)
    try:
        if data_config.name != "synthetic" and not data_config.manual_dir:
            if not tf.io.gfile.exists(os.path.join(builder.data_dir, "dataset_info.json")):
                raise DatasetMissingError(
                    f"The {data_config.name} dataset ({config_name}) is not prepared in {root}. "
                    f"Download it (datasets/{data_config.name}/README.md says where) and pass "
                    "its folder as --config.data.manual_dir=PATH."
                )
        download_config = tfds.download.DownloadConfig(
            manual_dir=os.path.expanduser(data_config.manual_dir)
            if data_config.manual_dir
            else None
        )
        builder.download_and_prepare(download_config=download_config)
    except Exception:
        _remove_new_empty_dirs(os.path.join(root, data_config.name), existed)
        raise
    return builder


def _existing_dirs(top: str) -> set[str]:
    return {dirpath for dirpath, _, _ in os.walk(top)}


def _remove_new_empty_dirs(top: str, existed: set[str]) -> None:
    """Removes the empty folders under `top` (and `top`) that a failed build created."""
    for dirpath, _, _ in sorted(os.walk(top, topdown=False), key=lambda w: -len(w[0])):
        if dirpath not in existed and not os.listdir(dirpath):
            os.rmdir(dirpath)


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

    columns = {
        k: [] for k in ("image", "person_id", "camera_id", "frame_id", "file_index", "filename")
    }
    try:
        ds = builder.as_dataset(split=split, shuffle_files=False)
        ds = ds.map(resize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(512)
        for batch in tfds.as_numpy(ds):
            for k in columns:
                columns[k].append(batch[k])
    except (
        tf.errors.DataLossError,  # a record's length or checksum is wrong (flipped byte, cut)
        tf.errors.NotFoundError,  # a shard is missing
        tf.errors.FailedPreconditionError,  # fewer records than dataset_info.json lists
        tf.errors.InvalidArgumentError,  # a record that does not parse or decode
    ) as e:
        raise _unreadable_split(builder, split, e) from None
    columns = {k: np.concatenate(v) for k, v in columns.items()}
    decode = lambda a: np.array(
        [s.decode() if isinstance(s, bytes) else s for s in a], dtype=object
    )
    return ImageSet(
        modality=modality,
        images=columns["image"],
        person_ids=columns["person_id"].astype(np.int32),
        camera_ids=columns["camera_id"].astype(np.int32),
        frame_ids=decode(columns["frame_id"]),
        file_index=columns["file_index"].astype(np.int32),
        filenames=decode(columns["filename"]),
    )


def _tf_message(error: Exception) -> str:
    """TensorFlow's message without its op wrapper: 'corrupted record at 304'."""
    message = (getattr(error, "message", None) or str(error)).splitlines()[0]
    message = re.sub(r"\{\{.*?\}\}\s*", "", message)
    return re.sub(r"\s*\[Op:.*$", "", message).strip()


def _unreadable_split(builder, split: str, error: Exception) -> PreparedDatasetError:
    """The PreparedDatasetError for a split whose TFRecord files cannot be read: TensorFlow's
    own message gives a byte offset but no file, so each shard of the split is read again on
    its own (records, their checksums and their number, as dataset_info.json lists it) to
    name the broken one(s)."""
    version_dir = os.fspath(builder.data_dir)
    info = builder.info.splits[split]
    files = [os.fspath(f) for f in info.filepaths]
    broken = []
    for path, expected in zip(files, info.shard_lengths):
        if not tf.io.gfile.exists(path):
            broken.append(f"{path} (missing)")
            continue
        records = 0
        try:
            for _ in tf.data.TFRecordDataset(path):
                records += 1
        except tf.errors.OpError as e:
            broken.append(f"{path} ({type(e).__name__}: {_tf_message(e)})")
            continue
        if records != expected:  # Cut at a record boundary: every record left is intact.
            broken.append(f"{path} (truncated: {records} of its {expected} records)")
    first_line = _tf_message(error)
    where = (
        "; ".join(broken)
        if broken
        else f"one of its {len(files)} file(s), {type(error).__name__}: {first_line}"
    )
    return PreparedDatasetError(
        f"Split {split!r} of the prepared dataset {builder.info.full_name} in {version_dir} "
        f"cannot be read: {where}. The file is truncated or corrupt. "
        f"{_delete_to_rebuild(version_dir)}"
    )


def load_splits(data_config: ml_collections.ConfigDict) -> dict[str, dict[str, ImageSet]]:
    """{'train' | 'val' | 'test' [| 'query']: {modality: ImageSet}} as the config's split keys
    say ('query' when `data_config.query_split` is set).

    `data_config.val_split` names the dataset's own validation split; when it is '' (BIWI,
    RobotPKU, RegDB, which define only design/train and test identities), fold
    `data_config.fold` of a cross-validation over the training identities is held out for
    validation, drawn with `data_config.fold_seed` (Hafner 2018 §4.3.1: 3 folds).
    """
    from jaxreid.datasets import splits as dataset_splits  # NumPy only.

    modalities = tuple(data_config.modalities)
    load = lambda split: {m: load_image_set(data_config, m, split) for m in modalities}
    out = {"train": load(data_config.train_split), "test": load(data_config.test_split)}
    if data_config.query_split:  # Market-1501: queries in their own split.
        out["query"] = load(data_config.query_split)
    if data_config.val_split:
        out["val"] = load(data_config.val_split)
        return out
    design_ids = np.unique(np.concatenate([s.person_ids for s in out["train"].values()]))
    folds = dataset_splits.cross_validation_folds(
        design_ids.tolist(),
        num_folds=data_config.num_folds,
        seed=data_config.fold_seed,
        num_val_ids=data_config.num_val_ids or None,
    )
    if not 0 <= data_config.fold < len(folds):
        raise ValueError(
            f"config.data.fold={data_config.fold}; expected 0..{len(folds) - 1} "
            f"(config.data.num_folds={data_config.num_folds})."
        )
    fold = folds[data_config.fold]
    out["val"] = {m: s.with_ids(fold["val"]) for m, s in out["train"].items()}
    out["train"] = {m: s.with_ids(fold["train"]) for m, s in out["train"].items()}
    return out
