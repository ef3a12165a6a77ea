"""BIWI RGBD-ID (Munaro et al. 2014): RGB-D re-id, the 78 person instances of the thesis.

Manual download. Two layouts are read.

'distributed' (configs 'rgb', 'depth'), the dataset as distributed:

  Training/<person>/, Testing/Still/<person>/, Testing/Walking/<person>/
    <key>-a_<time>_rgb.jpg        RGB, 1280 x 960
    <key>-b_<time>_depth.pgm      depth, 640 x 480, 16-bit, millimetres
    <key>-c_<time>_userMap.pgm    person labels, 640 x 480, 8-bit (0 = no person)
    (<key>-d_..._skel.txt and <key>-e_..._groundCoeff.txt are not used)

  Files of one frame share <key> (e.g. 000_000012). The person is cropped from both images
  with a margin, using the user map (Hafner 2018, paper §4: "the individuals were cropped
  out in RGB and depth with a margin in all directions"): the bounding box of the user
  map's largest label, widened by `crop_margin` x its size on each side, cut from the
  depth map, and mapped to the RGB image through the Kinect intrinsics of the dataset's
  README (RGB fx 525, depth fx 575.8, principal point (319.5, 239.5) at 640 x 480). The
  2.5 cm RGB-depth baseline is left to the margin. Depth crops are stored 16-bit
  (uint16, millimetres); RGB crops as JPEG (quality 95). Frames whose user map has no
  person cannot be cropped; they are left out and listed in
  `info.metadata['frames_without_person']`.

'processed' (configs 'rgb_processed', 'depth_processed'), the layout of the thesis
author's code (frhf/cross-modal-distillation-reidentification, `datasets/biwi{,_depth}`):

  biwi/images/<person 8 digits>_<camera 2 digits>_<index 4 digits>.jpg, biwi_depth/images/ same names
  (camera 00 = Training, 01 / 02 = the testing sequences). Depth is 8-bit there (uint8).

Instances (Hafner 2018 §4.1.1, after Zhuo et al. 2017): the training recording of a
person and the testing recordings of the same person (other day, other clothes) are two
instances, 28 x 2 + 22 = 78. Instance ids number the (person, training | testing) pairs in
ascending order: this reproduces the identities of the author's meta.json exactly (checked
against it when a meta.json is present), so the appendix B.1 split applies.
`camera_id`: 0 Training, 1 Still, 2 Walking. `frame_id` links the RGB and depth images of
one frame. Splits: 'design' (40 instances) and 'test' (38), Hafner 2018, appendix B.1;
draw the 3 validation folds from 'design' with `jaxreid.datasets.splits.thesis_folds`.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import pathlib
import re

import numpy as np
from PIL import Image as PILImage

from jaxreid.datasets import common
from jaxreid.datasets import splits as splits_lib

SEQUENCES = (("Training", 0), ("Testing/Still", 1), ("Testing/Walking", 2))

# BIWI RGBD-ID README, "Kinect calibration parameters" (pixels at 640 x 480).
RGB_INTRINSICS = (525.0, 525.0, 319.5, 239.5)  # fx, fy, cx, cy
DEPTH_INTRINSICS = (575.8, 575.8, 319.5, 239.5)
INTRINSICS_SIZE = (640, 480)  # width, height the intrinsics refer to

_FILE = re.compile(
    r"^(?P<key>.+)-(?P<kind>[abc])_(?P<time>\d+)_(?P<what>rgb\.jpg|depth\.pgm|userMap\.pgm)$"
)
_KIND = {"rgb.jpg": "rgb", "depth.pgm": "depth", "userMap.pgm": "user"}

_LAYOUT = (
    "either the distributed folders Training/<person>/, Testing/Still/<person>/ and "
    "Testing/Walking/<person>/ holding <key>-a_<time>_rgb.jpg, <key>-b_<time>_depth.pgm and "
    "<key>-c_<time>_userMap.pgm per frame (configs 'rgb', 'depth'), or the processed folders "
    "biwi/images/ and biwi_depth/images/ of the thesis author's code with "
    "<person 8 digits>_<camera 2 digits>_<index 4 digits>.jpg files (configs 'rgb_processed', "
    "'depth_processed')."
)

_CITATION = """\
@incollection{munaro2014one,
  title     = {One-Shot Person Re-identification with a Consumer Depth Camera},
  author    = {Munaro, Matteo and Fossati, Andrea and Basso, Alberto and Menegatti, Emanuele and Van Gool, Luc},
  booktitle = {Person Re-Identification},
  publisher = {Springer},
  pages     = {161--181},
  year      = {2014}
}
@inproceedings{hafner2019rgb,
  title     = {{RGB}-Depth Cross-Modal Person Re-identification},
  author    = {Hafner, Frank M. and Bhuiyan, Amran and Kooij, Julian F. P. and Granger, Eric},
  booktitle = {IEEE International Conference on Advanced Video and Signal Based Surveillance (AVSS)},
  year      = {2019}
}
"""


@dataclasses.dataclass(eq=False)
class BiwiConfig(common.ReidConfig):
    """crop_margin: margin added on each side of the user-map box, as a fraction of the box's
    height (top, bottom) and width (left, right). The thesis gives no number; 0.1 is ours."""

    crop_margin: float = 0.1


class BiwiRgbdId(common.ProcessedLayoutMixin, common.ReidBuilder):
    """BIWI RGBD-ID, 78 person instances, RGB and depth crops."""

    name = "biwi_rgbd_id"
    BUILDER_CONFIGS = [
        BiwiConfig(
            name="rgb",
            modality="rgb",
            layout="distributed",
            description="RGB crops from the distributed frames (user-map box + margin).",
        ),
        BiwiConfig(
            name="depth",
            modality="depth",
            image_dtype="uint16",
            layout="distributed",
            description="16-bit depth crops (mm) from the distributed frames.",
        ),
        BiwiConfig(
            name="rgb_processed",
            modality="rgb",
            layout="processed",
            description="RGB images of the thesis author's processed layout (biwi/images).",
        ),
        BiwiConfig(
            name="depth_processed",
            modality="depth",
            layout="processed",
            description="8-bit depth images of the processed layout (biwi_depth/images), uint8.",
        ),
    ]
    PROCESSED_FOLDERS = {"rgb": "biwi", "depth": "biwi_depth"}
    DESCRIPTION = __doc__
    CITATION = _CITATION
    HOMEPAGE = "http://robotics.dei.unipd.it/reid/index.php/8-dataset/2-overview-biwi"
    LAYOUT_HELP = _LAYOUT
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
BIWI RGBD-ID is distributed by the IAS-Lab, University of Padova, on request ({HOMEPAGE}).
Extract the Training and Testing archives into one folder and pass it as the manual folder:
{_LAYOUT}
Build (configs rgb and depth): python -m jaxreid.datasets.biwi_rgbd_id \\
  --manual_dir=/path/to/BIWI --data_dir=~/tensorflow_datasets
Processed layout: add --config=rgb_processed --config=depth_processed and point
--manual_dir at the folder holding biwi/ and biwi_depth/.
"""

    def _split_generators(self, dl_manager):
        root = self.manual_folder(dl_manager)
        if self.builder_config.layout == "processed":
            folder, _, names, other_names = self.processed_folders(root)
            instance = processed_instances(names + other_names)
            check_meta(root, self.PROCESSED_FOLDERS, instance)
            entries = []
            for n in names:
                m = common.PROCESSED_NAME.match(n)
                entries.append((n, instance[(int(m["pid"]), int(m["cam"]) > 0)], int(m["cam"])))
            self._check_ids({e[1] for e in entries}, folder)
            return {
                split: self.generate_processed(
                    root, folder, [e for e in entries if e[1] in set(ids)], other_names, split
                )
                for split, ids in (
                    ("design", splits_lib.BIWI_DESIGN_IDS),
                    ("test", splits_lib.BIWI_TEST_IDS),
                )
            }
        frames = distributed_frames(root, self.layout_error)
        self._check_ids({f["person_id"] for f in frames}, root)
        self.info.metadata["frames_without_person"] = []
        return {
            split: self._generate_examples(
                root, [f for f in frames if f["person_id"] in set(ids)], split
            )
            for split, ids in (
                ("design", splits_lib.BIWI_DESIGN_IDS),
                ("test", splits_lib.BIWI_TEST_IDS),
            )
        }

    def _check_ids(self, ids, where):
        if len(ids) > splits_lib.BIWI_NUM_IDS:
            raise common.ManualDataError(
                f"Found {len(ids)} person instances in {where}; BIWI RGBD-ID has {splits_lib.BIWI_NUM_IDS} "
                "(Hafner 2018, §4.1.1). Fix: the manual folder should hold only the BIWI RGBD-ID sequences."
            )
        common.design_test_split(
            ids, splits_lib.BIWI_DESIGN_IDS, splits_lib.BIWI_TEST_IDS, f"BIWI instances in {where}"
        )
        self.info.metadata["missing_person_ids"] = sorted(
            set(range(splits_lib.BIWI_NUM_IDS)) - set(ids)
        )

    def _generate_examples(self, root: pathlib.Path, frames, split):
        cfg = self.builder_config
        key, empty = 0, []
        for f in frames:
            try:
                image = crop_frame(f, root, cfg.modality, cfg.crop_margin)
            except common.UnreadableImageError as e:
                self.unreadable(e, root)
                continue
            if image is None:  # nothing to crop
                empty.append(f["frame_id"])
                continue
            path = f[cfg.modality]
            yield (
                key,
                common.example(
                    image,
                    cfg.modality,
                    f["person_id"],
                    f["camera_id"],
                    f["frame_id"],
                    f["file_index"],
                    common.relative(path, root),
                ),
            )
            key += 1
        if empty:
            self.info.metadata["frames_without_person"].extend(empty)
            common.LOG.warning(
                "biwi_rgbd_id, split %s: %d frame(s) without a person in the user map left out: %s",
                split,
                len(empty),
                ", ".join(empty[:10]) + (" ..." if len(empty) > 10 else ""),
            )
        self.report_skipped(split, key)


