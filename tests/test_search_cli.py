"""The search command line's pieces that need no trained run: ids from paths, open-set
answers, and image files written by jaxreid.data.image_files (read back by inference)."""

import numpy as np
import pytest

from jaxreid import search_cli
from jaxreid.data import image_files
from jaxreid.search import Gallery

PATTERN = r"cam(?P<cam>\d+)/(?P<id>\d{4})/"


def test_pattern_reads_folders_above_the_gallery():
    """A single-camera gallery folder: the camera is in the folder given as --gallery."""
    paths = ["/data/2024/images/test/depth/cam2/0021/0005.png", "depth/cam2/0019/0002.png"]
    ids, cams = search_cli.parse_ids(paths, PATTERN)
    assert ids == [21, 19] and cams == [2, 2]
    # The last match wins: '2024/' above the files is not a person id.
    ids, _ = search_cli.parse_ids(paths[:1], r"(?P<id>\d{4})/")
    assert ids == [21]
    with pytest.raises(ValueError, match="does not match the path 'x/y.png'"):
        search_cli.parse_ids(["x/y.png"], PATTERN)


def test_open_set_answer_line():
    gallery = Gallery(np.zeros((2, 2)), ids=[7, 9], filenames=["a.png", "b.png"])
    line = search_cli.format_answer(np.array([0.5, 2.0]), np.array([1, 0]), gallery, 1.0)
    assert line == "answer: person 9 (distance 0.5000 < threshold 1.0000)"
    line = search_cli.format_answer(np.array([1.0, 2.0]), np.array([1, 0]), gallery, 1.0)
    assert line.startswith("answer: not in the gallery (nearest distance 1.0000 >= threshold")


def test_image_files_keep_the_stored_values(tmp_path):
    from jaxreid import inference

    rng = np.random.default_rng(0)
    depth = rng.integers(0, 65536, (8, 4, 1)).astype(np.uint16)
    rgb = rng.integers(0, 256, (8, 4, 3)).astype(np.uint8)
    for name, image in [("d.png", depth), ("c.png", rgb)]:
        image_files.write_image(str(tmp_path / "x" / name), image)
        back = inference.read_image(tmp_path / "x" / name)
        assert back.dtype == image.dtype
        np.testing.assert_array_equal(back, image)
    with pytest.raises(ValueError, match="cannot write a float32 image"):
        image_files.write_image(str(tmp_path / "f.png"), np.zeros((2, 2, 1), np.float32))
    assert image_files.relative_path("cam1/0023/0001.jpg", 1, 23, 1) == "cam1/0023/0001.png"
    assert image_files.relative_path("", 3, 5, 12) == "cam3/0005/0012.png"
    assert image_files.relative_path("../evil.png", 3, 5, 12) == "cam3/0005/0012.png"
