"""Shared pieces of the manual-download re-id builders (SYSU-MM01, RegDB, BIWI, RobotPKU).

Every builder yields examples with the features of the dataset conventions
(docs/datasets.md):

  image       tfds.features.Image, RGB (None, None, 3) uint8; depth (None, None, 1) uint16
              (16-bit distributions) or uint8 (8-bit distributions, kept as distributed);
              infrared / thermal (None, None, 1) uint8
  modality    Text   'rgb' | 'depth' | 'infrared' | 'thermal'
  person_id   int32  the dataset's own identity number
  camera_id   int32
  frame_id    Text   key shared by an RGB frame and its simultaneous depth / thermal frame, '' if none
  file_index  int32  1-based position of the file among its (camera, person) files in file-name order
  filename    Text   path relative to the manual folder

The files of the manual folder (images, listings, split id files, `ManualDataError`) are
read by `jaxreid.datasets.manual_files`; their names are re-exported here.

Importing this module imports `tensorflow_datasets` but not TensorFlow.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import re
import sys
from collections.abc import Sequence

import numpy as np
import tensorflow_datasets as tfds

from jaxreid import log_filters
from jaxreid.config import choices
from jaxreid.datasets.manual_files import (
    IMAGE_SUFFIXES,
    SPLIT_FIX,
    ManualDataError,
    UnreadableImageError,
    check_distinct,
    convert_mode,
    encode_image_file,
    encode_jpeg,
    encode_png,
    file_positions,
    list_images,
    parse_id_mat,
    parse_id_text,
    parse_path_label_index,
    relative,
)

MODALITIES = choices.MODALITIES

# Stored-image target per (modality, dtype): PIL mode and channels.
_PIL_MODE = {("rgb", "uint8"): "RGB", ("depth", "uint16"): "I;16"}
for _m in ("depth", "infrared", "thermal"):
    _PIL_MODE[(_m, "uint8")] = "L"

LOG = logging.getLogger("jaxreid.datasets")

# Keys of info.metadata (metadata.json) that record where a prepared dataset came from.
SOURCE_MANUAL_DIR = "manual_dir"
SOURCE_BUILDER_VERSION = "builder_version"


def features(
    modality: str, dtype: str = "uint8", *, encoding_format: str | None = None
) -> tfds.features.FeaturesDict:
    """The conventional feature dict for one modality; `dtype` of the stored image, and its
    `encoding_format` in the TFRecords (None: TFDS's default for the dtype)."""
    if (modality, dtype) not in _PIL_MODE:
        raise ValueError(
            f"(modality, dtype)=({modality!r}, {dtype!r}); expected one of {sorted(_PIL_MODE)}"
        )
    channels = 3 if modality == "rgb" else 1
    return tfds.features.FeaturesDict(
        {
            "image": tfds.features.Image(
                shape=(None, None, channels), dtype=np.dtype(dtype), encoding_format=encoding_format
            ),
            "modality": tfds.features.Text(),
            "person_id": np.int32,
            "camera_id": np.int32,
            "frame_id": tfds.features.Text(),
            "file_index": np.int32,
            "filename": tfds.features.Text(),
        }
    )


@dataclasses.dataclass(eq=False)
class ReidConfig(tfds.core.BuilderConfig):
    """One modality (and source layout) of a dataset.

    modality: 'rgb' | 'depth' | 'infrared' | 'thermal'.
    image_dtype: dtype of the stored image ('uint8' or, for 16-bit depth, 'uint16').
    layout: which on-disk layout of the manual folder the config reads.
    """

    modality: str = "rgb"
    image_dtype: str = "uint8"
    layout: str = "distributed"


class LocalDatasetInfo(tfds.core.DatasetInfo):
    """DatasetInfo that never asks the TFDS bucket for pre-computed metadata.

    A builder constructed before its data exists calls `initialize_from_bucket`, which in
    tensorflow-datasets 4.9 makes a temporary directory *before* looking on the bucket and
    never removes it: one empty /tmp/tmp*tfds per construction, hundreds over a test run.
    None of our datasets is on the bucket, so there is nothing to fetch.
    """

    def initialize_from_bucket(self) -> None:
        return None


class ReidBuilder(
    log_filters.QuietTfdsBuild, tfds.core.GeneratorBasedBuilder, skip_registration=True
):
    """Base of the four builders: manual-folder checks, image reading, skip reporting.

    Args (besides those of tfds.core.DatasetBuilder):
      skip_unreadable: if True, unreadable or truncated images are skipped instead of
        failing the build; how many and which are logged and stored in
        `builder.info.metadata['skipped_files']` ([{'path', 'reason'}]).
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    DESCRIPTION = ""
    CITATION = ""
    HOMEPAGE = ""
    LAYOUT_HELP = ""  # one paragraph: the folder layout the builder expects.

    def __init__(self, *, skip_unreadable: bool = False, **kwargs):
        self._skip_unreadable = bool(skip_unreadable)
        self.skipped_files: list[dict] = []
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        cfg = self.builder_config
        return LocalDatasetInfo(
            builder=self,
            description=self.DESCRIPTION,
            features=features(cfg.modality, cfg.image_dtype),
            homepage=self.HOMEPAGE,
            citation=self.CITATION,
            metadata=tfds.core.MetadataDict(),
            # Keep the source order: SYSU's gallery permutations index per-camera file order,
            # and pairs / file_index stay easy to audit.
            disable_shuffling=True,
        )

    # ---- manual folder -------------------------------------------------------------------

    def manual_folder(self, dl_manager) -> pathlib.Path:
        """The manual folder, or ManualDataError naming it and the expected layout."""
        path = getattr(dl_manager, "_manual_dir", None)
        try:
            folder = pathlib.Path(os.fspath(dl_manager.manual_dir))
        except AssertionError:
            raise ManualDataError(
                f"Manual folder {path} for dataset '{self.name}' does not exist or is empty. "
                f"Expected: {self.LAYOUT_HELP} Fix: put the extracted dataset there, or pass its "
                f"location with `python -m jaxreid.datasets.{self.name} --manual_dir=...` or "
                "tfds.download.DownloadConfig(manual_dir=...)."
            ) from None
        # Recorded in the prepared folder's metadata.json, so that a run asking for another
        # manual folder is refused instead of silently reusing this build
        # (jaxreid.data.sources.check_prepared).
        self.info.metadata[SOURCE_MANUAL_DIR] = os.path.realpath(folder)
        self.info.metadata[SOURCE_BUILDER_VERSION] = str(self.version)
        return folder

    def layout_error(self, root: pathlib.Path, problem: str) -> ManualDataError:
        """A ManualDataError for a wrong layout, with a hint when the data is one level down."""
        hint = ""
        subdirs = [p for p in sorted(root.iterdir()) if p.is_dir()] if root.is_dir() else []
        if len(subdirs) == 1:
            hint = f" (The folder holds only {subdirs[0].name}/: is the data inside it? Then use --manual_dir={subdirs[0]}.)"
        return ManualDataError(
            f"{problem} Expected in the manual folder {root}: {self.LAYOUT_HELP}{hint} "
            f"Fix: arrange the files as described in datasets/{self.name}/README.md."
        )

    # ---- images ----------------------------------------------------------------------------

    def read_image(self, path: pathlib.Path, root: pathlib.Path) -> bytes | None:
        """Encoded image bytes for the config's modality, or None if skipped (unreadable)."""
        cfg = self.builder_config
        try:
            return encode_image_file(path, _PIL_MODE[(cfg.modality, cfg.image_dtype)])
        except UnreadableImageError as e:
            return self.unreadable(e, root)

    def unreadable(self, error: UnreadableImageError, root: pathlib.Path):
        """Records a skipped file (skip_unreadable=True) or raises the error."""
        if not self._skip_unreadable:
            raise error
        rel = relative(pathlib.Path(error.path), root)
        self.skipped_files.append({"path": rel, "reason": error.reason})
        self.info.metadata["skipped_files"] = list(self.skipped_files)
        LOG.warning("%s: skipping unreadable %s (%s)", self.name, rel, error.reason)
        return None

    def report_skipped(self, split: str, num_written: int) -> None:
        """Logs the files skipped while generating `split`; an empty split is an error."""
        self.info.metadata["skipped_files"] = list(self.skipped_files)
        new = self.skipped_files[getattr(self, "_num_reported", 0) :]
        self._num_reported = len(self.skipped_files)
        if new:
            LOG.warning(
                "%s/%s, split %s: skipped %d unreadable file(s): %s (all skipped files: "
                "info.metadata['skipped_files'])",
                self.name,
                self.builder_config.name,
                split,
                len(new),
                ", ".join(s["path"] for s in new),
            )
        if num_written == 0:
            why = (
                f"all its images were skipped as unreadable ({len(new)})"
                if new
                else "none of its person ids has images in this config's folders"
            )
            raise ManualDataError(
                f"Split '{split}' of {self.name}/{self.builder_config.name} is empty: {why}. Expected at "
                "least one image per split. Fix: check the manual folder against the split files."
            )


def example(
    image: bytes,
    modality: str,
    person_id: int,
    camera_id: int,
    frame_id: str,
    file_index: int,
    filename: str,
) -> dict:
    return {
        "image": image,
        "modality": modality,
        "person_id": np.int32(person_id),
        "camera_id": np.int32(camera_id),
        "frame_id": frame_id,
        "file_index": np.int32(file_index),
        "filename": filename,
    }


# ---- the processed layout of the thesis author's code -----------------------------------------
# frhf/cross-modal-distillation-reidentification (open-reid based): <dataset>/images/ holds
# <pid, 8 digits>_<camera, 2 digits>_<index, 4 digits>.jpg, with identical file names in the
# RGB folder (e.g. biwi/) and the depth folder (e.g. biwi_depth/), plus meta.json / splits.json.

PROCESSED_NAME = re.compile(r"^(?P<pid>\d{8})_(?P<cam>\d{2})_(?P<idx>\d{4})\.jpg$")


def processed_names(folder: pathlib.Path) -> list[str]:
    """File names of a processed `<dataset>/images` folder, checked against the pattern."""
    with os.scandir(folder) as it:
        names = sorted(e.name for e in it if e.is_file() and not e.name.startswith("."))
    bad = [n for n in names if not PROCESSED_NAME.match(n)]
    if bad:
        raise ManualDataError(
            f"Files {bad[:5]} in {folder} do not match <pid 8 digits>_<camera 2 digits>_<index 4 digits>.jpg "
            "(e.g. 00000012_01_0003.jpg), the layout of the thesis author's code. Fix: rename or remove them."
        )
    if not names:
        raise ManualDataError(
            f"Folder {folder} has no images; expected <pid>_<camera>_<index>.jpg files. "
            "Fix: copy the dataset's images into it."
        )
    return names


class ProcessedLayoutMixin:
    """Reading <rgb folder>/images and <depth folder>/images (identical file names)."""

    PROCESSED_FOLDERS = {"rgb": "", "depth": ""}

    def processed_folders(
        self, root: pathlib.Path
    ) -> tuple[pathlib.Path, pathlib.Path | None, list[str], list[str]]:
        """(own images folder, other images folder or None, own names, other names)."""
        modality = self.builder_config.modality
        own = root / self.PROCESSED_FOLDERS[modality] / "images"
        other = root / self.PROCESSED_FOLDERS["depth" if modality == "rgb" else "rgb"] / "images"
        if not own.is_dir():
            raise self.layout_error(root, f"Missing folder {own}.")
        own_names = processed_names(own)
        other_names = processed_names(other) if other.is_dir() else []
        return own, (other if other.is_dir() else None), own_names, other_names

    def generate_processed(
        self, root: pathlib.Path, folder: pathlib.Path, entries, other_names, split
    ):
        """Examples of [(file name, person_id, camera_id)] in the given order.

        file_index: 1-based position among the files of the same <pid>_<camera> prefix;
        frame_id: the file stem when the other modality has the same file name, else ''.
        """
        modality = self.builder_config.modality
        other = set(other_names)
        groups: dict[str, list[str]] = {}
        for name, _, _ in entries:
            groups.setdefault(name[:11], []).append(name)
        positions = {n: i + 1 for names in groups.values() for i, n in enumerate(sorted(names))}
        key = 0
        for name, person_id, camera_id in entries:
            path = folder / name
            image = self.read_image(path, root)
            if image is None:
                continue
            frame_id = name[:-4] if name in other else ""
            yield (
                key,
                example(
                    image,
                    modality,
                    person_id,
                    camera_id,
                    frame_id,
                    positions[name],
                    relative(path, root),
                ),
            )
            key += 1
        self.report_skipped(split, key)


def design_test_split(ids_of_entries, design_ids, test_ids, what: str) -> None:
    """Raises if an id is in neither list of the thesis split."""
    known = set(design_ids) | set(test_ids)
    unknown = sorted(set(ids_of_entries) - known)
    if unknown:
        raise ManualDataError(
            f"{what}: ids {unknown[:10]} are not in the design or test list of Hafner 2018, appendix B "
            f"(ids {min(known)}..{max(known)}). Expected only the dataset's identities. Fix: check the folder."
        )


# ---- command line ---------------------------------------------------------------------------------


def build_main(builder_cls, argv=None, default_configs: Sequence[str] | None = None) -> int:
    """`python -m jaxreid.datasets.<name>`: builds configs of `builder_cls` from a manual folder.

    (The `tfds build` command of TFDS 4.9.10 needs apache_beam at import; this does not.)
    """
    import argparse

    names = [c.name for c in builder_cls.BUILDER_CONFIGS]
    parser = argparse.ArgumentParser(
        prog=f"python -m jaxreid.datasets.{builder_cls.name}",
        description=f"Build the TFDS dataset '{builder_cls.name}' from its manually downloaded folder.",
    )
    parser.add_argument("--manual_dir", required=True, help="folder with the extracted dataset")
    parser.add_argument(
        "--data_dir", default=os.path.join("~", "tensorflow_datasets"), help="TFDS data_dir"
    )
    parser.add_argument(
        "--config",
        action="append",
        choices=names,
        help=f"config(s) to build (repeatable); default: {', '.join(default_configs or names)}",
    )
    parser.add_argument(
        "--skip_unreadable",
        action="store_true",
        help="skip unreadable / truncated images and list them instead of failing",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    tfds.disable_progress_bar()
    for config in args.config or list(default_configs or names):
        builder = builder_cls(
            config=config,
            data_dir=os.path.expanduser(args.data_dir),
            skip_unreadable=args.skip_unreadable,
        )
        try:
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(
                    manual_dir=os.path.expanduser(args.manual_dir)
                )
            )
        except ManualDataError as e:
            print(f"error: {builder_cls.name}/{config}: {e}", file=sys.stderr)
            return 1
        counts = {k: v.num_examples for k, v in builder.info.splits.items()}
        print(f"{builder_cls.name}/{config} -> {builder.data_dir}: {counts}")
        skipped = builder.info.metadata.get("skipped_files") or []
        if skipped:
            print(
                f"  skipped {len(skipped)} unreadable file(s): "
                + ", ".join(s["path"] for s in skipped)
            )
    return 0


__all__ = [
    "IMAGE_SUFFIXES",
    "LOG",
    "MODALITIES",
    "PROCESSED_NAME",
    "SPLIT_FIX",
    "LocalDatasetInfo",
    "ManualDataError",
    "ProcessedLayoutMixin",
    "ReidBuilder",
    "ReidConfig",
    "UnreadableImageError",
    "build_main",
    "check_distinct",
    "convert_mode",
    "design_test_split",
    "encode_image_file",
    "encode_jpeg",
    "encode_png",
    "example",
    "features",
    "file_positions",
    "list_images",
    "parse_id_mat",
    "parse_id_text",
    "parse_path_label_index",
    "processed_names",
    "relative",
]
