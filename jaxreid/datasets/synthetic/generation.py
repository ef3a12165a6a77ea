"""Deterministic generation of the synthetic RGB / depth / infrared re-id dataset (NumPy only).

Person ids 1..T are the training identities, the next V the validation identities and
the next E the test identities. Every random choice is seeded from the configuration
seed and the *names* of what is drawn, never from a running generator:

  identity (seed, person_id)             body shape and appearance
  camera   (seed, camera_id)             static background of the camera
  frame    (seed, person_id, camera_id, frame)  pose, viewpoint, crop, light, noise seeds

so any subset of identities, cameras or modalities renders exactly the same images as
the full dataset, in any order.

RGB-D cameras record paired RGB and depth frames (same instant, same `frame_id`; the
depth frame is taken `depth_time_offset` video frames later, RobotPKU-style, when that is
non-zero). Infrared cameras are separate, unpaired, indoor or outdoor (SYSU-MM01-style).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Iterator, Sequence

import numpy as np

from jaxreid.datasets.synthetic import people, render, scenes

SPLITS = ("train", "val", "test")

# Stream tags keep the seeds of different kinds of draws apart.
_IDENTITY, _CAMERA, _FRAME = 1, 2, 3


@dataclasses.dataclass(frozen=True)
class Camera:
    camera_id: int
    indoor: bool = True


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """Size and seed of the synthetic dataset.

    rgbd_frames_per_id: paired RGB + depth frames per identity per RGB-D camera.
    ir_frames_per_id: infrared frames per identity per infrared camera.
    depth_time_offset: depth frames are captured this many video frames (30 fps) after
      their RGB frame (0 = synchronised).
    """

    seed: int = 0
    num_train_ids: int = 100
    num_val_ids: int = 20
    num_test_ids: int = 50
    rgbd_frames_per_id: int = 8
    ir_frames_per_id: int = 8
    height: int = 64
    width: int = 32
    rgbd_cameras: tuple[Camera, ...] = (Camera(1, indoor=True), Camera(2, indoor=True))
    ir_cameras: tuple[Camera, ...] = (Camera(3, indoor=True), Camera(4, indoor=False))
    depth_time_offset: int = 0

    def __post_init__(self):
        # Accept lists / (id, indoor) pairs, e.g. from a JSON or ml_collections config.
        for name in ("rgbd_cameras", "ir_cameras"):
            cams = tuple(c if isinstance(c, Camera) else Camera(*c) for c in getattr(self, name))
            object.__setattr__(self, name, cams)
        for name in (
            "num_train_ids",
            "num_val_ids",
            "num_test_ids",
            "rgbd_frames_per_id",
            "ir_frames_per_id",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"SyntheticConfig.{name}={getattr(self, name)}; expected >= 0")
        if self.height < 8 or self.width < 4:
            raise ValueError(
                f"SyntheticConfig height x width = {self.height}x{self.width}; expected >= 8x4"
            )
        ids = [c.camera_id for c in self.rgbd_cameras + self.ir_cameras]
        if len(set(ids)) != len(ids) or min(ids, default=1) < 1:
            raise ValueError(
                f"SyntheticConfig camera ids {ids}; expected distinct positive integers"
            )

    def split_person_ids(self, split: str) -> range:
        """Person ids of a split: 1-based, train then val then test."""
        t, v = self.num_train_ids, self.num_val_ids
        ranges = {
            "train": range(1, t + 1),
            "val": range(t + 1, t + v + 1),
            "test": range(t + v + 1, t + v + self.num_test_ids + 1),
        }
        if split not in ranges:
            raise ValueError(f"SyntheticConfig split={split!r}; expected one of {SPLITS}")
        return ranges[split]

    def cameras(self, modality: str) -> tuple[Camera, ...]:
        if modality in ("rgb", "depth"):
            return self.rgbd_cameras
        if modality == "infrared":
            return self.ir_cameras
        raise ValueError(
            f"SyntheticConfig modality={modality!r}; expected one of {render.MODALITIES}"
        )

    def frames_per_camera(self, modality: str) -> int:
        self.cameras(modality)  # validates the name
        return self.ir_frames_per_id if modality == "infrared" else self.rgbd_frames_per_id

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    def digest(self) -> str:
        """Short stable hash of every field (names a prepared dataset on disk)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:10]


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


