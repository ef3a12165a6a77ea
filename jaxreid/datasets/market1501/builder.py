"""Market-1501 (Zheng et al., ICCV 2015): single-modal RGB re-id, 1,501 identities, 6 cameras.

Manual download. Layout of the manual folder (as distributed, Market-1501-v15.09.15):

  bounding_box_train/<pid>_c<camera>s<sequence>_<frame>_<box>.jpg   12,936 images, 751 ids
  bounding_box_test/...                                             19,732 images
  query/...                                                          3,368 images, 750 ids

e.g. 0002_c1s1_000451_03.jpg: person 0002, camera 1, sequence 1, frame 451, box 3. Other
files (gt_bbox/, gt_query/, Thumbs.db, readme.txt) are ignored.

Junk and distractors, as the official evaluation code (Zheng et al. 2015, the MATLAB
`compute_AP` with `junk_index`) treats them: bounding_box_test holds 3,819 junk boxes named
`-1_...` (person_id -1: bad detections, neither a true nor a false match, dropped from every
ranked list) and 2,793 distractors named `0000_...` (person_id 0: false detections that stay
in the gallery as negatives). The builder keeps both in the 'gallery' split with those ids;
`jaxreid.evaluation.market1501` drops the -1 images (its `junk_ids`) and keeps the 0 ones.
bounding_box_train and query hold neither (a junk or distractor there is a layout error).

Config: 'rgb'. Splits: 'train' (bounding_box_train), 'query' (query), 'gallery'
(bounding_box_test), each in file-name order. `file_index` is the 1-based position of the file
among the files of its (person, camera) in that folder, in file-name order.
"""

from __future__ import annotations

import pathlib
import re

from jaxreid.datasets import common

FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
SPLITS = tuple(FOLDERS)
CAMERAS = (1, 2, 3, 4, 5, 6)
JUNK_ID = -1  # Zheng et al. 2015: "junk" boxes, ignored by the evaluation.
DISTRACTOR_ID = 0  # "distractor" boxes, negatives in the gallery.
# Zheng et al. 2015, Table 1 / the dataset's readme: images and identities per folder.
EXPECTED_IMAGES = {"train": 12936, "query": 3368, "gallery": 19732}
EXPECTED_IDS = {"train": 751, "query": 750}

FILE_NAME = re.compile(
    r"^(?P<pid>-1|\d{4})_c(?P<cam>\d)s(?P<seq>\d)_(?P<frame>\d{6})_(?P<box>\d{2})\.jpg$"
)

_LAYOUT = (
    "folders bounding_box_train/, bounding_box_test/ and query/ with JPEGs named "
    "<person id, 4 digits or -1>_c<camera 1-6>s<sequence>_<frame, 6 digits>_<box, 2 digits>.jpg "
    "(e.g. bounding_box_train/0002_c1s1_000451_03.jpg)."
)

_CITATION = """\
@inproceedings{zheng2015scalable,
  title     = {Scalable Person Re-identification: A Benchmark},
  author    = {Zheng, Liang and Shen, Liyue and Tian, Lu and Wang, Shengjin and Wang, Jingdong and Tian, Qi},
  booktitle = {IEEE International Conference on Computer Vision (ICCV)},
  pages     = {1116--1124},
  year      = {2015}
}
"""


def parse_name(name: str, folder: pathlib.Path) -> tuple[int, int]:
    """(person id, camera) of a Market-1501 file name; ManualDataError naming the file if the
    name does not follow the pattern or the camera is not 1-6."""
    m = FILE_NAME.match(name)
    if m is None or int(m["cam"]) not in CAMERAS:
        raise common.ManualDataError(
            f"File {folder / name} does not match the Market-1501 naming "
            "<pid>_c<camera 1-6>s<sequence>_<frame>_<box>.jpg (e.g. 0002_c1s1_000451_03.jpg). "
            "Fix: remove files that are not part of the dataset from that folder."
        )
    return int(m["pid"]), int(m["cam"])


class Market1501(common.ReidBuilder):
    """Market-1501 person re-identification (train / query / gallery)."""

    name = "market1501"
    BUILDER_CONFIGS = [common.ReidConfig(name="rgb", modality="rgb", description="RGB, 6 cameras.")]
    DESCRIPTION = __doc__
    CITATION = _CITATION
    HOMEPAGE = "https://zheng-lab-anu.github.io/Project/project_reid.html"
    LAYOUT_HELP = _LAYOUT
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Market-1501 is distributed by its authors ({HOMEPAGE}) as Market-1501-v15.09.15.zip.
Extract it and pass the folder that contains bounding_box_train/, bounding_box_test/ and
query/ as the manual folder: {_LAYOUT}
Build: python -m jaxreid.datasets.market1501 --manual_dir=/path/to/Market-1501-v15.09.15
"""

    def _split_generators(self, dl_manager):
        root = self.manual_folder(dl_manager)
        missing = [f for f in FOLDERS.values() if not (root / f).is_dir()]
        if missing:
            raise self.layout_error(root, f"Missing folder(s) {', '.join(missing)} in {root}.")
        entries = {split: self._entries(root, split) for split in SPLITS}
        self.info.metadata["num_junk"] = sum(e[1] == JUNK_ID for e in entries["gallery"])
        self.info.metadata["num_distractors"] = sum(
            e[1] == DISTRACTOR_ID for e in entries["gallery"]
        )
        return {split: self._generate_examples(root, entries[split], split) for split in SPLITS}

    def _entries(self, root: pathlib.Path, split: str):
        """[(path, person id, camera, file_index)] of one folder in file-name order."""
        folder = root / FOLDERS[split]
        paths = common.list_images(folder)
        if not paths:
            raise self.layout_error(root, f"Folder {folder} holds no images.")
        parsed = [(p, *parse_name(p.name, folder)) for p in paths]
        if split != "gallery":
            bad = [p.name for p, pid, _ in parsed if pid in (JUNK_ID, DISTRACTOR_ID)]
            if bad:
                raise common.ManualDataError(
                    f"{folder} holds junk (-1) or distractor (0000) images {bad[:5]}; expected "
                    "them only in bounding_box_test/. Fix: restore the folder from the archive."
                )
        seen: dict[tuple[int, int], int] = {}
        out = []
        for path, pid, cam in parsed:
            seen[(pid, cam)] = seen.get((pid, cam), 0) + 1
            out.append((path, pid, cam, seen[(pid, cam)]))
        return out

    def _generate_examples(self, root: pathlib.Path, entries, split: str):
        key = 0
        for path, pid, cam, position in entries:
            image = self.read_image(path, root)
            if image is None:
                continue
            yield (
                key,
                common.example(image, "rgb", pid, cam, "", position, common.relative(path, root)),
            )
            key += 1
        self.report_skipped(split, key)


__all__ = ["Market1501", "parse_name", "SPLITS", "FOLDERS", "JUNK_ID", "DISTRACTOR_ID"]
