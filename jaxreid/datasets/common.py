"""Shared pieces of the manual-download re-id builders (SYSU-MM01, RegDB, BIWI, RobotPKU).

Every builder yields examples with the features of the dataset conventions
(README, "Datasets"):

  image       tfds.features.Image, RGB (None, None, 3) uint8; depth (None, None, 1) uint16
              (16-bit distributions) or uint8 (8-bit distributions, kept as distributed);
              infrared / thermal (None, None, 1) uint8
  modality    Text   'rgb' | 'depth' | 'infrared' | 'thermal'
  person_id   int32  the dataset's own identity number
  camera_id   int32
  frame_id    Text   key shared by an RGB frame and its simultaneous depth / thermal frame, '' if none
  file_index  int32  1-based position of the file among its (camera, person) files in file-name order
  filename    Text   path relative to the manual folder

Importing this module imports `tensorflow_datasets` but not TensorFlow.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import pathlib
import re
import sys
from typing import Iterable, Sequence

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image as PILImage

MODALITIES = ("rgb", "depth", "infrared", "thermal")

# Stored-image target per (modality, dtype): PIL mode and channels.
_PIL_MODE = {("rgb", "uint8"): "RGB", ("depth", "uint16"): "I;16"}
for _m in ("depth", "infrared", "thermal"):
    _PIL_MODE[(_m, "uint8")] = "L"

LOG = logging.getLogger("jaxreid.datasets")


class ManualDataError(ValueError):
    """The manual folder of a dataset is missing, incomplete or not in the expected layout."""


class UnreadableImageError(ManualDataError):
    """An image file cannot be read or decoded (missing, truncated, not an image)."""

    def __init__(self, path: os.PathLike | str, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(
            f"Cannot read image {self.path}: {reason}. Expected a complete image file as "
            "distributed. Fix: restore this file from the original archive, or build with "
            "--skip_unreadable (python -m jaxreid.datasets.<name>) / skip_unreadable=True "
            "(tfds.builder(..., skip_unreadable=True)) to skip unreadable images; skipped files "
            "are listed in the dataset's metadata ('skipped_files')."
        )


def features(modality: str, dtype: str = "uint8") -> tfds.features.FeaturesDict:
    """The conventional feature dict for one modality; `dtype` of the stored image."""
    if (modality, dtype) not in _PIL_MODE:
        raise ValueError(
            f"(modality, dtype)=({modality!r}, {dtype!r}); expected one of {sorted(_PIL_MODE)}"
        )
    channels = 3 if modality == "rgb" else 1
    return tfds.features.FeaturesDict(
        {
            "image": tfds.features.Image(shape=(None, None, channels), dtype=np.dtype(dtype)),
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


class ReidBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
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
            return pathlib.Path(os.fspath(dl_manager.manual_dir))
        except AssertionError:
            raise ManualDataError(
                f"Manual folder {path} for dataset '{self.name}' does not exist or is empty. "
                f"Expected: {self.LAYOUT_HELP} Fix: put the extracted dataset there, or pass its "
                f"location with `python -m jaxreid.datasets.{self.name} --manual_dir=...` or "
                "tfds.download.DownloadConfig(manual_dir=...)."
            ) from None

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


def encode_image_file(path: pathlib.Path, mode: str) -> bytes:
    """Reads and fully decodes `path`; returns bytes TFDS stores for a PIL `mode` image.

    A JPEG already in `mode` is stored unchanged (bit-exact, no re-encoding). Anything else
    (BMP, PGM, PNG, a 3-channel JPEG for a 1-channel modality...) is converted to `mode`
    and stored as PNG, which is lossless with respect to the decoded pixels. Gray images
    saved with three equal channels convert exactly (PIL's luma weights sum to 1).

    Raises:
      UnreadableImageError: the file is missing, truncated or not an image.
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UnreadableImageError(path, f"cannot open the file ({e.strerror or e})") from None
    try:
        with PILImage.open(io.BytesIO(data)) as im:
            im.load()  # full decode: detects truncated files
            if im.width == 0 or im.height == 0:
                raise UnreadableImageError(path, "the image is empty (0 pixels)")
            if im.format == "JPEG" and im.mode == mode:
                return data
            return encode_png(convert_mode(im, mode, path))
    except UnreadableImageError:
        raise
    except (OSError, SyntaxError, ValueError, PILImage.DecompressionBombError) as e:
        what = "the file is truncated" if "truncat" in str(e).lower() else "not a decodable image"
        raise UnreadableImageError(path, f"{what} ({e})") from None


def convert_mode(im: PILImage.Image, mode: str, path: pathlib.Path) -> PILImage.Image:
    """Converts a decoded image to `mode` ('RGB', 'L' or 'I;16')."""
    if im.mode == mode:
        return im
    if mode == "I;16":
        if im.mode in ("I;16B", "I;16L", "I"):
            arr = np.asarray(im)
            if arr.min() < 0 or arr.max() > 65535:
                raise UnreadableImageError(path, f"depth values outside 0..65535 (mode {im.mode})")
            return PILImage.fromarray(arr.astype(np.uint16))
        raise UnreadableImageError(path, f"expected a 16-bit depth image, found PIL mode {im.mode}")
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        raise UnreadableImageError(path, f"expected an 8-bit image, found PIL mode {im.mode}")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA").convert("RGB")  # drop alpha
    return im.convert(mode)


def encode_png(im_or_array) -> bytes:
    im = im_or_array if isinstance(im_or_array, PILImage.Image) else PILImage.fromarray(im_or_array)
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=1)  # ~as small as level 6, 3x faster
    return buf.getvalue()