def identity(config: SyntheticConfig, person_id: int) -> people.IdentityParams:
    return people.sample_identity(_rng(config.seed, _IDENTITY, person_id))


def camera_scene(config: SyntheticConfig, camera: Camera) -> scenes.CameraScene:
    return scenes.sample_camera_scene(
        _rng(config.seed, _CAMERA, camera.camera_id), camera.camera_id, camera.indoor
    )


def frame(
    config: SyntheticConfig, person_id: int, camera: Camera, index: int
) -> scenes.FrameParams:
    """Frame params of frame `index` (0-based) of `person_id` in `camera` (the RGB instant)."""
    scene = camera_scene(config, camera)
    return scenes.sample_frame(_rng(config.seed, _FRAME, person_id, camera.camera_id, index), scene)


def frame_id(camera_id: int, person_id: int, index: int) -> str:
    """Key shared by an RGB frame and its simultaneous depth frame."""
    return f"cam{camera_id}/{person_id:04d}/{index + 1:04d}"


def iter_examples(
    config: SyntheticConfig,
    modality: str,
    split: str,
    person_ids: Sequence[int] | None = None,
    batch_size: int = 64,
) -> Iterator[dict]:
    """Yields the examples of one split and modality, in (person, camera, frame) order.

    Each example: image (rgb [H, W, 3] uint8 | depth [H, W, 1] uint16 mm | infrared
    [H, W, 1] uint8), modality, person_id, camera_id, frame_id ('' for infrared),
    file_index (1-based within (camera, person)), filename ('cam1/0003/0007.png').
    person_ids restricts the split to those identities (others in the split are skipped).
    """
    cameras = config.cameras(modality)
    per_camera = config.frames_per_camera(modality)
    ids = config.split_person_ids(split)
    if person_ids is not None:
        ids = [p for p in ids if p in set(person_ids)]
    scene_of = {c.camera_id: camera_scene(config, c) for c in cameras}
    jobs = []  # (person_id, camera_id, index, identity, frame)
    for pid in ids:
        ident = identity(config, pid)
        for cam in cameras:
            for index in range(per_camera):
                rng = _rng(config.seed, _FRAME, pid, cam.camera_id, index)
                fp = scenes.sample_frame(rng, scene_of[cam.camera_id])
                if modality == "depth":
                    fp = scenes.advance_time(fp, config.depth_time_offset)
                jobs.append((pid, cam.camera_id, index, ident, fp))
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        images = render.render_frames(
            [j[3] for j in chunk], [j[4] for j in chunk], modality, config.height, config.width
        )
        for (pid, cam_id, index, _, _), image in zip(chunk, images):
            key = frame_id(cam_id, pid, index)
            yield {
                "image": image,
                "modality": modality,
                "person_id": pid,
                "camera_id": cam_id,
                "frame_id": "" if modality == "infrared" else key,
                "file_index": index + 1,
                "filename": key + ".png",
            }


def generate(
    config: SyntheticConfig = SyntheticConfig(),
    modalities: Sequence[str] = render.MODALITIES,
    person_ids: Sequence[int] | None = None,
) -> dict[str, list[dict]]:
    """All examples: split -> list of examples (see `iter_examples`), modalities in order."""
    out = {}
    for split in SPLITS:
        out[split] = [ex for m in modalities for ex in iter_examples(config, m, split, person_ids)]
    return out


def stack(examples: Sequence[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Examples -> images [N, H, W, C], person_id [N] int32, camera_id [N] int32."""
    images = np.stack([e["image"] for e in examples])
    pids = np.asarray([e["person_id"] for e in examples], np.int32)
    cams = np.asarray([e["camera_id"] for e in examples], np.int32)
    return images, pids, cams