# ---- distributed layout ------------------------------------------------------------------------


def distributed_frames(root: pathlib.Path, layout_error) -> list[dict]:
    """Frames of Training/ and Testing/{Still,Walking}/, in (instance, camera, key) order.

    Each frame: {'person_id' (instance), 'camera_id', 'frame_id', 'file_index', 'rgb',
    'depth', 'user' (paths; None if missing)}.
    """
    missing = [s for s, _ in SEQUENCES if not (root / s).is_dir()]
    if missing:
        raise layout_error(root, f"Missing folder(s) {', '.join(missing)} in {root}.")
    folders = []  # (person, camera, folder)
    for seq, camera in SEQUENCES:
        for p in sorted((root / seq).iterdir()):
            if not p.is_dir():
                continue
            if not p.name.isdigit():
                raise layout_error(
                    root,
                    f"Folder {p} is not a person folder (expected digits, e.g. {root / seq}/000).",
                )
            folders.append((int(p.name), camera, p))
    if not folders:
        raise layout_error(root, f"No person folders in {root}/Training or {root}/Testing.")
    instance = {
        k: i for i, k in enumerate(sorted({(person, camera > 0) for person, camera, _ in folders}))
    }
    frames = []
    for person, camera, folder in folders:
        files: dict[str, dict] = {}
        with os.scandir(folder) as it:
            for e in it:
                m = _FILE.match(e.name)
                if m:
                    files.setdefault(m["key"], {})[_KIND[m["what"]]] = folder / e.name
        keys = sorted(k for k, v in files.items() if "rgb" in v or "depth" in v)
        if not keys:
            raise layout_error(
                root,
                f"Folder {folder} has no <key>-a_<time>_rgb.jpg / <key>-b_<time>_depth.pgm files.",
            )
        seq = folder.parent.relative_to(root).as_posix()
        for position, k in enumerate(keys, start=1):
            frames.append(
                {
                    "person_id": instance[(person, camera > 0)],
                    "camera_id": camera,
                    "frame_id": f"{seq}/{folder.name}/{k}",
                    "file_index": position,
                    "rgb": files[k].get("rgb"),
                    "depth": files[k].get("depth"),
                    "user": files[k].get("user"),
                    "folder": folder,
                    "key": k,
                }
            )
    frames.sort(key=lambda f: (f["person_id"], f["camera_id"], f["key"]))
    return frames


