"""LLCM and Market-1501 builders on their dummy data (datasets/<name>/dummy_data, the real
on-disk layouts; the expected numbers are read off the file lists of make_dummy_data.py)."""

from __future__ import annotations

import pathlib
import shutil

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")
from jaxreid import datasets, evaluation
from jaxreid.datasets import common
from jaxreid.datasets.llcm import builder as llcm
from jaxreid.datasets.market1501 import builder as market

DUMMY = pathlib.Path(__file__).resolve().parent.parent / "datasets"
tfds.disable_progress_bar()


def build(cls, config, manual, data_dir):
    b = cls(config=config, data_dir=data_dir)
    b.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual))
    return b


def examples(b, split):
    out = list(tfds.as_numpy(b.as_dataset(split=split, shuffle_files=False)))
    for ex in out:
        for k in ("modality", "frame_id", "filename"):
            ex[k] = ex[k].decode()
    return out


def copy_dummy(name, tmp_path):
    dst = tmp_path / f"{name}_manual"
    shutil.copytree(DUMMY / name / "dummy_data", dst)
    return dst


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    return {
        (cls.name, config): build(cls, config, DUMMY / cls.name / "dummy_data", data_dir)
        for cls, config in (
            (market.Market1501, "rgb"),
            (llcm.Llcm, "rgb"),
            (llcm.Llcm, "infrared"),
        )
    }


def _counts(b):
    return {k: v.num_examples for k, v in b.info.splits.items()}


def test_registered():
    assert {"llcm", "market1501"} <= set(datasets.names())
    assert datasets.load_module("llcm") is llcm and datasets.load_module("market1501") is market


def test_market1501_splits_ids_cameras_and_junk(built):
    b = built[("market1501", "rgb")]
    # 5 train, 2 query, 9 gallery images (Thumbs.db in bounding_box_test is not an image).
    assert _counts(b) == {"train": 5, "query": 2, "gallery": 9}
    assert b.info.metadata["num_junk"] == 2 and b.info.metadata["num_distractors"] == 2
    train, query, gallery = (examples(b, s) for s in ("train", "query", "gallery"))
    assert [int(e["person_id"]) for e in train] == [2, 2, 7, 7, 7]
    assert [int(e["camera_id"]) for e in train] == [1, 2, 1, 3, 3]
    # file_index counts files of one (person, camera): 0007_c3s2_000101 and _000201.
    assert [int(e["file_index"]) for e in train] == [1, 1, 1, 1, 2]
    assert [(int(e["person_id"]), int(e["camera_id"])) for e in query] == [(1, 1), (3, 2)]
    # File-name order: '-' sorts before digits, so junk (-1) comes first, then 0000.
    assert [int(e["person_id"]) for e in gallery] == [-1, -1, 0, 0, 1, 1, 3, 3, 3]
    assert [int(e["camera_id"]) for e in gallery] == [1, 2, 1, 3, 1, 4, 2, 5, 6]
    assert gallery[0]["filename"] == "bounding_box_test/-1_c1s1_000401_03.jpg"
    for e in train + query + gallery:
        assert e["modality"] == "rgb" and e["frame_id"] == ""
        assert e["image"].shape == (16, 8, 3) and e["image"].dtype == np.uint8
        pid = int(e["person_id"])  # red channel written by make_dummy_data.py (JPEG: +-3)
        assert abs(int(e["image"][..., 0].mean()) - (5 if pid < 0 else 20 * pid)) <= 3


def test_market1501_junk_rule_with_the_protocol(built):
    """The official rule, worked by hand on the built gallery: junk (-1) images are ignored,
    distractors (0) are negatives, the query's own camera's true matches are removed."""
    b = built[("market1501", "rgb")]
    query, gallery = examples(b, "query"), examples(b, "gallery")
    q_ids = np.array([e["person_id"] for e in query])
    q_cams = np.array([e["camera_id"] for e in query])
    g_ids = np.array([e["person_id"] for e in gallery])
    g_cams = np.array([e["camera_id"] for e in gallery])
    # Query 1 (cam 1) ranks: junk, distractor, 0001 cam 1 (removed), junk, 0001 cam 4, ...
    # Kept list: distractor(0,c1), 0001 c4 -> first true match at rank 2: AP 1/2.
    # Query 3 (cam 2) ranks: 0003 c2 (removed), distractor c3, 0003 c5, junk, 0003 c6, ...
    # Kept: distractor, 0003 c5 (rank 2), 0003 c6 (rank 3): AP (1/2 + 2/3) / 2.
    order = {
        0: [0, 2, 4, 1, 5, 3, 6, 7, 8],
        1: [6, 3, 7, 0, 8, 1, 2, 4, 5],
    }
    dist = np.zeros((2, 9), np.float32)
    for q, ranked in order.items():
        dist[q, ranked] = np.arange(1, 10)
    res = evaluation.market1501(None, q_ids, q_cams, None, g_ids, g_cams, distmat=dist)
    assert res["num_junk"] == 2
    # float64 mean of hand-worked APs (1/2, 2/3): rounding only; approx's rel 1e-6.
    assert res["mAP"] == pytest.approx((0.5 + (1 / 2 + 2 / 3) / 2) / 2)
    assert res["rank1"] == 0.0 and res["rank5"] == 1.0
    # Counting the junk as negatives would lower query 1's AP (junk ranked first): the rule
    # is what makes the figure.
    as_negative = evaluation.market1501(
        None, q_ids, q_cams, None, g_ids, g_cams, distmat=dist, junk_ids=()
    )
    assert as_negative["mAP"] < res["mAP"]


