"""Tests of the SYSU-MM01, RegDB, BIWI RGBD-ID and RobotPKU TFDS builders.

Each dataset is built from its dummy_data (datasets/<name>/dummy_data, the real on-disk
layouts) into a temporary data_dir; expected counts, ids, cameras, crops and pairings are
worked out by hand from the fixtures (described in datasets/<name>/README.md). Split lists
are checked against the thesis text (Hafner 2018, appendix B) and the official SYSU-MM01
split files when those are on this machine (skipped otherwise).
"""

from __future__ import annotations

import math
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from jaxreid.datasets import splits

REPO = pathlib.Path(__file__).resolve().parents[1]
DUMMY = REPO / "datasets"
SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared"  # Beside the repository.
THESIS = SHARED / "papers" / "hafner2018_cross_modal_distillation_thesis.txt"
SYSU_REFERENCE = SHARED / "reference" / "sysu_mm01"


# ---- split lists (NumPy only) ---------------------------------------------------------------


def _nums(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", text)]


def _between(text: str, start: str, end: str) -> str:
    i = text.index(start) + len(start)
    return text[i : text.index(end, i)]


def test_split_lists_have_the_appendix_counts():
    # Hafner 2018, appendix B: BIWI 40 design / 38 test instances, RobotPKU 50 / 40 persons.
    for design, test, n, nd, nt in (
        (splits.BIWI_DESIGN_IDS, splits.BIWI_TEST_IDS, 78, 40, 38),
        (splits.ROBOTPKU_DESIGN_IDS, splits.ROBOTPKU_TEST_IDS, 90, 50, 40),
    ):
        assert (len(set(design)), len(set(test))) == (nd, nt)
        assert len(design) == nd and len(test) == nt
        assert not set(design) & set(test)
        assert set(design) | set(test) == set(range(n))
    assert (splits.SYSU_NUM_TRAIN_IDS, splits.SYSU_NUM_VAL_IDS, splits.SYSU_NUM_TEST_IDS) == (
        296,
        99,
        96,
    )


@pytest.mark.skipif(not THESIS.exists(), reason="thesis text not on this machine")
def test_split_lists_equal_the_thesis_text():
    text = THESIS.read_text()
    b1 = _between(text, "B.1 BIWI RGBD-ID", "B.2 RobotPKU")
    b2 = _between(text, "B.2 RobotPKU", "B.3 SYSU")
    for section, design, test in (
        (b1, splits.BIWI_DESIGN_IDS, splits.BIWI_TEST_IDS),
        (b2, splits.ROBOTPKU_DESIGN_IDS, splits.ROBOTPKU_TEST_IDS),
    ):
        assert _nums(
            _between(section, "Design set (Train + Validation set):", "Test set:")
        ) == list(design)
        assert _nums(section[section.index("Test set:") :]) == list(test)
    # The paper version's appendix A.1 / A.2 lists the same ids.
    a1 = _between(text, "A.1 BIWI RGBD-ID dataset:", "A.2 RobotPKU dataset:")
    a2 = _between(text, "A.2 RobotPKU dataset:", "REFERENCES")
    assert _nums(_between(a1, "Validation set):", "Test set:")) == list(splits.BIWI_DESIGN_IDS)
    assert _nums(a2[a2.index("Test set:") :]) == list(splits.ROBOTPKU_TEST_IDS)
    # §4.1.3: "296 identities are used for training, 99 for validation and 96 for testing".
    m = re.search(
        r"(\d+) identities are used for training, (\d+) for validation and (\d+) for testing", text
    )
    assert tuple(int(g) for g in m.groups()) == (
        splits.SYSU_NUM_TRAIN_IDS,
        splits.SYSU_NUM_VAL_IDS,
        splits.SYSU_NUM_TEST_IDS,
    )


def test_cross_validation_folds():
    design = splits.BIWI_DESIGN_IDS
    folds = splits.cross_validation_folds(design, num_folds=3, seed=7, num_val_ids=8)
    assert len(folds) == 3
    vals = [set(f["val"].tolist()) for f in folds]
    for k, f in enumerate(folds):
        assert f["fold"] == k and f["seed"] == 7
        assert f["val"].dtype == np.int32 and f["train"].dtype == np.int32
        assert len(f["val"]) == 8 and len(f["train"]) == 32  # Hafner 2018 §4.1.1: 32 train + 8 val
        assert (
            set(f["train"].tolist()) | vals[k] == set(design)
            and not set(f["train"].tolist()) & vals[k]
        )
        assert list(f["val"]) == sorted(f["val"]) and list(f["train"]) == sorted(f["train"])
    assert not (vals[0] & vals[1] or vals[0] & vals[2] or vals[1] & vals[2])
    # Reference: the definition, block k of one RandomState(seed) permutation of the sorted ids.
    perm = np.array(sorted(design))[np.random.RandomState(7).permutation(len(design))]
    assert [sorted(v) for v in vals] == [sorted(perm[8 * k : 8 * k + 8].tolist()) for k in range(3)]
    # Same seed, same folds (any input order); another seed, other folds.
    again = splits.cross_validation_folds(
        list(reversed(design)), num_folds=3, seed=7, num_val_ids=8
    )
    assert all((a["val"] == b["val"]).all() for a, b in zip(folds, again))
    other = splits.cross_validation_folds(design, num_folds=3, seed=8, num_val_ids=8)
    assert any((a["val"] != b["val"]).any() for a, b in zip(folds, other))
    # Defaults: 3 folds, a fifth of the design set (10 of RobotPKU's 50, Hafner 2018 §4.1.2).
    pku = splits.thesis_folds("robotpku", seed=0)
    assert [len(f["val"]) for f in pku] == [10, 10, 10]
    assert [len(f["val"]) for f in splits.cross_validation_folds(splits.ROBOTPKU_DESIGN_IDS)] == [
        10,
        10,
        10,
    ]
    with pytest.raises(ValueError, match="num_folds=6 x num_val_ids=8"):
        splits.cross_validation_folds(design, num_folds=6, num_val_ids=8)
    with pytest.raises(ValueError, match="repeated ids"):
        splits.cross_validation_folds([1, 2, 2, 3, 4, 5])


def test_folds_from_the_authors_splits_json(tmp_path):
    # A file in the format of the author's datasets/biwi/splits.json, written here.
    import json

    entries = [
        {
            "trainval": list(range(10)),
            "train": [t for t in range(10) if t not in v],
            "val": v,
            "query": [10, 11],
            "gallery": [10, 11],
        }
        for v in ([7, 1], [2, 3], [4, 5], [6, 0])
    ]
    (tmp_path / "splits.json").write_text(json.dumps(entries))
    folds = splits.folds_from_splits_json(tmp_path / "splits.json")
    assert [f["val"].tolist() for f in folds] == [[1, 7], [2, 3], [4, 5]]
    assert folds[0]["train"].tolist() == [0, 2, 3, 4, 5, 6, 8, 9] and folds[0]["seed"] is None
    entries[1]["train"].append(3)
    (tmp_path / "splits.json").write_text(json.dumps(entries))
    with pytest.raises(ValueError, match="split 1 has ids in both 'train' and 'val'"):
        splits.folds_from_splits_json(tmp_path / "splits.json")


def test_splits_module_does_not_import_tensorflow():
    code = "import sys, jaxreid.datasets.splits; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(
    not SYSU_REFERENCE.exists(), reason="official SYSU-MM01 split files not on this machine"
)
def test_official_sysu_split_files():
    from jaxreid.datasets import common

    train = common.parse_id_mat(SYSU_REFERENCE / "train_id.mat")
    test = common.parse_id_mat(SYSU_REFERENCE / "test_id.mat")
    assert (len(train), len(set(train)), len(test), len(set(test))) == (296, 296, 96, 96)
    assert not set(train) & set(test)
    if THESIS.exists():  # thesis appendix B.3 lists the test ids 0-based
        thesis_test = _nums(
            _between(THESIS.read_text(), "B.3 SYSU RGB-IR", "C Visualizations").split("Test set:")[
                1
            ]
        )
        assert sorted(v + 1 for v in thesis_test) == sorted(test)