def read_pgm(path: pathlib.Path) -> np.ndarray:
    """Binary PGM (P5) -> [H, W] uint8 (maxval < 256) or uint16 (big-endian samples)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise common.UnreadableImageError(
            path, f"cannot open the file ({e.strerror or e})"
        ) from None
    header, pos = [], 2
    if data[:2] != b"P5":
        raise common.UnreadableImageError(path, "not a binary PGM (expected the 'P5' magic number)")
    while len(header) < 3:
        while pos < len(data) and data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":  # comment line
            pos = data.find(b"\n", pos) + 1 or len(data)
            continue
        start = pos
        while pos < len(data) and data[pos : pos + 1].isdigit():
            pos += 1
        if start == pos:
            raise common.UnreadableImageError(path, "malformed PGM header")
        header.append(int(data[start:pos]))
    width, height, maxval = header
    pos += 1  # the single whitespace after maxval
    dtype = np.dtype(">u2") if maxval > 255 else np.dtype(np.uint8)
    size = width * height * dtype.itemsize
    if width <= 0 or height <= 0 or len(data) - pos < size:
        raise common.UnreadableImageError(
            path,
            f"truncated PGM: {len(data) - pos} bytes of pixel data, expected {size} for {width} x {height}",
        )
    return (
        np.frombuffer(data, dtype, count=width * height, offset=pos)
        .reshape(height, width)
        .astype(dtype.newbyteorder("="))
    )


def person_box(user_map: np.ndarray, margin: float) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right), end-exclusive, of the largest user-map label plus margin.

    user_map: [H, W] integer labels, 0 = no person. The box of the label with the most
    pixels is widened by margin x its height (top, bottom) and width (left, right),
    rounded outwards and clipped to the map. None if there is no labelled pixel.
    """
    labels, counts = np.unique(user_map[user_map > 0], return_counts=True)
    if labels.size == 0:
        return None
    rows, cols = np.nonzero(user_map == labels[np.argmax(counts)])
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    dy, dx = margin * (bottom - top), margin * (right - left)
    h, w = user_map.shape
    return (
        max(0, math.floor(top - dy)),
        min(h, math.ceil(bottom + dy)),
        max(0, math.floor(left - dx)),
        min(w, math.ceil(right + dx)),
    )