def encode_jpeg(im: PILImage.Image, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


# ---- file listing helpers ---------------------------------------------------------------------

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff")


def list_images(
    folder: pathlib.Path, suffixes: Sequence[str] = IMAGE_SUFFIXES
) -> list[pathlib.Path]:
    """Image files of `folder` (not recursive) in file-name order."""
    with os.scandir(folder) as it:
        names = sorted(
            e.name for e in it if e.is_file() and os.path.splitext(e.name)[1].lower() in suffixes
        )
    return [folder / n for n in names]


def file_positions(names: Iterable[str]) -> dict[str, int]:
    """1-based position of each name in file-name order (the `file_index` feature)."""
    return {n: i + 1 for i, n in enumerate(sorted(names))}


def relative(path: pathlib.Path, root: pathlib.Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


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


_INT_LIST = re.compile(r"[-+]?\d+")
SPLIT_FIX = (
    " Fix: restore the file from the dataset's exp/ folder (or the evaluation code's data_split/)."
)


def parse_id_text(path: pathlib.Path) -> list[int]:
    """Ids of a text file of comma/space separated integers (SYSU-MM01 exp/*_id.txt)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ManualDataError(
            f"Cannot read split file {path}: {e}. Expected comma-separated person ids.{SPLIT_FIX}"
        ) from None
    tokens = [t for t in re.split(r"[,\s]+", text.strip()) if t]
    bad = [t for t in tokens if not _INT_LIST.fullmatch(t)]
    if bad or not tokens:
        raise ManualDataError(
            f"Split file {path} has {'non-integer entries ' + repr(bad[:5]) if bad else 'no ids'}; "
            "expected one line of comma-separated person ids, e.g. '1,2,4,5'. Fix: restore the file "
            "from the dataset's exp/ folder."
        )
    return [int(t) for t in tokens]


def parse_id_mat(path: pathlib.Path) -> list[int]:
    """Ids of an official SYSU-MM01 split .mat (MATLAB v5, variable `id`, 1 x N)."""
    import scipy.io  # only needed for the .mat variant

    try:
        mat = scipy.io.loadmat(os.fspath(path))
    except Exception as e:  # scipy raises several types for corrupt files
        raise ManualDataError(
            f"Cannot read split file {path}: {e}. Expected a MATLAB file with variable 'id'."
            f"{SPLIT_FIX}"
        ) from None
    if "id" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise ManualDataError(
            f"Split file {path} has variables {keys}; expected a variable 'id' (1 x N person ids)."
            f"{SPLIT_FIX}"
        )
    ids = np.asarray(mat["id"]).ravel()
    if ids.size == 0 or not np.all(np.equal(np.mod(ids, 1), 0)):
        raise ManualDataError(
            f"Split file {path}: variable 'id' must be a non-empty list of integer person ids."
            f"{SPLIT_FIX}"
        )
    return [int(v) for v in ids]


def check_distinct(ids: Sequence[int], path: pathlib.Path) -> None:
    seen, dup = set(), set()
    for v in ids:
        (dup if v in seen else seen).add(v)
    if dup:
        raise ManualDataError(
            f"Split file {path} lists ids {sorted(dup)[:10]} more than once; expected distinct ids."
            f"{SPLIT_FIX}"
        )


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