# ---- building -----------------------------------------------------------------------------------

tfds = pytest.importorskip("tensorflow_datasets")
from jaxreid.datasets import common  # noqa: E402
from jaxreid.datasets.biwi_rgbd_id import builder as biwi  # noqa: E402
from jaxreid.datasets.regdb import builder as regdb  # noqa: E402
from jaxreid.datasets.robotpku import builder as robotpku  # noqa: E402
from jaxreid.datasets.sysu_mm01 import builder as sysu  # noqa: E402

tfds.disable_progress_bar()


def build(cls, config, manual, data_dir, **kwargs):
    b = cls(config=config, data_dir=data_dir, **kwargs)
    b.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual))
    return b


def examples(b, split):
    out = list(tfds.as_numpy(b.as_dataset(split=split, shuffle_files=False)))
    for ex in out:
        for k in ("modality", "frame_id", "filename"):
            ex[k] = ex[k].decode()
    return out


def copy_dummy(name, tmp_path, sub=""):
    dst = tmp_path / f"{name}_manual"
    shutil.copytree(DUMMY / name / "dummy_data" / sub, dst)
    return dst


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every config built once from the dummy data."""
    data_dir = tmp_path_factory.mktemp("tfds")
    out = {}
    for cls, config, sub in (
        (sysu.SysuMm01, "rgb", ""),
        (sysu.SysuMm01, "infrared", ""),
        (regdb.Regdb, "rgb", ""),
        (regdb.Regdb, "thermal", ""),
        (biwi.BiwiRgbdId, "rgb", "distributed"),
        (biwi.BiwiRgbdId, "depth", "distributed"),
        (biwi.BiwiRgbdId, "rgb_processed", "processed"),
        (biwi.BiwiRgbdId, "depth_processed", "processed"),
        (robotpku.Robotpku, "rgb", ""),
        (robotpku.Robotpku, "depth", ""),
    ):
        out[(cls.name, config)] = build(
            cls, config, DUMMY / cls.name / "dummy_data" / sub, data_dir
        )
    return out


def _counts(b):
    return {k: v.num_examples for k, v in b.info.splits.items()}


def _check_features(ex, modality, channels, dtype):
    assert ex["modality"] == modality
    assert (
        ex["image"].ndim == 3 and ex["image"].shape[-1] == channels and ex["image"].dtype == dtype
    )
    assert ex["person_id"].dtype == np.int32 and ex["camera_id"].dtype == np.int32
    assert ex["file_index"].dtype == np.int32 and ex["file_index"] >= 1


def test_sysu_mm01(built):
    rgb, ir = built[("sysu_mm01", "rgb")], built[("sysu_mm01", "infrared")]
    # Fixture: exp/ train 1,2 / val 3 / test 4,5; files per cam<c>/<pid> in the README table.
    assert _counts(rgb) == {"train": 4, "val": 1, "test": 6}
    assert _counts(ir) == {"train": 2, "val": 1, "test": 4}
    for b, modality, cams, ch in ((rgb, "rgb", {1, 2, 4, 5}, 3), (ir, "infrared", {3, 6}, 1)):
        for split, ids in (("train", {1, 2}), ("val", {3}), ("test", {4, 5})):
            exs = examples(b, split)
            assert {int(e["person_id"]) for e in exs} == ids
            assert {int(e["camera_id"]) for e in exs} <= cams
            for e in exs:
                _check_features(e, modality, ch, np.uint8)
                assert e["frame_id"] == ""  # SYSU-MM01's cameras are not synchronised
                cam, pid, _ = e["filename"].split("/")
                assert (cam, pid) == (f"cam{e['camera_id']}", f"{e['person_id']:04d}")
    # Test split in (camera, person, file name) order; file_index counts files in the folder
    # (cam2/0005 holds 0001.jpg and 0003.jpg, so 0003.jpg is file 2).
    test = examples(rgb, "test")
    assert [(e["filename"], int(e["file_index"])) for e in test] == [
        ("cam1/0004/0001.jpg", 1),
        ("cam1/0004/0002.jpg", 2),
        ("cam2/0005/0001.jpg", 1),
        ("cam2/0005/0003.jpg", 2),
        ("cam4/0004/0001.jpg", 1),
        ("cam5/0005/0001.jpg", 1),
    ]
    # Infrared: camera 3 images are 3-channel gray JPEGs, camera 6 1-channel; both stored
    # 1-channel with the gray value written, 40 * pid + 10 * n (JPEG: within 2).
    for e in examples(ir, "test"):
        n = int(e["filename"][-8:-4])
        assert abs(float(e["image"].mean()) - (40 * e["person_id"] + 10 * n)) <= 2


def test_sysu_mat_split_files(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    manual = copy_dummy("sysu_mm01", tmp_path)
    (manual / "exp" / "train_id.txt").unlink()
    scipy_io.savemat(manual / "exp" / "train_id.mat", {"id": np.array([[1, 2]], np.uint16)})
    assert sysu.read_split_ids(manual) == {"train": [1, 2], "val": [3], "test": [4, 5]}
    b = build(sysu.SysuMm01, "infrared", manual, tmp_path / "tfds")
    assert _counts(b) == {"train": 2, "val": 1, "test": 4}
    # A .txt and .mat of the same split that disagree are rejected.
    (manual / "exp" / "train_id.txt").write_text("1,3\n")
    with pytest.raises(common.ManualDataError, match=r"train_id\.txt and .*train_id\.mat disagree"):
        sysu.read_split_ids(manual)


def test_regdb(built):
    rgb, th = built[("regdb", "rgb")], built[("regdb", "thermal")]
    assert set(rgb.info.splits) == {f"{s}_{t}" for s in ("train", "test") for t in range(1, 11)}
    assert set(_counts(rgb).values()) == {4} and set(_counts(th).values()) == {4}
    # Fixture trials: train persons of trial t (test = the other two of 1..4).
    train_of = [(1, 2), (3, 4), (1, 3), (2, 4), (1, 4), (2, 3), (1, 2), (3, 4), (1, 3), (2, 4)]
    for t in (1, 2, 5):
        for split, ids in (
            ("train", set(train_of[t - 1])),
            ("test", {1, 2, 3, 4} - set(train_of[t - 1])),
        ):
            v, h = examples(rgb, f"{split}_{t}"), examples(th, f"{split}_{t}")
            assert {int(e["person_id"]) for e in v} == ids == {int(e["person_id"]) for e in h}
            assert {int(e["camera_id"]) for e in v} == {1} and {int(e["camera_id"]) for e in h} == {
                2
            }
            # Pairing: visible and thermal images of one instant share frame_id.
            assert sorted(e["frame_id"] for e in v) == sorted(e["frame_id"] for e in h)
            assert all(e["frame_id"] for e in v)
            for e in v:
                _check_features(e, "rgb", 3, np.uint8)
            for e in h:
                _check_features(e, "thermal", 1, np.uint8)
                k = int(e["filename"][-5])
                assert (
                    int(e["image"].min()) == int(e["image"].max()) == 30 * e["person_id"] + k
                )  # BMP: exact
                assert e["file_index"] == k
    assert examples(rgb, "train_1")[0]["filename"] == "Visible/1/female_back_v_00010_1.bmp"
    assert examples(rgb, "train_1")[0]["frame_id"] == "1/female_back_00010_1"


def test_biwi_distributed_crops_and_pairs(built):
    rgb, depth = built[("biwi_rgbd_id", "rgb")], built[("biwi_rgbd_id", "depth")]
    # Instances: (person 0, training)=0, (0, testing)=1, (1, training)=2, (2, training)=3,
    # (2, testing)=4; appendix B.1 puts 0, 1, 4 in design and 2, 3 in test. Training/001
    # frame 000001 has an empty user map and is left out.
    assert _counts(rgb) == _counts(depth) == {"design": 7, "test": 2}
    assert depth.info.metadata["frames_without_person"] == ["Training/001/001_000001"]
    for split, ids in (("design", {0, 1, 4}), ("test", {2, 3})):
        r, d = examples(rgb, split), examples(depth, split)
        assert {int(e["person_id"]) for e in r} == ids
        key = lambda e: (
            e["frame_id"],
            int(e["person_id"]),
            int(e["camera_id"]),
            int(e["file_index"]),
        )  # noqa: E731
        assert [key(e) for e in r] == [key(e) for e in d]  # same frames, paired by frame_id
        for e in r:
            _check_features(e, "rgb", 3, np.uint8)
            # RGB box: depth box rows 2..10, cols 4..11 mapped through the README intrinsics to
            # the 32 x 24 RGB image: x = (319.5 + (40 u - 319.5) * 525 / 575.8) / 20, y alike.
            assert e["image"].shape == (16, 14, 3)
        for e in d:
            _check_features(e, "depth", 1, np.uint16)
            # User map: person rows 3..8, cols 5..9 (+ a 1-pixel second label, ignored); 10% margin
            # -> rows 2..9, cols 4..10 of depth = 1000 + 10 y + x (16-bit, kept exactly).
            yy, xx = np.mgrid[2:10, 4:11]
            np.testing.assert_array_equal(e["image"][..., 0], 1000 + 10 * yy + xx)
    camera = {e["frame_id"]: int(e["camera_id"]) for e in examples(rgb, "design")}
    assert camera["Training/000/000_000001"] == 0
    assert (
        camera["Testing/Still/000/000_000000"] == 1
        and camera["Testing/Walking/002/002_000000"] == 2
    )
    walk = [
        e for e in examples(depth, "design") if e["frame_id"].startswith("Testing/Walking/000/")
    ]
    assert [int(e["file_index"]) for e in walk] == [1, 2]
    assert walk[1]["filename"] == "Testing/Walking/000/000_000001-b_5107_depth.pgm"


def test_biwi_crop_box_by_hand():
    user = np.zeros((12, 16), np.uint8)
    user[3:9, 5:10] = 1
    user[0, 0] = 2
    assert biwi.person_box(user, 0.1) == (2, 10, 4, 11)
    assert biwi.person_box(user, 0.0) == (3, 9, 5, 10)
    assert biwi.person_box(np.zeros((4, 4), np.uint8), 0.1) is None
    # 640 x 480 depth and 1280 x 960 RGB: the principal point stays put, offsets shrink by 525 / 575.8.
    s = 525 / 575.8
    top, bottom, left, right = biwi.depth_box_to_rgb((100, 300, 200, 260), (480, 640), (960, 1280))
    assert (top, bottom) == (math.floor(2 * (239.5 - 139.5 * s)), math.ceil(2 * (239.5 + 60.5 * s)))
    assert (left, right) == (math.floor(2 * (319.5 - 119.5 * s)), math.ceil(2 * (319.5 - 59.5 * s)))


def test_biwi_processed_and_robotpku(built):
    for name, rgb_cfg, depth_cfg, counts, design, test in (
        (
            "biwi_rgbd_id",
            "rgb_processed",
            "depth_processed",
            {"design": 5, "test": 2},
            {0, 1, 4},
            {2, 3},
        ),
        # datasets/robotpku/make_dummy_data.py: persons 0 (3 files), 2, 3 (2 each) are in
        # the design set of appendix B.2, persons 1 and 4 (2 each) in its test set.
        ("robotpku", "rgb", "depth", {"design": 7, "test": 4}, {0, 2, 3}, {1, 4}),
    ):
        rgb, depth = built[(name, rgb_cfg)], built[(name, depth_cfg)]
        assert _counts(rgb) == _counts(depth) == counts
        for split, ids in (("design", design), ("test", test)):
            r, d = examples(rgb, split), examples(depth, split)
            assert {int(e["person_id"]) for e in r} == ids == {int(e["person_id"]) for e in d}
            assert (
                [e["frame_id"] for e in r]
                == [e["frame_id"] for e in d]
                == [e["filename"][-20:-4] for e in r]
            )
            for e in r:
                _check_features(e, "rgb", 3, np.uint8)
            for e in d:
                _check_features(e, "depth", 1, np.uint8)  # 8-bit JPEG depth, 3-channel ones too
    # BIWI: file 00000002_02_0000 is person 2's testing recording -> instance 4, camera 2.
    e = [
        e
        for e in examples(built[("biwi_rgbd_id", "rgb_processed")], "design")
        if e["frame_id"] == "00000002_02_0000"
    ]
    assert (int(e[0]["person_id"]), int(e[0]["camera_id"]), int(e[0]["file_index"])) == (4, 2, 1)
    e = [
        e
        for e in examples(built[("robotpku", "rgb")], "design")
        if e["frame_id"] == "00000000_00_0001"
    ]
    assert (int(e[0]["person_id"]), int(e[0]["camera_id"]), int(e[0]["file_index"])) == (0, 0, 2)


def test_robotpku_unpaired_file_has_no_frame_id(tmp_path):
    manual = copy_dummy("robotpku", tmp_path)
    (manual / "pku_depth" / "images" / "00000000_00_0001.jpg").unlink()
    b = build(robotpku.Robotpku, "rgb", manual, tmp_path / "tfds")
    frame = {e["filename"]: e["frame_id"] for e in examples(b, "design")}
    assert frame["pku/images/00000000_00_0001.jpg"] == ""
    assert frame["pku/images/00000000_00_0000.jpg"] == "00000000_00_0000"


# ---- bad input ----------------------------------------------------------------------------------


def test_constructing_builders_leaves_no_temporary_directories(tmp_path, monkeypatch):
    # TFDS looks for metadata on its bucket when a builder's data does not exist yet, and
    # leaked an empty temporary directory each time; ours never look there.
    import tempfile

    from jaxreid.datasets.synthetic import builder as synthetic

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    data_dir = tmp_path / "tfds"
    for cls, config in ((sysu.SysuMm01, "rgb"), (robotpku.Robotpku, "depth")):
        b = cls(config=config, data_dir=data_dir)
        assert isinstance(b.info, common.LocalDatasetInfo)
    synthetic.builder("depth", None, data_dir)
    assert list(scratch.iterdir()) == []


def test_missing_or_empty_manual_folder(tmp_path):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(
        common.ManualDataError,
        match=rf"Manual folder {re.escape(str(missing))} .*does not exist or is empty.*cam1 \.\.\. cam6.*manual_dir",
    ):
        build(sysu.SysuMm01, "rgb", missing, tmp_path / "tfds")
    (tmp_path / "empty").mkdir()
    with pytest.raises(common.ManualDataError, match=r"empty\b.*Training/<person>/"):
        build(biwi.BiwiRgbdId, "depth", tmp_path / "empty", tmp_path / "tfds")


def test_missing_split_files(tmp_path):
    manual = copy_dummy("sysu_mm01", tmp_path)
    (manual / "exp" / "val_id.txt").unlink()
    with pytest.raises(
        common.ManualDataError,
        match=rf"Missing split file {re.escape(str(manual / 'exp' / 'val_id.txt'))} \(or val_id\.mat\)",
    ):
        build(sysu.SysuMm01, "rgb", manual, tmp_path / "tfds")
    manual = copy_dummy("regdb", tmp_path)
    (manual / "idx" / "test_thermal_7.txt").unlink()
    with pytest.raises(
        common.ManualDataError, match=r"Missing trial file .*idx/test_thermal_7\.txt.*Fix:"
    ):
        build(regdb.Regdb, "rgb", manual, tmp_path / "tfds")


def test_wrong_layouts(tmp_path):
    # The SYSU folder one level down: the error says so and suggests the right folder.
    outer = tmp_path / "outer"
    shutil.copytree(DUMMY / "sysu_mm01" / "dummy_data", outer / "SYSU-MM01")
    with pytest.raises(
        common.ManualDataError,
        match=r"Missing camera folder\(s\) cam1, cam2, cam4, cam5.*--manual_dir=.*SYSU-MM01",
    ):
        build(sysu.SysuMm01, "rgb", outer, tmp_path / "tfds")
    # Processed-layout config on the distributed layout.
    with pytest.raises(
        common.ManualDataError, match=r"Missing folder .*biwi/images.*biwi_depth/images"
    ):
        build(
            biwi.BiwiRgbdId,
            "rgb_processed",
            DUMMY / "biwi_rgbd_id" / "dummy_data" / "distributed",
            tmp_path / "tfds",
        )
    # A file that does not follow <pid 8>_<cam 2>_<index 4>.jpg.
    manual = copy_dummy("robotpku", tmp_path)
    shutil.copy(
        manual / "pku" / "images" / "00000000_00_0000.jpg",
        manual / "pku" / "images" / "person0_a.jpg",
    )
    with pytest.raises(
        common.ManualDataError,
        match=r"\['person0_a\.jpg'\] in .*pku/images do not match <pid 8 digits>",
    ):
        build(robotpku.Robotpku, "rgb", manual, tmp_path / "tfds")
    # BIWI meta.json that disagrees with the instance numbering.
    manual = copy_dummy("biwi_rgbd_id", tmp_path, "processed")
    meta = manual / "biwi" / "meta.json"
    meta.write_text(meta.read_text().replace('"00000001_00_0000.jpg"', '"00000002_00_0000.jpg"', 1))
    with pytest.raises(
        common.ManualDataError,
        match=r"meta\.json puts 00000002_00_0000\.jpg in identity 2, but the file-name rule gives instance 3",
    ):
        build(biwi.BiwiRgbdId, "rgb_processed", manual, tmp_path / "tfds")
    # RegDB: a trial line naming a missing image; SYSU: overlapping splits, listed id without images.
    manual = copy_dummy("regdb", tmp_path)
    (manual / "Visible" / "3" / "female_front_v_00030_2.bmp").unlink()
    with pytest.raises(
        common.ManualDataError,
        match=r"idx/test_visible_1\.txt, line 2 .*female_front_v_00030_2\.bmp does not exist",
    ):
        build(regdb.Regdb, "rgb", manual, tmp_path / "tfds")
    manual = copy_dummy("sysu_mm01", tmp_path)
    (manual / "exp" / "val_id.txt").write_text("3,4\n")
    with pytest.raises(
        common.ManualDataError,
        match=r"Person ids \[4\] are in both .*val_id\.txt and .*test_id\.txt",
    ):
        build(sysu.SysuMm01, "rgb", manual, tmp_path / "tfds")
    (manual / "exp" / "val_id.txt").write_text("3,9\n")
    with pytest.raises(
        common.ManualDataError, match=r"Person ids \[9\] listed in .*val_id\.txt have no folder"
    ):
        build(sysu.SysuMm01, "rgb", manual, tmp_path / "tfds")


def _leftovers(data_dir: pathlib.Path, name: str, config: str):
    root = data_dir / name / config
    return [p for p in root.rglob("*")] if root.exists() else []


def test_truncated_image_leaves_nothing_and_rebuild_works(tmp_path):
    manual = copy_dummy("sysu_mm01", tmp_path)
    bad = manual / "cam1" / "0004" / "0002.jpg"  # in 'test', written after 'train' and 'val'
    good = bad.read_bytes()
    bad.write_bytes(good[: len(good) // 2])
    data_dir = tmp_path / "tfds"
    with pytest.raises(
        common.UnreadableImageError,
        match=rf"Cannot read image {re.escape(str(bad))}: .*truncated.*skip_unreadable=True",
    ):
        build(sysu.SysuMm01, "rgb", manual, data_dir)
    # TFDS wrote train/val into incomplete.*/ and removed it: nothing a later build could
    # take for a finished dataset.
    assert _leftovers(data_dir, "sysu_mm01", "rgb") == []
    assert not sysu.SysuMm01(config="rgb", data_dir=data_dir).is_prepared()
    bad.write_bytes(good)
    b = build(sysu.SysuMm01, "rgb", manual, data_dir)
    assert b.is_prepared() and _counts(b) == {"train": 4, "val": 1, "test": 6}
    assert b.info.metadata["skipped_files"] == []


def test_skip_unreadable_images_reports_them(tmp_path, caplog):
    manual = copy_dummy("regdb", tmp_path)
    (manual / "Thermal" / "2" / "male_front_t_00020_1.bmp").write_bytes(b"not an image")
    data_dir = tmp_path / "tfds"
    with pytest.raises(
        common.UnreadableImageError,
        match=r"Thermal/2/male_front_t_00020_1\.bmp: not a decodable image",
    ):
        build(regdb.Regdb, "thermal", manual, data_dir)
    assert _leftovers(data_dir, "regdb", "thermal") == []
    with caplog.at_level("WARNING", logger="jaxreid.datasets"):
        b = build(regdb.Regdb, "thermal", manual, data_dir, skip_unreadable=True)
    skipped = [
        {"path": "Thermal/2/male_front_t_00020_1.bmp", "reason": b.skipped_files[0]["reason"]}
    ]
    assert b.skipped_files == skipped and "not a decodable image" in skipped[0]["reason"]
    assert (
        "skipped 1 unreadable file(s)" in caplog.text and "male_front_t_00020_1.bmp" in caplog.text
    )
    # Person 2 is in train_1 (4 -> 3 images) and test_2 (4 -> 3); other splits keep 4.
    counts = _counts(b)
    assert counts["train_1"] == 3 and counts["test_2"] == 3 and counts["test_1"] == 4
    # file_index counts the folder's files, skipped ones included: image _2 stays file 2.
    kept = [e for e in examples(b, "train_1") if e["person_id"] == 2]
    assert [(e["filename"], int(e["file_index"])) for e in kept] == [
        ("Thermal/2/male_front_t_00020_2.bmp", 2)
    ]
    # The report is stored with the dataset.
    assert (
        list(regdb.Regdb(config="thermal", data_dir=data_dir).info.metadata["skipped_files"])
        == skipped
    )


def test_biwi_truncated_depth_and_missing_user_map(tmp_path):
    manual = copy_dummy("biwi_rgbd_id", tmp_path, "distributed")
    depth = manual / "Training" / "002" / "002_000000-b_3007_depth.pgm"
    depth.write_bytes(depth.read_bytes()[:-10])
    with pytest.raises(
        common.UnreadableImageError,
        match=r"002_000000-b_3007_depth\.pgm: truncated PGM: 374 bytes of pixel data, expected 384",
    ):
        build(biwi.BiwiRgbdId, "depth", manual, tmp_path / "tfds")
    depth.unlink()
    with pytest.raises(
        common.UnreadableImageError,
        match=r"frame Training/002/002_000000 has no \*_depth\.pgm file",
    ):
        build(biwi.BiwiRgbdId, "rgb", manual, tmp_path / "tfds")
    b = build(biwi.BiwiRgbdId, "rgb", manual, tmp_path / "tfds", skip_unreadable=True)
    assert _counts(b) == {"design": 7, "test": 1}
    assert [s["path"] for s in b.skipped_files] == ["Training/002/002_000000-*_depth.pgm"]


def test_command_line(tmp_path, capsys):
    argv = [
        "--manual_dir",
        str(DUMMY / "robotpku" / "dummy_data"),
        "--data_dir",
        str(tmp_path),
        "--config",
        "depth",
    ]
    assert common.build_main(robotpku.Robotpku, argv) == 0
    assert (
        "robotpku/depth" in capsys.readouterr().out
        and (tmp_path / "robotpku" / "depth" / "1.0.0").is_dir()
    )
    assert (
        common.build_main(
            robotpku.Robotpku,
            ["--manual_dir", str(tmp_path / "nothing"), "--data_dir", str(tmp_path)],
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "does not exist or is empty" in err and "pku/images/" in err