def depth_box_to_rgb(box, depth_shape, rgb_shape) -> tuple[int, int, int, int]:
    """Maps a depth-image box (top, bottom, left, right) to the RGB image.

    Pixel edges are scaled to the 640 x 480 frame of the intrinsics, moved from the depth
    camera to the RGB camera by the ratio of focal lengths about the principal points, and
    scaled to the RGB resolution; rounded outwards and clipped.
    """
    top, bottom, left, right = box
    dh, dw = depth_shape
    rh, rw = rgb_shape
    iw, ih = INTRINSICS_SIZE
    dfx, dfy, dcx, dcy = DEPTH_INTRINSICS
    rfx, rfy, rcx, rcy = RGB_INTRINSICS

    def to_rgb_x(u):
        return (rcx + (u * iw / dw - dcx) * rfx / dfx) * rw / iw

    def to_rgb_y(v):
        return (rcy + (v * ih / dh - dcy) * rfy / dfy) * rh / ih

    return (
        max(0, math.floor(to_rgb_y(top))),
        min(rh, math.ceil(to_rgb_y(bottom))),
        max(0, math.floor(to_rgb_x(left))),
        min(rw, math.ceil(to_rgb_x(right))),
    )


def crop_frame(frame: dict, root: pathlib.Path, modality: str, margin: float) -> bytes | None:
    """Encoded crop of one frame's RGB (JPEG) or depth (16-bit PNG); None if no person."""
    for kind, suffix in (("user", "userMap.pgm"), ("rgb", "rgb.jpg"), ("depth", "depth.pgm")):
        if (
            frame[kind] is None
        ):  # required in both configs, so 'rgb' and 'depth' hold the same frames
            raise common.UnreadableImageError(
                frame["folder"] / f"{frame['key']}-*_{suffix}",
                f"frame {frame['frame_id']} has no *_{suffix} file (every frame needs rgb.jpg, depth.pgm and userMap.pgm)",
            )
    user = read_pgm(frame["user"])
    box = person_box(user, margin)
    if box is None:
        return None
    if modality == "depth":
        depth = read_pgm(frame["depth"])
        if depth.shape != user.shape:
            raise common.UnreadableImageError(
                frame["depth"],
                f"depth is {depth.shape}, its user map {user.shape}; expected equal sizes",
            )
        top, bottom, left, right = box
        return common.encode_png(
            np.ascontiguousarray(depth[top:bottom, left:right].astype(np.uint16))
        )
    path = frame["rgb"]
    try:
        with PILImage.open(io.BytesIO(path.read_bytes())) as im:
            im.load()
            im = im.convert("RGB")
    except OSError as e:
        raise common.UnreadableImageError(path, f"not a decodable image ({e})") from None
    top, bottom, left, right = depth_box_to_rgb(box, user.shape, (im.height, im.width))
    if bottom <= top or right <= left:
        raise common.UnreadableImageError(
            path, f"the person box maps outside the RGB image ({im.width} x {im.height})"
        )
    return common.encode_jpeg(im.crop((left, top, right, bottom)))


