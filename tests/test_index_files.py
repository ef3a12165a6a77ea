"""The 'relative/path label' index files of LLCM (idx/train_*.txt) and RegDB (idx/*_<trial>.txt):
one checked reader (`manual_files.parse_path_label_index`) behind both `read_index`es, against
hand-written files."""

import re

import pytest

from jaxreid.datasets.llcm import builder as llcm
from jaxreid.datasets.manual_files import ManualDataError
from jaxreid.datasets.regdb import builder as regdb


def _files(root, *rels):
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")


def _index(root, name, text):
    (root / "idx").mkdir(exist_ok=True)
    (root / "idx" / name).write_text(text)


def test_llcm_and_regdb_read_their_layouts(tmp_path):
    _files(tmp_path, "train_vis/cam1/0001/a.jpg", "train_vis/cam2/0007/b.jpg")
    _index(
        tmp_path,
        "train_vis.txt",
        "./train_vis/cam1/0001/a.jpg 0\n\ntrain_vis\\cam2\\0007\\b.jpg 1\n",
    )
    assert llcm.read_index(tmp_path, "vis") == [
        ("train_vis/cam1/0001/a.jpg", 1, 1, 0),
        ("train_vis/cam2/0007/b.jpg", 7, 2, 1),
    ]
    _files(tmp_path, "Visible/3/x_v_1.bmp")
    _index(tmp_path, "test_visible_1.txt", "Visible/3/x_v_1.bmp -2\n")
    assert regdb.read_index(tmp_path, "test", "visible", 1) == [("Visible/3/x_v_1.bmp", 3, -2)]


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "train_vis/cam1/0001/a.jpg\n",
            "line 1 .*expected 'relative/path.jpg label' with an integer",
        ),
        ("train_vis/cam1/0001/a.jpg -1\n", "expected 'relative/path.jpg label'"),  # LLCM: >= 0
        (
            "train_vis/0001/a.jpg 0\n",
            r"expected a path \.\.\./cam<c>/<pid>/<file>, e\.g\. train_vis/",
        ),
        ("train_vis/cam1/0001/a.jpg 0\n./train_vis/cam1/0001/a.jpg 0\n", "line 2 .*listed twice"),
        (
            "train_vis/cam1/0001/z.jpg 0\n",
            r"z\.jpg does not exist\. Expected the files the index lists\. Fix: extract train_vis/",
        ),
        (
            "train_vis/cam1/0001/a.jpg 0\ntrain_vis/cam2/0007/b.jpg 0\n",
            "label 0 for person folder 7, .* / label 0 with person 1;",
        ),
        (
            "train_vis/cam1/0001/a.jpg 0\ntrain_vis/cam1/0001/c.jpg 1\n",
            "label 1 for person folder 1, but the file also pairs label 0 with person 1 /",
        ),
        ("\n", r"Index file .*train_vis\.txt is empty"),
    ],
)
def test_llcm_index_errors_name_file_line_and_fix(tmp_path, text, message):
    _files(
        tmp_path,
        "train_vis/cam1/0001/a.jpg",
        "train_vis/cam1/0001/c.jpg",
        "train_vis/cam2/0007/b.jpg",
    )
    _index(tmp_path, "train_vis.txt", text)
    with pytest.raises(ManualDataError, match=message) as info:
        llcm.read_index(tmp_path, "vis")
    assert str(tmp_path / "idx" / "train_vis.txt") in str(info.value)
    assert "Fix: " in str(info.value)


def test_regdb_trial_errors(tmp_path):
    _files(tmp_path, "Visible/3/x_v_1.bmp", "Thermal/3/x_t_1.bmp")
    for text, message in [
        ("Thermal/3/x_t_1.bmp 0\n", r"expected a path Visible/<pid>/<file>, e\.g\. Visible/1/"),
        (
            "Visible/3/y.bmp 0\n",
            r"Expected the files the trial lists\. Fix: extract Visible/ and Thermal/",
        ),
        ("", r"Trial file .*test_visible_1\.txt is empty"),
    ]:
        _index(tmp_path, "test_visible_1.txt", text)
        with pytest.raises(ManualDataError, match=message):
            regdb.read_index(tmp_path, "test", "visible", 1)
    assert re.search("restore idx/ from the RGB-IR evaluation code", regdb._INDEX_FIX)
