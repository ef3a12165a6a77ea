"""SYSU-MM01 (Wu et al., ICCV 2017): RGB-infrared re-id, 491 identities, 6 cameras.

Manual download. Layout of the manual folder (as distributed):

  cam1/ ... cam6/<pid, 4 digits>/<image, 4 digits>.jpg
  exp/train_id.txt, exp/val_id.txt, exp/test_id.txt   one line of comma-separated ids

Cameras 1, 2, 4, 5 are RGB and 3, 6 infrared; cameras 1, 2, 3 are indoor (Hafner 2018,
§4.1.3). The official evaluation code's `data_split/train_id.mat` / `test_id.mat`
(MATLAB, variable `id`) are accepted in exp/ in place of the .txt files.

Configs: 'rgb' (cameras 1, 2, 4, 5) and 'infrared' (cameras 3, 6, stored 1-channel uint8).
Splits: 'train' (296 ids), 'val' (99), 'test' (96), as the split files say. Examples are
written in (camera, person id, file name) order, so the test split keeps the per-camera
file-name order that the official gallery permutation `rand_perm_cam.mat` indexes:
`file_index` is the 1-based position of the file in its cam<c>/<pid>/ folder.
"""

from __future__ import annotations

import os
import pathlib

from jaxreid.datasets import common

RGB_CAMERAS = (1, 2, 4, 5)
INFRARED_CAMERAS = (3, 6)
INDOOR_CAMERAS = (1, 2, 3)
SPLITS = ("train", "val", "test")

_LAYOUT = (
    "folders cam1 ... cam6, each with one folder per person id (4 digits, e.g. cam1/0001/) "
    "holding that camera's images (e.g. cam1/0001/0001.jpg), and exp/train_id.txt, "
    "exp/val_id.txt, exp/test_id.txt (one line of comma-separated person ids; "
    "exp/<split>_id.mat with variable 'id' is accepted instead)."
)

_CITATION = """\
@inproceedings{wu2017rgb,
  title     = {{RGB}-Infrared Cross-Modality Person Re-Identification},
  author    = {Wu, Ancong and Zheng, Wei-Shi and Yu, Hong-Xing and Gong, Shaogang and Lai, Jianhuang},
  booktitle = {IEEE International Conference on Computer Vision (ICCV)},
  pages     = {5380--5389},
  year      = {2017}
}
"""


class SysuMm01(common.ReidBuilder):
    """SYSU-MM01 RGB / infrared person re-identification."""

    name = "sysu_mm01"
    BUILDER_CONFIGS = [
        common.ReidConfig(name="rgb", modality="rgb", description="RGB cameras 1, 2, 4, 5."),
        common.ReidConfig(
            name="infrared",
            modality="infrared",
            description="Infrared cameras 3, 6 (1-channel uint8).",
        ),
    ]
    DESCRIPTION = __doc__
    CITATION = _CITATION
    HOMEPAGE = "https://github.com/wuancong/SYSU-MM01"
    LAYOUT_HELP = _LAYOUT
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
SYSU-MM01 is distributed by its authors on request (see {HOMEPAGE}: sign the dataset
agreement and e-mail it to them). Extract the archive and pass the folder that contains
cam1 ... cam6 and exp/ as the manual folder: {_LAYOUT}
Build (configs rgb and infrared): python -m jaxreid.datasets.sysu_mm01 \\
  --manual_dir=/path/to/SYSU-MM01 --data_dir=~/tensorflow_datasets
