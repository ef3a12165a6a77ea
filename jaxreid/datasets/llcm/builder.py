"""LLCM (Zhang & Wang, CVPR 2023): low-light visible-infrared re-id, 1,064 identities, 9 cameras.

Manual download. Layout of the manual folder (as the released DEEN code reads it,
github.com/ZYK100/LLCM, DEEN/data_loader.py and DEEN/data_manager.py):

  train_vis/cam<c>/<pid, 4 digits>/<image>.jpg    visible training images
  train_nir/cam<c>/<pid>/<image>.jpg              near-infrared training images
  test_vis/cam<c>/<pid>/<image>.jpg               visible test images, cameras 1-9
  test_nir/cam<c>/<pid>/<image>.jpg               near-infrared test images, cameras 1, 2, 4-9
  idx/train_vis.txt, idx/train_nir.txt            one 'relative/path.jpg label' per line
  idx/test_id.txt                                 one line of comma-separated test person ids

The training split is what idx/train_<vis|nir>.txt list, in file order (LLCMData); `label`
is the 0-based training class and must correspond one-to-one with the person folder. The test
split is every image of test_<vis|nir>/cam<c>/<pid>/ for the ids of idx/test_id.txt, in
(person id, camera, file name) order (process_query_llcm). `person_id` is the folder number,
`camera_id` the number of cam<c> (the same 9 cameras record both modalities, so a visible
and an infrared image of camera c share camera_id c), `file_index` the 1-based position of
the file in its cam<c>/<pid>/ folder in file-name order (what the gallery sampling of
`jaxreid.evaluation.llcm` draws from).

Configs: 'rgb' (visible) and 'infrared' (near-infrared, stored 1-channel uint8).
Splits: 'train' (713 ids in the paper) and 'test' (351 ids).
"""

from __future__ import annotations

import pathlib
import re

from jaxreid.datasets import common
from jaxreid.datasets.sysu_mm01.builder import person_folders

VIS_CAMERAS = (1, 2, 3, 4, 5, 6, 7, 8, 9)  # DEEN/data_manager.py: test_vis/cam1 ... cam9
NIR_CAMERAS = (1, 2, 4, 5, 6, 7, 8, 9)  # test_nir has no cam3
SPLITS = ("train", "test")
_MODALITY_NAME = {"rgb": "vis", "infrared": "nir"}
_CAMERAS = {"rgb": VIS_CAMERAS, "infrared": NIR_CAMERAS}
_CAM_PID = re.compile(r"(?:^|/)cam(?P<cam>\d+)/(?P<pid>\d+)/[^/]+$")
_INDEX_FIX = " Fix: restore idx/ from the LLCM archive (one 'relative/path.jpg label' per line)."

_LAYOUT = (
    "folders train_vis/, train_nir/, test_vis/, test_nir/, each with cam<c>/<person id, 4 digits>/"
    "<image>.jpg (e.g. test_vis/cam1/0001/<image>.jpg), and idx/train_vis.txt, idx/train_nir.txt "
    "(one 'relative/path.jpg label' per line) and idx/test_id.txt (one line of comma-separated "
    "person ids)."
)

_CITATION = """\
@inproceedings{zhang2023diverse,
  title     = {Diverse Embedding Expansion Network and Low-Light Cross-Modality Benchmark for Visible-Infrared Person Re-identification},
  author    = {Zhang, Yukang and Wang, Hanzi},
  booktitle = {IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  pages     = {2153--2162},
  year      = {2023}
}
"""


