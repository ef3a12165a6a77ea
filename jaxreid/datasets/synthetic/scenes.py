"""Cameras and frames of the synthetic dataset: static scene, viewpoint, crop, light, time (NumPy only).

A camera has a `CameraScene` (background layout shared by all its frames); a frame is a
`FrameParams`: walking phase, viewpoint (yaw), crop scale and position, distance to the
camera, illumination and the seeds of background clutter and sensor noise.
`advance_time` moves a frame along the walk (an RGB-D time offset).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from jaxreid.datasets.synthetic.people import STATURE_M, hsv

# Walking phase advance per video frame: ~0.9 gait cycles/s at 30 frames/s.
PHASE_PER_FRAME = 2.0 * math.pi * 0.9 / 30.0
# Walking speed per video frame (1.3 m/s at 30 frames/s), used by `advance_time`.
METRES_PER_FRAME = 1.3 / 30.0


@dataclasses.dataclass(frozen=True)
class CameraScene:
    """Static scene of one camera: background layout shared by all its frames."""

    camera_id: int
    indoor: bool
    wall_rgb: tuple[float, float, float]
    floor_rgb: tuple[float, float, float]
    wall_ir: float
    floor_ir: float
    wall_distance_m: float  # background wall, beyond the farthest person
    horizon: float  # horizon height above the feet, in body heights (camera height)
    # Fixed objects (cupboards, doors, pillars): [K, 4] boxes (x0, y0, x1, y1) in
    # image-height units relative to the crop, their RGB [K, 3], IR [K] and depth [K] (m).
    object_boxes: tuple[tuple[float, float, float, float], ...]
    object_rgb: tuple[tuple[float, float, float], ...]
    object_ir: tuple[float, ...]
    object_distance_m: tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class FrameParams:
    """One instant seen by one camera.

    yaw: radians, 0 = person faces the camera, pi = back view, +-pi/2 = side views.
    scale: person height as a fraction of image height (before `BodyShape.stature`).
    offset_x: horizontal offset of the body axis from the image centre, in units of
      image height (so it means the same at any aspect ratio).
    ground_y: image row of the feet, fraction of image height.
    """

    scene: CameraScene
    phase: float
    yaw: float
    scale: float
    offset_x: float
    ground_y: float
    distance_m: float
    light_gain: float
    light_tint: tuple[float, float, float]
    light_gradient: tuple[float, float]
    ir_gain: float  # power of the infrared illuminator
    background_pan: float  # horizontal shift of the static scene (the crop moves)
    background_seed: int  # per-frame clutter (posters, passers-by): RGB/IR only
    noise_seed: int  # sensor noise and depth holes


def sample_camera_scene(rng: np.random.Generator, camera_id: int, indoor: bool) -> CameraScene:
    """Draws the static background of one camera."""
    u = rng.uniform
    k = 3
    boxes, obj_rgb, obj_ir, obj_d = [], [], [], []
    for _ in range(k):
        x0 = u(-0.4, 0.6)
        y0 = u(0.0, 0.6)
        boxes.append((x0, y0, x0 + u(0.05, 0.3), y0 + u(0.1, 0.5)))
        obj_rgb.append(hsv(rng.random(), u(0.0, 0.6), u(0.2, 0.9)))
        obj_ir.append(u(0.05, 0.35) if indoor else u(0.25, 0.7))
        obj_d.append(u(5.5, 7.0))
    if indoor:
        wall = hsv(rng.random(), u(0.0, 0.3), u(0.5, 0.9))
        floor = hsv(rng.random(), u(0.0, 0.4), u(0.2, 0.6))
        wall_ir, floor_ir = u(0.08, 0.2), u(0.05, 0.15)
    else:  # sky / facades / pavement: brighter, sunlit infrared background
        wall = hsv(u(0.5, 0.65), u(0.0, 0.4), u(0.6, 1.0))
        floor = hsv(u(0.05, 0.15), u(0.0, 0.2), u(0.35, 0.65))
        wall_ir, floor_ir = u(0.35, 0.6), u(0.25, 0.5)
    return CameraScene(
        camera_id=int(camera_id),
        indoor=bool(indoor),
        wall_rgb=wall,
        floor_rgb=floor,
        wall_ir=wall_ir,
        floor_ir=floor_ir,
        wall_distance_m=u(6.0, 8.0),
        horizon=u(0.85, 1.1),
        object_boxes=tuple(boxes),
        object_rgb=tuple(obj_rgb),
        object_ir=tuple(obj_ir),
        object_distance_m=tuple(obj_d),
    )


def sample_frame(rng: np.random.Generator, scene: CameraScene) -> FrameParams:
    """Draws pose, viewpoint, crop, distance and illumination of one frame."""
    u = rng.uniform
    view = rng.choice(4)  # front, back, left side, right side
    yaw = (0.0, math.pi, math.pi / 2, -math.pi / 2)[view] + u(-0.35, 0.35)
    gain = u(0.6, 1.25) if scene.indoor else u(0.8, 1.5)
    return FrameParams(
        scene=scene,
        phase=u(0.0, 2.0 * math.pi),
        yaw=float(yaw),
        scale=u(0.7, 0.76),
        offset_x=u(-0.04, 0.04),
        ground_y=u(0.94, 0.99),
        distance_m=u(2.0, 4.0),
        light_gain=gain,
        light_tint=(u(0.85, 1.15), u(0.9, 1.1), u(0.85, 1.15)),
        light_gradient=(u(-0.6, 0.6), u(-0.3, 0.3)),
        ir_gain=u(0.8, 1.15),
        background_pan=u(-0.15, 0.15),
        background_seed=int(rng.integers(2**31)),
        noise_seed=int(rng.integers(2**31)),
    )


def advance_time(frame: FrameParams, frames: int) -> FrameParams:
    """The same walk `frames` video frames later (models an RGB-D time offset).

    The crop box stays where it was (it was found in the RGB frame), so the person moves
    inside it: sideways in side views, nearer/farther in front/back views.
    """
    if frames == 0:
        return frame
    step = frames * METRES_PER_FRAME
    # Metres -> image-height units: the person (~STATURE_M) spans `scale` of the image.
    dx = step * math.sin(frame.yaw) / STATURE_M * frame.scale
    return dataclasses.replace(
        frame,
        phase=frame.phase + frames * PHASE_PER_FRAME,
        offset_x=frame.offset_x + dx,
        distance_m=max(0.8, frame.distance_m - step * math.cos(frame.yaw)),
    )
