"""The one-file .npz format of `Gallery.save` and `SearchIndex.save`: writing and checked reading.

Both write plain arrays (no pickles) with a 'format_version' key, atomically: a temporary
file in the target's folder, then `os.replace`, so a reader never sees half a file and an
interrupted save leaves the old one. Reading checks, before any array is used, that the
file exists, is a .npz archive, holds the required keys and a known format version; every
error names the file.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Mapping, Sequence

import numpy as np


def write(path, arrays: Mapping[str, np.ndarray], *, what: str) -> str:
    """Writes `arrays` to one .npz at `path`, atomically; returns `path` as a string.

    Args:
      path: the file (kept as given: no '.npz' is appended).
      arrays: key -> array (plain dtypes: a reader loads with allow_pickle=False).
      what: 'gallery', 'index': names the temporary file ('.tmp-gallery-...').
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".tmp-{what}-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        umask = os.umask(0)  # mkstemp makes the file 0600; give it the usual mode
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def read(
    path, *, what: str, writer: str, required: Sequence[str], versions: Sequence[int]
) -> dict[str, np.ndarray]:
    """Every array of a .npz written by `write`, after checking its keys and version.

    Args:
      path: the file.
      what: 'gallery', 'index': the file's kind in error messages.
      writer: the function that writes such files ('Gallery.save'), for error messages.
      required: keys that must be present ('format_version' among them).
      versions: the readable values of 'format_version'.

    Returns:
      {key: array} of all keys in the file.

    Raises:
      FileNotFoundError: no file at `path`.
      ValueError: not a .npz archive, a required key missing, an array that needs pickle,
        or an unknown format_version; the message names the file and the key.
    """
    path = os.fspath(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} file {path!r} does not exist") from None
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ValueError(
            f"{what} file {path!r} is not a .npz archive written by {writer}: {e}"
        ) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(  # noqa: TRY004 (the file's content is wrong, not an argument's type)
            f"{what} file {path!r} holds a single array, expected a .npz archive with "
            f"keys {list(required)}"
        )
    with archive:
        missing = [key for key in required if key not in archive.files]
        if missing:
            raise ValueError(
                f"{what} file {path!r} is missing key {missing[0]!r} (has "
                f"{sorted(archive.files)}; expected {list(required)})"
            )
        try:
            data = {key: archive[key] for key in archive.files}
        except ValueError as e:  # e.g. an object array that would need pickle
            raise ValueError(f"{what} file {path!r}: unreadable array: {e}") from None
    version = int(data["format_version"])
    if version not in versions:
        raise ValueError(
            f"{what} file {path!r}: format_version {version}, expected one of {tuple(versions)}"
        )
    return data