"""

    def _cameras(self) -> tuple[int, ...]:
        return RGB_CAMERAS if self.builder_config.modality == "rgb" else INFRARED_CAMERAS

    def _split_generators(self, dl_manager):
        root = self.manual_folder(dl_manager)
        all_folders = person_folders(root, range(1, 7), self.layout_error, required=self._cameras())
        split_ids = read_split_ids(root, self.layout_error)
        present = {pid for per_cam in all_folders.values() for pid in per_cam}
        for split, ids in split_ids.items():
            missing = sorted(set(ids) - present)
            if missing:
                raise common.ManualDataError(
                    f"Person ids {missing[:10]}{' ...' if len(missing) > 10 else ''} listed in "
                    f"{split_file_path(root, split)} have no folder cam<c>/<pid>/ under {root}. "
                    "Expected every listed id to have images. Fix: check that all of cam1 ... cam6 "
                    "were extracted completely."
                )
        listed = set().union(*split_ids.values())
        unlisted = sorted(present - listed)
        self.info.metadata["ids_without_split"] = unlisted
        if unlisted:
            common.LOG.warning(
                "sysu_mm01: %d person ids have images but are in no split file: %s",
                len(unlisted),
                unlisted[:20],
            )
        cams = {c: all_folders[c] for c in self._cameras()}
        return {
            split: self._generate_examples(root, cams, split, ids)
            for split, ids in split_ids.items()
        }

    def _generate_examples(self, root: pathlib.Path, cams: dict, split: str, ids):
        modality = self.builder_config.modality
        wanted = set(ids)
        key = 0
        for camera_id in sorted(cams):
            for pid in sorted(p for p in cams[camera_id] if p in wanted):
                files = common.list_images(cams[camera_id][pid])
                for position, path in enumerate(files, start=1):
                    image = self.read_image(path, root)
                    if image is None:
                        continue
                    yield (
                        key,
                        common.example(
                            image,
                            modality,
                            pid,
                            camera_id,
                            "",
                            position,
                            common.relative(path, root),
                        ),
                    )
                    key += 1
        self.report_skipped(split, key)


def split_file_path(root: pathlib.Path, split: str) -> pathlib.Path:
    """exp/<split>_id.txt if present, else exp/<split>_id.mat (either may be missing)."""
    txt = root / "exp" / f"{split}_id.txt"
    mat = root / "exp" / f"{split}_id.mat"
    return txt if txt.exists() or not mat.exists() else mat


def read_split_ids(root: pathlib.Path, layout_error=None) -> dict[str, list[int]]:
    """{'train', 'val', 'test'} -> person ids from root/exp/<split>_id.txt (or .mat).

    When both the .txt and the .mat of a split exist they must list the same ids. The
    splits must be disjoint.
    """
    out = {}
    for split in SPLITS:
        txt = root / "exp" / f"{split}_id.txt"
        mat = root / "exp" / f"{split}_id.mat"
        if not txt.exists() and not mat.exists():
            problem = f"Missing split file {txt} (or {mat.name})."
            if layout_error is not None:
                raise layout_error(root, problem)
            raise common.ManualDataError(
                problem + f" Expected: {_LAYOUT} Fix: add the missing file."
            )
        ids = common.parse_id_text(txt) if txt.exists() else common.parse_id_mat(mat)
        common.check_distinct(ids, txt if txt.exists() else mat)
        if txt.exists() and mat.exists():
            other = common.parse_id_mat(mat)
            if sorted(other) != sorted(ids):
                diff = sorted(set(ids) ^ set(other))
                raise common.ManualDataError(
                    f"Split files {txt} and {mat} disagree (ids {diff[:10]} are in only one). "
                    "Expected the same ids. Fix: remove the one that does not come from the dataset."
                )
        bad = [v for v in ids if v < 1]
        if bad:
            raise common.ManualDataError(
                f"Split file {txt if txt.exists() else mat} has ids {bad[:5]}; expected ids >= 1."
                f"{common.SPLIT_FIX}"
            )
        out[split] = ids
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            both = sorted(set(out[a]) & set(out[b]))
            if both:
                raise common.ManualDataError(
                    f"Person ids {both[:10]} are in both {split_file_path(root, a)} and "
                    f"{split_file_path(root, b)}; expected disjoint splits.{common.SPLIT_FIX}"
                )
    return out


def person_folders(
    root: pathlib.Path, cameras, layout_error, required=()
) -> dict[int, dict[int, pathlib.Path]]:
    """{camera: {pid: folder}} for root/cam<c>/<pid>/; cameras in `required` must exist."""
    out = {}
    missing = [f"cam{c}" for c in required if not (root / f"cam{c}").is_dir()]
    if missing:
        raise layout_error(root, f"Missing camera folder(s) {', '.join(missing)} in {root}.")
    for c in cameras:
        cam_dir = root / f"cam{c}"
        if not cam_dir.is_dir():
            continue
        folders = {}
        with os.scandir(cam_dir) as it:
            names = sorted(e.name for e in it if e.is_dir())
        for name in names:
            if not name.isdigit():
                raise layout_error(
                    root,
                    f"Folder {cam_dir / name} is not a person id folder (expected digits, e.g. {cam_dir}/0001).",
                )
            folders[int(name)] = cam_dir / name
        out[c] = folders
    return out


__all__ = ["SysuMm01", "read_split_ids", "RGB_CAMERAS", "INFRARED_CAMERAS", "INDOOR_CAMERAS"]
