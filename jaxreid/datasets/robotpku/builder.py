"""RobotPKU RGBD-ID (Liu et al. 2017): RGB-D re-id of 90 persons, coupled RGB and depth crops.

Manual download. The builder reads the layout of the thesis author's public code
(frhf/cross-modal-distillation-reidentification, open-reid based; `datasets/pku/` and
`datasets/pku_depth/` there hold its meta.json and splits.json):

  pku/images/<pid 8 digits>_<camera 2 digits>_<index 4 digits>.jpg         RGB crops
  pku_depth/images/<same file names>.jpg                                    depth crops, 8-bit

`person_id` is the 8-digit number (0..89), `camera_id` the 2-digit one (0 or 1; the two
recordings of each person). Depth is stored as distributed in this layout: 8-bit, kept
1-channel uint8. RGB and depth files with the same name are coupled (Hafner 2018, §4.1.2:
a small time difference between them is possible), so they share `frame_id` = file stem.

Configs: 'rgb', 'depth'. Splits: 'design' (50 persons) and 'test' (40), Hafner 2018,
appendix B.2; draw the 3 validation folds from 'design' with
`jaxreid.datasets.splits.thesis_folds('robotpku', seed)`.
"""

from __future__ import annotations

from jaxreid.datasets import common
from jaxreid.datasets import splits as splits_lib

_LAYOUT = (
    "pku/images/ (RGB) and pku_depth/images/ (depth) holding "
    "<pid 8 digits>_<camera 2 digits>_<index 4 digits>.jpg files with identical names in "
    "both folders (e.g. pku/images/00000012_01_0003.jpg), the layout of the thesis author's code."
)

_CITATION = """\
@article{liu2017online,
  title   = {Online {RGB-D} person re-identification based on metric model update},
  author  = {Liu, Hong and Hu, Liang and Ma, Liqian},
  journal = {CAAI Transactions on Intelligence Technology},
  volume  = {2},
  number  = {1},
  pages   = {48--55},
  year    = {2017}
}
@inproceedings{hafner2019rgb,
  title     = {{RGB}-Depth Cross-Modal Person Re-identification},
  author    = {Hafner, Frank M. and Bhuiyan, Amran and Kooij, Julian F. P. and Granger, Eric},
  booktitle = {IEEE International Conference on Advanced Video and Signal Based Surveillance (AVSS)},
  year      = {2019}
}
"""


class Robotpku(common.ProcessedLayoutMixin, common.ReidBuilder):
    """RobotPKU RGBD-ID, processed layout of the thesis author's code."""

    name = "robotpku"
    BUILDER_CONFIGS = [
        common.ReidConfig(name="rgb", modality="rgb", layout="processed", description="RGB crops."),
        common.ReidConfig(
            name="depth",
            modality="depth",
            layout="processed",
            description="Depth crops, 8-bit as distributed in this layout (1-channel uint8).",
        ),
    ]
    PROCESSED_FOLDERS = {"rgb": "pku", "depth": "pku_depth"}
    DESCRIPTION = __doc__
    CITATION = _CITATION
    HOMEPAGE = "https://github.com/lianghu56/RobotPKU-RGBD-ID-dataset"
    LAYOUT_HELP = _LAYOUT
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
RobotPKU RGBD-ID is downloaded from the links in {HOMEPAGE} ("Dataset Downloads Address").
Arrange the RGB and depth crops as in the thesis author's code
(github.com/frhf/cross-modal-distillation-reidentification, datasets/pku and datasets/pku_depth):
{_LAYOUT}
Build (configs rgb and depth): python -m jaxreid.datasets.robotpku \\
  --manual_dir=/path/to/folder_with_pku_and_pku_depth --data_dir=~/tensorflow_datasets
"""

    def _split_generators(self, dl_manager):
        root = self.manual_folder(dl_manager)
        folder, _, names, other_names = self.processed_folders(root)
        entries = []
        for n in names:
            m = common.PROCESSED_NAME.match(n)
            entries.append((n, int(m["pid"]), int(m["cam"])))
        design, test = splits_lib.ROBOTPKU_DESIGN_IDS, splits_lib.ROBOTPKU_TEST_IDS
        common.design_test_split(
            {e[1] for e in entries}, design, test, f"RobotPKU images in {folder}"
        )
        found = {e[1] for e in entries}
        self.info.metadata["missing_person_ids"] = sorted(
            set(range(splits_lib.ROBOTPKU_NUM_IDS)) - found
        )
        return {
            split: self._generate_examples(
                root, folder, [e for e in entries if e[1] in set(ids)], other_names, split
            )
            for split, ids in (("design", design), ("test", test))
        }

    def _generate_examples(self, root, folder, entries, other_names, split):
        return self.generate_processed(root, folder, entries, other_names, split)


__all__ = ["Robotpku"]