def test_llcm_splits_ids_cameras(built):
    vis, nir = built[("llcm", "rgb")], built[("llcm", "infrared")]
    assert _counts(vis) == {"train": 4, "test": 7}
    assert _counts(nir) == {"train": 3, "test": 6}
    for b, modality, ch in ((vis, "rgb", 3), (nir, "infrared", 1)):
        train, test = examples(b, "train"), examples(b, "test")
        assert {int(e["person_id"]) for e in train} == {1, 2}
        assert {int(e["person_id"]) for e in test} == {3, 4}
        for e in train + test:
            assert e["modality"] == modality and e["image"].shape == (16, 8, ch)
            cam, pid = e["filename"].split("/")[1:3]
            assert (cam, pid) == (f"cam{e['camera_id']}", f"{e['person_id']:04d}")
    # Test order: person id, then camera, then file name (process_query_llcm).
    assert [
        (int(e["person_id"]), int(e["camera_id"]), int(e["file_index"]))
        for e in examples(nir, "test")
    ] == [(3, 1, 1), (3, 4, 1), (3, 4, 2), (4, 2, 1), (4, 2, 2), (4, 9, 1)]
    assert [int(e["camera_id"]) for e in examples(vis, "test")] == [1, 1, 3, 2, 5, 5, 5]
    # Training split in the order of idx/train_nir.txt.
    assert [e["filename"] for e in examples(nir, "train")] == [
        "train_nir/cam1/0001/0001_c01_f0001_nir.jpg",
        "train_nir/cam4/0002/0002_c04_f0001_nir.jpg",
        "train_nir/cam4/0002/0002_c04_f0002_nir.jpg",
    ]
    # Near-infrared: 3-channel gray JPEGs stored 1-channel, value 40 * pid + 10 * n.
    for e in examples(nir, "test"):
        want = 40 * int(e["person_id"]) + 10 * int(e["file_index"])
        assert abs(float(e["image"].mean()) - want) <= 2


def test_wrong_layouts_name_the_problem(tmp_path):
    # Market-1501: one level too high, a missing folder, a foreign file, junk in query/.
    outer = tmp_path / "outer"
    shutil.copytree(DUMMY / "market1501" / "dummy_data", outer / "Market-1501-v15.09.15")
    with pytest.raises(common.ManualDataError, match="bounding_box_train.*Market-1501-v15"):
        build(market.Market1501, "rgb", outer, tmp_path / "d1")
    manual = copy_dummy("market1501", tmp_path)
    (manual / "query" / "0001_c1s1_001051_00.jpg").rename(manual / "query" / "img001.jpg")
    with pytest.raises(common.ManualDataError, match=r"img001\.jpg does not match"):
        build(market.Market1501, "rgb", manual, tmp_path / "d2")
    (manual / "query" / "img001.jpg").rename(manual / "query" / "-1_c1s1_001051_00.jpg")
    with pytest.raises(common.ManualDataError, match="junk"):
        build(market.Market1501, "rgb", manual, tmp_path / "d3")
    shutil.rmtree(manual / "query")
    with pytest.raises(common.ManualDataError, match="Missing folder.*query"):
        build(market.Market1501, "rgb", manual, tmp_path / "d4")
    # LLCM: missing test_id.txt, an index line outside cam<c>/<pid>/, overlapping ids.
    manual = copy_dummy("llcm", tmp_path)
    (manual / "idx" / "test_id.txt").unlink()
    with pytest.raises(common.ManualDataError, match=r"test_id\.txt"):
        build(llcm.Llcm, "rgb", manual, tmp_path / "d5")
    (manual / "idx" / "test_id.txt").write_text("2,3,4\n")
    with pytest.raises(common.ManualDataError, match=r"\[2\] are in both"):
        build(llcm.Llcm, "rgb", manual, tmp_path / "d6")
    (manual / "idx" / "test_id.txt").write_text("3,4,5\n")
    with pytest.raises(common.ManualDataError, match=r"\[5\].*have no folder"):
        build(llcm.Llcm, "infrared", manual, tmp_path / "d7")
    (manual / "idx" / "test_id.txt").write_text("3,4\n")
    (manual / "idx" / "train_vis.txt").write_text("train_vis/0001/x.jpg 0\n")
    with pytest.raises(common.ManualDataError, match=r"cam<c>/<pid>"):
        build(llcm.Llcm, "rgb", manual, tmp_path / "d8")
    (manual / "idx" / "train_vis.txt").write_text(
        "train_vis/cam1/0001/0001_c01_f0001_vis.jpg 0\ntrain_vis/cam2/0002/0002_c02_f0001_vis.jpg 0\n"
    )
    with pytest.raises(common.ManualDataError, match="one-to-one"):
        build(llcm.Llcm, "rgb", manual, tmp_path / "d9")
