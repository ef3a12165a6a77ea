"""Files of a manually downloaded dataset folder: images, listings and split id files.

Reading and re-encoding images for TFDS (`encode_image_file`: bit-exact JPEGs, anything
else as lossless PNG), listing image files in file-name order, and parsing the split id
files (SYSU-MM01 `exp/*_id.txt` and `.mat`). Errors are `ManualDataError` (an image that
cannot be decoded: `UnreadableImageError`), naming the file and the fix. Imports PIL and
NumPy (SciPy for `.mat`), neither TensorFlow nor TFDS; the builders' shared TFDS pieces are
in `jaxreid.datasets.common`, which re-exports these names.
"""

from __future__ import annotations

import io
import os
import pathlib
import re
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image as PILImage


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


def parse_path_label_index(
    path: pathlib.Path,
    root: pathlib.Path,
    *,
    kind: str,
    example_line: str,
    label_pattern: str,
    person_of,
    fix: str,
    missing_image_fix: str,
) -> list[tuple[str, int, int, object]]:
    """The lines 'relative/path label' of an index file (LLCM idx/train_*.txt, RegDB
    idx/*_<trial>.txt), checked line by line, in file order.

    Args:
      path: the index file (exists).
      root: the manual folder the paths are relative to.
      kind: 'index', 'trial': the file's name in messages.
      example_line: e.g. 'relative/path.jpg label', for the line-format error.
      label_pattern: regular expression a label must match in full (e.g. r'\\d+').
      person_of: rel -> (person id, extra) for a path in the dataset's layout, or None
        with the expected layout as second item: (None, 'a path .../cam<c>/<pid>/<file>').
      fix: appended to every line error (how to restore the file).
      missing_image_fix: appended when a listed image does not exist.

    Returns:
      [(relative path, person id, label, extra)]; '\\' and a leading './' normalised.

    Raises:
      ManualDataError: naming the file, the line number and text: not two fields or a
        label not matching `label_pattern`, a path outside the layout, a path listed twice,
        a missing image, labels and person ids not one-to-one, or no line at all.
    """
    entries, label_of, pid_of, seen = [], {}, {}, set()
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        where = f"{path}, line {lineno} ({line.strip()!r})"
        if len(parts) != 2 or not re.fullmatch(label_pattern, parts[1]):
            raise ManualDataError(f"{where}: expected '{example_line}' with an integer label.{fix}")
        rel = parts[0].replace("\\", "/").removeprefix("./")
        pid, extra = person_of(rel)
        if pid is None:
            raise ManualDataError(f"{where}: expected {extra}.{fix}")
        if rel in seen:
            raise ManualDataError(f"{where}: {rel} is listed twice; expected each image once.{fix}")
        seen.add(rel)
        if not (root / rel).is_file():
            raise ManualDataError(
                f"{where}: image {root / rel} does not exist. Expected the files the {kind} "
                f"lists. {missing_image_fix}"
            )
        label = int(parts[1])
        # Both look-ups always (an `or` would skip the second, which the message reads).
        known_label, known_pid = label_of.setdefault(pid, label), pid_of.setdefault(label, pid)
        if known_label != label or known_pid != pid:
            raise ManualDataError(
                f"{where}: label {label} for person folder {pid}, but the file also pairs label "
                f"{known_label} with person {pid} / label {label} with person {known_pid}; "
                f"expected labels and person folders to correspond one-to-one.{fix}"
            )
        entries.append((rel, pid, label, extra))
    if not entries:
        raise ManualDataError(
            f"{kind.capitalize()} file {path} is empty; expected one 'path label' line per "
            f"image.{fix}"
        )
    return entries