# ---- processed layout --------------------------------------------------------------------------


def processed_instances(names) -> dict[tuple[int, bool], int]:
    """{(person, is_testing): instance id}: the pairs in ascending order, numbered from 0."""
    keys = set()
    for n in names:
        m = common.PROCESSED_NAME.match(n)
        keys.add((int(m["pid"]), int(m["cam"]) > 0))
    return {k: i for i, k in enumerate(sorted(keys))}


def check_meta(root: pathlib.Path, folders: dict, instance: dict) -> None:
    """Checks the instance numbering against the author's meta.json files, when present."""
    for name in folders.values():
        path = root / name / "meta.json"
        if not path.is_file():
            continue
        try:
            identities = json.loads(path.read_text())["identities"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise common.ManualDataError(
                f"Cannot read {path}: {e!r}; expected the author's meta.json with 'identities'. "
                "Fix: restore it from the author's repository or delete it (it is optional)."
            ) from None
        for inst, cams in enumerate(identities):
            for files in cams:
                for n in files:
                    m = common.PROCESSED_NAME.match(n)
                    ours = instance.get((int(m["pid"]), int(m["cam"]) > 0)) if m else None
                    if m and ours is not None and ours != inst:
                        raise common.ManualDataError(
                            f"{path} puts {n} in identity {inst}, but the file-name rule gives instance {ours}. "
                            "Expected the author's numbering (person, training | testing) in ascending order. "
                            "Fix: check that the images folder belongs to this meta.json."
                        )


__all__ = [
    "BiwiRgbdId",
    "BiwiConfig",
    "read_pgm",
    "person_box",
    "depth_box_to_rgb",
    "processed_instances",
]