class Llcm(common.ReidBuilder):
    """LLCM visible / near-infrared person re-identification."""

    name = "llcm"
    BUILDER_CONFIGS = [
        common.ReidConfig(name="rgb", modality="rgb", description="Visible images (vis)."),
        common.ReidConfig(
            name="infrared",
            modality="infrared",
            description="Near-infrared images (nir), 1-channel uint8.",
        ),
    ]
    DESCRIPTION = __doc__
    CITATION = _CITATION
    HOMEPAGE = "https://github.com/ZYK100/LLCM"
    LAYOUT_HELP = _LAYOUT
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
LLCM is given out by its authors on request ({HOMEPAGE}: send the signed dataset release
agreement to them). Extract the archive and pass the folder that contains train_vis/,
train_nir/, test_vis/, test_nir/ and idx/ as the manual folder: {_LAYOUT}
Build (configs rgb and infrared): python -m jaxreid.datasets.llcm --manual_dir=/path/to/LLCM
"""

    def _split_generators(self, dl_manager):
        root = self.manual_folder(dl_manager)
        modality = self.builder_config.modality
        name = _MODALITY_NAME[modality]
        test_dir = root / f"test_{name}"
        if not test_dir.is_dir():
            raise self.layout_error(root, f"Missing folder {test_dir}.")
        test_ids = read_test_ids(root, self.layout_error)
        train = read_index(root, name, self.layout_error)
        both = sorted({pid for _, pid, _, _ in train} & set(test_ids))
        if both:
            raise common.ManualDataError(
                f"Person ids {both[:10]} are in both {root / 'idx' / f'train_{name}.txt'} and "
                f"{root / 'idx' / 'test_id.txt'}; expected disjoint training and test identities."
                f"{_INDEX_FIX}"
            )
        cams = person_folders(test_dir, _CAMERAS[modality], self.layout_error)
        present = {pid for per_cam in cams.values() for pid in per_cam}
        missing = sorted(set(test_ids) - present)
        if missing:
            raise common.ManualDataError(
                f"Test person ids {missing[:10]} of {root / 'idx' / 'test_id.txt'} have no folder "
                f"{test_dir.name}/cam<c>/<pid>/. Expected every test id to have {name} images. "
                "Fix: extract the archive completely."
            )
        self._cache_positions: dict[pathlib.Path, dict[str, int]] = {}
        test = [
            (path.relative_to(root).as_posix(), pid, cam)
            for pid in sorted(test_ids)
            for cam in _CAMERAS[modality]
            if pid in cams.get(cam, {})
            for path in common.list_images(cams[cam][pid])
        ]
        return {
            "train": self._generate_examples(root, [(r, p, c) for r, p, c, _ in train], "train"),
            "test": self._generate_examples(root, test, "test"),
        }

    def _generate_examples(self, root: pathlib.Path, entries, split: str):
        modality = self.builder_config.modality
        key = 0
        for rel, pid, cam in entries:
            path = root / rel
            if path.parent not in self._cache_positions:
                self._cache_positions[path.parent] = common.file_positions(
                    p.name for p in common.list_images(path.parent)
                )
            image = self.read_image(path, root)
            if image is None:
                continue
            position = self._cache_positions[path.parent][path.name]
            yield key, common.example(image, modality, pid, cam, "", position, rel)
            key += 1
        self.report_skipped(split, key)


def read_test_ids(root: pathlib.Path, layout_error=None) -> list[int]:
    """Person ids of idx/test_id.txt (one line of comma-separated ids, distinct)."""
    path = root / "idx" / "test_id.txt"
    if not path.is_file():
        problem = f"Missing split file {path}."
        if layout_error is not None:
            raise layout_error(root, problem)
        raise common.ManualDataError(problem + f" Expected: {_LAYOUT}")
    ids = common.parse_id_text(path)
    common.check_distinct(ids, path)
    return ids


def read_index(root: pathlib.Path, name: str, layout_error=None):
    """[(relative path, person id, camera, label)] of idx/train_<name>.txt, in file order.

    The path must exist and contain .../cam<c>/<pid>/<file>; labels and person ids must
    correspond one-to-one (the released code's 0-based training classes).
    """
    path = root / "idx" / f"train_{name}.txt"
    if not path.is_file():
        problem = f"Missing index file {path}."
        if layout_error is not None:
            raise layout_error(root, problem)
        raise common.ManualDataError(problem + f" Expected: {_LAYOUT}")

    def person_of(rel):
        m = _CAM_PID.search(rel)
        if m is None:
            return None, f"a path .../cam<c>/<pid>/<file>, e.g. train_{name}/cam1/0001/<file>.jpg"
        return int(m["pid"]), int(m["cam"])

    entries = common.parse_path_label_index(
        path,
        root,
        kind="index",
        example_line="relative/path.jpg label",
        label_pattern=r"\d+",
        person_of=person_of,
        fix=_INDEX_FIX,
        missing_image_fix=f"Fix: extract train_{name}/ completely into the manual folder.",
    )
    return [(rel, pid, cam, label) for rel, pid, label, cam in entries]


__all__ = ["Llcm", "read_index", "read_test_ids", "VIS_CAMERAS", "NIR_CAMERAS", "SPLITS"]
