"""Procedural renderer of walking people for RGB, depth and infrared cameras (NumPy only).

A person is an `IdentityParams`: a `BodyShape` (everything with 3-D extent: body
proportions, posture, gait, hair style, hat, coat or skirt, carried bag) and an `Appearance` (surface properties:
colours, clothing pattern, near-infrared reflectance of each material). A frame is a
`FrameParams`: walking phase, viewpoint (yaw), crop scale and position, distance to the
camera, illumination and the seeds of background clutter and sensor noise.

Rendering is split in two so that what each modality can see is fixed by construction:

  rasterise(shapes, frames, H, W)  geometry only -> part labels, depth relief, surface coords
  shade_rgb / depth / infrared turn the geometry into pixels:
    rgb       shape + colours + patterns, illumination and background clutter
    depth     shape only (metres -> uint16 millimetres), distance-dependent noise,
              quantisation and holes like a Kinect (0 = no measurement)
    infrared  shape + material reflectance (one grey level per material, no hue)

Depth never reads `Appearance`, infrared never reads the RGB colours. Everything is
vectorised over a batch of frames `[N, H, W]`; per-frame random draws use a generator
seeded by the frame's own seeds, so a frame renders identically whatever batch it is in.
Only elementwise NumPy operations touch pixel arrays, which keeps batching bit-exact.
"""

from __future__ import annotations

import colorsys
import dataclasses
import math
from typing import Sequence

import numpy as np

MODALITIES = ("rgb", "depth", "infrared")

# Real-world scale of the body model: body coordinates are in units of the person's
# height, 1.0 == STATURE_M * BodyShape.stature metres.
STATURE_M = 1.75
# Walking phase advance per video frame: ~0.9 gait cycles/s at 30 frames/s.
PHASE_PER_FRAME = 2.0 * math.pi * 0.9 / 30.0
# Walking speed per video frame (1.3 m/s at 30 frames/s), used by `advance_time`.
METRES_PER_FRAME = 1.3 / 30.0

# Part labels of the rasterised geometry. Labels are geometric (which body part a pixel
# shows); which colour a label gets (e.g. forearm = sleeve or skin) is appearance.
BACKGROUND, FACE, HAIR, SKIN, UPPER, SLEEVE, FOREARM, LOWER, SHIN, SHOES, BAG, STRAP, HAT = range(
    13
)
NUM_LABELS = 13


@dataclasses.dataclass(frozen=True)
class BodyShape:
    """Identity attributes with 3-D extent: visible to every modality, including depth.

    Lengths are in body-height units (1.0 = the person's stature). Continuous body
    measurements vary by about +-20-30 % (two or three pixels at 64x32, comparable to the
    pose changes); with the coarse silhouette (build, hair style, hat, coat or skirt, bag)
    they are what depth can use.
    """

    stature: float  # relative height, multiplies the crop scale (~N(1, 0.08))
    head_radius: float
    shoulder_half_width: float
    hip_half_width: float
    torso_half_depth: float  # chest thickness / 2, seen from the side
    hip_height: float  # leg length
    shoulder_height: float
    arm_length: float
    arm_radius: float
    leg_radius: float
    arm_swing: float  # radians, gait amplitude
    leg_swing: float  # radians
    lean: float  # forward lean of the upper body, radians (posture)
    hair_volume: float  # extra radius of the hair around the skull
    hair_style: int  # 0 short, 1 long, 2 bun, 3 hat
    hair_length: float  # long hair hangs this far below the head centre
    garment: int  # 0 trousers and top, 1 knee-long coat, 2 skirt
    garment_flare: float  # widening of the coat / skirt hem relative to the hips
    bag_type: int  # 0 none, 1 shoulder bag, 2 backpack
    bag_side: int  # +1 / -1: side of a shoulder bag
    bag_size: float  # scales the bag box


@dataclasses.dataclass(frozen=True)
class Appearance:
    """Surface attributes: seen by RGB (colours) and infrared (reflectance), not by depth.

    Colours are RGB in [0, 1]. `*_ir` are near-infrared reflectances in [0, 1]: a property
    of the material, only loosely correlated with its visible brightness and unrelated to
    its hue.
    """

    skin_rgb: tuple[float, float, float]
    hair_rgb: tuple[float, float, float]
    upper_rgb: tuple[float, float, float]
    pattern_rgb: tuple[float, float, float]
    lower_rgb: tuple[float, float, float]
    shoes_rgb: tuple[float, float, float]
    bag_rgb: tuple[float, float, float]
    hat_rgb: tuple[float, float, float]
    pattern: int  # 0 plain, 1 horizontal stripes, 2 chest logo, 3 open jacket
    stripe_frequency: float  # stripes per torso height
    hairline: float  # fraction of the head (from the top) covered by hair, front view
    long_sleeves: bool
    shorts: bool
    skin_ir: float  # warm skin: bright in infrared
    hair_ir: float
    upper_ir: float
    pattern_ir: float
    lower_ir: float
    shoes_ir: float
    bag_ir: float
    hat_ir: float


@dataclasses.dataclass(frozen=True)
class IdentityParams:
    """One person: `shape` (seen by all modalities) and `appearance` (not seen by depth)."""

    shape: BodyShape
    appearance: Appearance


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


# --------------------------------------------------------------------------------------
# Sampling.


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (float(r), float(g), float(b))


def _sample_garment_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    """Clothing colour: many people wear dark or neutral clothes, which makes RGB harder."""
    kind = rng.random()
    if kind < 0.35:  # black / grey / white / navy
        v = float(rng.choice([0.12, 0.25, 0.45, 0.7, 0.9])) + float(rng.uniform(-0.05, 0.05))
        return _hsv(rng.uniform(0.55, 0.7), rng.uniform(0.0, 0.25), v)
    return _hsv(rng.random(), rng.uniform(0.35, 0.95), rng.uniform(0.3, 0.95))


def _luminance(rgb: Sequence[float]) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def _sample_ir(rng: np.random.Generator, rgb: Sequence[float]) -> float:
    # Near-infrared reflectance depends on dye and fibre more than on visible colour:
    # only partly tied to visible brightness, never to hue.
    return float(np.clip(0.35 * _luminance(rgb) + rng.uniform(0.1, 0.75), 0.05, 1.0))


def sample_identity(rng: np.random.Generator) -> IdentityParams:
    """Draws one person. rng: a NumPy Generator (seed it per person for determinism)."""
    u = rng.uniform
    build = u(-1.0, 1.0)  # slim .. broad: widths and limb thickness move together
    shape = BodyShape(
        stature=float(np.clip(rng.normal(1.0, 0.08), 0.8, 1.2)),
        head_radius=u(0.05, 0.085),
        shoulder_half_width=0.118 + 0.035 * build + u(-0.008, 0.008),
        hip_half_width=0.097 + 0.03 * build + u(-0.01, 0.01),
        torso_half_depth=0.067 + 0.025 * build + u(-0.006, 0.006),
        hip_height=u(0.43, 0.57),
        shoulder_height=u(0.78, 0.84),
        arm_length=u(0.35, 0.43),
        arm_radius=0.029 + 0.012 * build,
        leg_radius=0.042 + 0.018 * build,
        arm_swing=u(0.1, 0.6),
        leg_swing=u(0.2, 0.5),
        lean=u(0.0, 0.2),
        hair_volume=u(0.0, 0.045),
        hair_style=int(rng.choice(4, p=[0.3, 0.3, 0.15, 0.25])),
        hair_length=u(0.06, 0.22),
        garment=int(rng.choice(3, p=[0.5, 0.3, 0.2])),
        garment_flare=u(1.05, 1.8),
        bag_type=int(rng.choice(3, p=[0.35, 0.35, 0.3])),
        bag_side=int(rng.choice([-1, 1])),
        bag_size=u(0.9, 2.0),
    )
    skin_v = u(0.35, 0.95)
    skin_rgb = _hsv(u(0.03, 0.09), u(0.3, 0.6), skin_v)
    hair_rgb = _hsv(u(0.02, 0.12), u(0.3, 0.8), float(rng.choice([0.08, 0.15, 0.3, 0.55])))
    upper_rgb = _sample_garment_colour(rng)
    pattern_rgb = _sample_garment_colour(rng)
    lower_rgb = _sample_garment_colour(rng)
    shoes_rgb = _hsv(rng.random(), u(0.0, 0.4), float(rng.choice([0.1, 0.3, 0.9])))
    bag_rgb = _sample_garment_colour(rng)
    hat_rgb = _sample_garment_colour(rng)
    appearance = Appearance(
        skin_rgb=skin_rgb,
        hair_rgb=hair_rgb,
        upper_rgb=upper_rgb,
        pattern_rgb=pattern_rgb,
        lower_rgb=lower_rgb,
        shoes_rgb=shoes_rgb,
        bag_rgb=bag_rgb,
        hat_rgb=hat_rgb,
        pattern=int(rng.choice(4, p=[0.4, 0.25, 0.2, 0.15])),
        stripe_frequency=u(3.0, 7.0),
        hairline=u(0.2, 0.45),
        long_sleeves=bool(rng.random() < 0.6),
        shorts=bool(rng.random() < 0.2),
        skin_ir=u(0.8, 0.95),
        hair_ir=u(0.1, 0.4),
        upper_ir=_sample_ir(rng, upper_rgb),
        pattern_ir=_sample_ir(rng, pattern_rgb),
        lower_ir=_sample_ir(rng, lower_rgb),
        shoes_ir=_sample_ir(rng, shoes_rgb),
        bag_ir=_sample_ir(rng, bag_rgb),
        hat_ir=_sample_ir(rng, hat_rgb),
    )
    return IdentityParams(shape=shape, appearance=appearance)


def sample_camera_scene(rng: np.random.Generator, camera_id: int, indoor: bool) -> CameraScene:
    """Draws the static background of one camera."""
    u = rng.uniform
    k = 3
    boxes, obj_rgb, obj_ir, obj_d = [], [], [], []
    for _ in range(k):
        x0 = u(-0.4, 0.6)
        y0 = u(0.0, 0.6)
        boxes.append((x0, y0, x0 + u(0.05, 0.3), y0 + u(0.1, 0.5)))
        obj_rgb.append(_hsv(rng.random(), u(0.0, 0.6), u(0.2, 0.9)))
        obj_ir.append(u(0.05, 0.35) if indoor else u(0.25, 0.7))
        obj_d.append(u(5.5, 7.0))
    if indoor:
        wall = _hsv(rng.random(), u(0.0, 0.3), u(0.5, 0.9))
        floor = _hsv(rng.random(), u(0.0, 0.4), u(0.2, 0.6))
        wall_ir, floor_ir = u(0.08, 0.2), u(0.05, 0.15)
    else:  # sky / facades / pavement: brighter, sunlit infrared background
        wall = _hsv(u(0.5, 0.65), u(0.0, 0.4), u(0.6, 1.0))
        floor = _hsv(u(0.05, 0.15), u(0.0, 0.2), u(0.35, 0.65))
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


# --------------------------------------------------------------------------------------
# Geometry.


@dataclasses.dataclass
class Geometry:
    """Rasterised bodies, batch of N frames.

    label: [N, H, W] int8 part label (BACKGROUND where no person).
    z:     [N, H, W] float32 depth offset of the visible surface from the body axis, in
           metres (negative = towards the camera); +inf on background.
    u, v:  [N, H, W] float32 surface coordinates of the visible part (u across in [-1, 1],
           v along in [0, 1]).
    bulge: [N, H, W] float32 in [0, 1]: 1 where the surface faces the camera, 0 at edges.
    """

    label: np.ndarray
    z: np.ndarray
    u: np.ndarray
    v: np.ndarray
    bulge: np.ndarray


class _Canvas:
    """Z-buffer over a batch of frames: each primitive keeps the pixels where it is nearest.

    Primitives are evaluated only inside a window of rows/columns that contains their
    extent in every frame of the batch. Pixel values do not depend on the window (it only
    skips pixels the primitive cannot cover), so results stay independent of the batch.
    """

    def __init__(self, n: int, height: int, width: int):
        shape = (n, height, width)
        self.height, self.width = height, width
        self.xx, self.yy = _pixel_grid(height, width)
        self.label = np.zeros(shape, np.int8)
        self.z = np.full(shape, np.inf, np.float32)
        self.u = np.zeros(shape, np.float32)
        self.v = np.zeros(shape, np.float32)
        self.bulge = np.zeros(shape, np.float32)

    def window(self, x_lo, x_hi, y_lo, y_hi):
        """Slices of rows and columns whose pixel centres may lie in [lo, hi] (image-height units)."""
        h = self.height

        def span(lo, hi, size):
            # Pixel i has its centre at (i + 0.5) / h; one pixel of margin against rounding.
            start = int(np.floor(float(np.min(lo)) * h - 0.5)) - 1
            stop = int(np.ceil(float(np.max(hi)) * h - 0.5)) + 2
            return slice(min(max(start, 0), size), min(max(stop, 0), size))

        rows = span(y_lo, y_hi, self.height)
        cols = span(x_lo, x_hi, self.width)
        return rows, cols, self.xx[:, :, cols], self.yy[:, rows, :]

    def draw(self, rows, cols, inside, z, label, u, v, bulge):
        view = (slice(None), rows, cols)
        keep = inside & (z < self.z[view])
        np.copyto(self.z[view], z, where=keep)
        np.copyto(self.label[view], np.int8(label), where=keep)
        np.copyto(self.u[view], u, where=keep)
        np.copyto(self.v[view], v, where=keep)
        np.copyto(self.bulge[view], bulge, where=keep)


def _col(values) -> np.ndarray:
    """Per-frame scalars -> [N, 1, 1] float32 for broadcasting against pixel grids."""
    return np.asarray(values, np.float32).reshape(-1, 1, 1)


_EPS = np.float32(1e-12)
# Depth per disparity step of a Kinect-like structured-light sensor: 1 / (c * depth).
_DISPARITY_M = np.float32(0.00285)


def _capsule(canvas, p0, p1, radius, radius_m, label):
    """Draws segments p0 -> p1 (each (x, y, z) of [N,1,1]) thickened to `radius`.

    x, y, radius in image-height units; z and radius_m (relief) in metres.
    """
    x0, y0, z0 = p0
    x1, y1, z1 = p1
    rows, cols, xx, yy = canvas.window(
        np.minimum(x0, x1) - radius,
        np.maximum(x0, x1) + radius,
        np.minimum(y0, y1) - radius,
        np.maximum(y0, y1) + radius,
    )
    dx, dy = x1 - x0, y1 - y0
    len2 = dx * dx + dy * dy + _EPS
    t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / len2, 0.0, 1.0)
    ex = xx - (x0 + t * dx)
    ey = yy - (y0 + t * dy)
    r2 = radius * radius
    d2 = ex * ex + ey * ey
    inside = d2 < r2
    bulge = np.sqrt(np.clip(1.0 - d2 / (r2 + _EPS), 0.0, 1.0))
    z = z0 + t * (z1 - z0) - radius_m * bulge
    # Signed distance across the segment, for patterns.
    across = (ex * dy - ey * dx) / (np.sqrt(len2) * (radius + _EPS))
    canvas.draw(rows, cols, inside, z, label, across, t, bulge)


def _ellipse(canvas, centre, rx, ry, radius_m, label):
    cx, cy, cz = centre
    rows, cols, xx, yy = canvas.window(cx - rx, cx + rx, cy - ry, cy + ry)
    qx = (xx - cx) / (rx + _EPS)
    qy = (yy - cy) / (ry + _EPS)
    q = qx * qx + qy * qy
    inside = (q < 1.0) & (rx > 0.0)  # zero radius = absent part
    bulge = np.sqrt(np.clip(1.0 - q, 0.0, 1.0))
    z = cz - radius_m * bulge
    canvas.draw(rows, cols, inside, z, label, qx, (qy + 1.0) * 0.5, bulge)


def _trapezoid(
    canvas, cx_top, cx_bottom, y_top, y_bottom, half_top, half_bottom, cz, depth_m, label
):
    """Trapezoid with horizontal top and bottom (torso, coat, skirt); centre and
    half-width are interpolated from top to bottom."""
    half_max = np.maximum(half_top, half_bottom)
    rows, cols, xx, yy = canvas.window(
        np.minimum(cx_top, cx_bottom) - half_max,
        np.maximum(cx_top, cx_bottom) + half_max,
        y_top,
        y_bottom,
    )
    v = (yy - y_top) / (y_bottom - y_top)
    vc = np.clip(v, 0.0, 1.0)
    half = half_top + vc * (half_bottom - half_top)
    across = (xx - (cx_top + vc * (cx_bottom - cx_top))) / (half + _EPS)
    inside = (v >= 0.0) & (v <= 1.0) & (np.abs(across) < 1.0) & (half > 0.0)
    bulge = np.sqrt(np.clip(1.0 - across * across, 0.0, 1.0))
    z = cz - depth_m * bulge
    canvas.draw(rows, cols, inside, z, label, across, v, bulge)


def _box(canvas, cx, cy, half_x, half_y, cz, depth_m, label):
    rows, cols, xx, yy = canvas.window(cx - half_x, cx + half_x, cy - half_y, cy + half_y)
    across = (xx - cx) / (half_x + _EPS)
    v = (yy - (cy - half_y)) / (2.0 * half_y + _EPS)
    inside = (np.abs(across) < 1.0) & (v >= 0.0) & (v <= 1.0) & (half_x > 0.0)
    bulge = np.sqrt(np.clip(1.0 - across * across, 0.0, 1.0))
    z = cz - depth_m * bulge
    canvas.draw(rows, cols, inside, z, label, across, v, bulge)


def _pixel_grid(height: int, width: int):
    """Pixel centres in image-height units: yy [1, H, 1] in (0, 1), xx [1, 1, W]."""
    yy = ((np.arange(height, dtype=np.float32) + 0.5) / height).reshape(1, height, 1)
    xx = ((np.arange(width, dtype=np.float32) + 0.5) / height).reshape(1, 1, width)
    return xx, yy


class _Projector:
    """Body coordinates (x right, y up, z forward; body-height units) -> image + depth.

    Rotation by yaw about the vertical axis, orthographic projection (a person is small
    compared with the distance), then crop scale and position. Depth offsets in metres.
    """

    def __init__(self, shape: BodyShape, frame: FrameParams, width_over_height: float):
        self.c = math.cos(frame.yaw)
        self.s = math.sin(frame.yaw)
        self.scale = frame.scale * shape.stature
        self.cx = 0.5 * width_over_height + frame.offset_x
        self.ground = frame.ground_y
        self.metres = STATURE_M * shape.stature
        self.hip = shape.hip_height
        self.lean = math.sin(shape.lean)

    def point(self, x, y, z):
        # Posture: the upper body leans forward about the hips.
        z = z + self.lean * max(0.0, y - self.hip)
        xr = x * self.c + z * self.s
        zr = x * self.s - z * self.c  # depth offset: forward (z>0) faces the camera at yaw 0
        return (self.cx + self.scale * xr, self.ground - self.scale * y, self.metres * zr)

    def width(self, lateral, depth):
        """Projected half-width of a body section with half-extents (lateral, depth)."""
        return self.scale * math.hypot(lateral * self.c, depth * self.s)


def _frame_primitives(shape: BodyShape, frame: FrameParams, width_over_height: float):
    """Per-frame primitive parameters (Python scalars): the pose of one frame.

    Returns a dict name -> tuple of floats; every frame yields the same keys so the batch
    can be stacked. Absent parts (no bag) get zero size.
    """
    pr = _Projector(shape, frame, width_over_height)
    out = {}
    sh = shape
    # Legs: hip joint, swing forward/backward, knee bends when the leg trails.
    hip_y = sh.hip_height
    thigh = 0.5 * hip_y
    shin = 0.5 * hip_y - 0.03
    feet = {}
    for side, sign in (("r", 1.0), ("l", -1.0)):
        swing = sign * sh.leg_swing * math.sin(frame.phase)
        knee_flex = 0.6 * sh.leg_swing * max(0.0, math.sin(frame.phase + sign * math.pi / 2))
        hx = sign * 0.55 * sh.hip_half_width
        knee = (hx, hip_y - thigh * math.cos(swing), thigh * math.sin(swing))
        ankle_angle = swing - knee_flex
        ankle = (hx, knee[1] - shin * math.cos(ankle_angle), knee[2] + shin * math.sin(ankle_angle))
        feet[side] = (knee, ankle)
    # Lift the body so the lower foot touches the ground.
    lift = 0.03 - min(feet["r"][1][1], feet["l"][1][1])
    pr.hip = hip_y + lift
    for side, sign in (("r", 1.0), ("l", -1.0)):
        knee, ankle = feet[side]
        hip = pr.point(sign * 0.55 * sh.hip_half_width, hip_y + lift, 0.0)
        k = pr.point(knee[0], knee[1] + lift, knee[2])
        a = pr.point(ankle[0], ankle[1] + lift, ankle[2])
        toe = pr.point(ankle[0], ankle[1] + lift - 0.01, ankle[2] + 0.07)
        out["thigh_" + side] = (*hip, *k, pr.scale * sh.leg_radius, pr.metres * sh.leg_radius)
        out["shin_" + side] = (
            *k,
            *a,
            pr.scale * sh.leg_radius * 0.85,
            pr.metres * sh.leg_radius * 0.85,
        )
        out["foot_" + side] = (*a, *toe, pr.scale * 0.03, pr.metres * 0.03)
    # Torso: trapezoid from shoulders to hips.
    sh_y = sh.shoulder_height + lift
    torso_top = pr.point(0.0, sh_y, 0.0)
    torso_bottom = pr.point(0.0, hip_y + lift - 0.02, 0.0)
    out["torso"] = (
        torso_top[0],
        torso_bottom[0],
        torso_top[1],
        torso_bottom[1],
        pr.width(sh.shoulder_half_width - 0.015, sh.torso_half_depth),
        pr.width(sh.hip_half_width, sh.torso_half_depth * 0.9),
        0.0,
        pr.metres * sh.torso_half_depth,
    )
    # Arms: swing opposite to the legs; the forearm bends forward.
    for side, sign in (("r", 1.0), ("l", -1.0)):
        swing = -sign * sh.arm_swing * math.sin(frame.phase)
        sx = sign * (sh.shoulder_half_width - 0.01)
        upper = 0.48 * sh.arm_length
        lower = 0.52 * sh.arm_length
        elbow = (sx + sign * 0.012, sh_y - 0.02 - upper * math.cos(swing), upper * math.sin(swing))
        bend = swing + 0.15 + 0.3 * max(0.0, math.sin(swing))
        wrist = (elbow[0], elbow[1] - lower * math.cos(bend), elbow[2] + lower * math.sin(bend))
        hand = (wrist[0], wrist[1] - 0.04 * math.cos(bend), wrist[2] + 0.04 * math.sin(bend))
        s0 = pr.point(sx, sh_y - 0.02, 0.0)
        e = pr.point(*elbow)
        w = pr.point(*wrist)
        h = pr.point(*hand)
        out["upper_arm_" + side] = (*s0, *e, pr.scale * sh.arm_radius, pr.metres * sh.arm_radius)
        out["forearm_" + side] = (
            *e,
            *w,
            pr.scale * sh.arm_radius * 0.85,
            pr.metres * sh.arm_radius * 0.85,
        )
        out["hand_" + side] = (
            *w,
            *h,
            pr.scale * sh.arm_radius * 0.9,
            pr.metres * sh.arm_radius * 0.9,
        )
    # Neck, head, hair (volume behind the head, optional long hair down the back).
    head_y = sh_y + 0.03 + sh.head_radius
    neck0 = pr.point(0.0, sh_y - 0.01, 0.0)
    neck1 = pr.point(0.0, head_y - 0.5 * sh.head_radius, 0.005)
    out["neck"] = (*neck0, *neck1, pr.scale * 0.028, pr.metres * 0.028)
    head = pr.point(0.0, head_y, 0.01)
    out["head"] = (
        *head,
        pr.width(sh.head_radius * 0.85, sh.head_radius),
        pr.scale * sh.head_radius,
        pr.metres * sh.head_radius,
    )
    hair_r = sh.head_radius + sh.hair_volume
    hair_c = pr.point(0.0, head_y + 0.012, -0.018)
    out["hair"] = (*hair_c, pr.width(hair_r * 0.9, hair_r), pr.scale * hair_r, pr.metres * hair_r)
    has_long = sh.hair_style == 1
    long0 = pr.point(0.0, head_y, -0.03)
    long1 = pr.point(0.0, head_y - sh.hair_length, -0.05)
    out["long_hair"] = (
        *long0,
        *long1,
        pr.scale * sh.head_radius * 0.8 * has_long,
        pr.metres * sh.head_radius * 0.5,
    )
    bun = pr.point(0.0, head_y + 0.012, -(sh.head_radius + 0.012))
    bun_r = 0.03 * (sh.hair_style == 2)
    out["bun"] = (*bun, pr.width(bun_r, bun_r), pr.scale * bun_r, pr.metres * bun_r)
    hat = pr.point(0.0, head_y + 0.55 * sh.head_radius, 0.0)
    has_hat = sh.hair_style == 3
    out["hat"] = (
        *hat,
        pr.width(sh.head_radius * 1.35, sh.head_radius * 1.4) * has_hat,
        pr.scale * sh.head_radius * 0.7 * has_hat,
        pr.metres * sh.head_radius,
    )
    # Coat tails or skirt: a flared trapezoid from the hips towards the knees.
    hem = hip_y + lift - (0.25 if sh.garment == 1 else 0.18)
    top = pr.point(0.0, hip_y + lift, 0.0)
    bottom = pr.point(0.0, hem, 0.0)
    present = sh.garment != 0
    out["garment"] = (
        top[0],
        bottom[0],
        top[1],
        bottom[1] if present else top[1] + 1e-3,
        pr.width(sh.hip_half_width + 0.01, sh.torso_half_depth) * present,
        pr.width(
            (sh.hip_half_width + 0.01) * sh.garment_flare, sh.torso_half_depth * sh.garment_flare
        )
        * present,
        0.0,
        pr.metres * sh.torso_half_depth,
    )
    # Bag: shoulder bag hanging at the hip with a strap across the chest and back, or a
    # backpack on the back with two straps over the shoulders.
    size = sh.bag_size
    if sh.bag_type == 1:
        bx = sh.bag_side * (sh.hip_half_width + 0.035 * size)
        centre = pr.point(bx, hip_y + lift + 0.02, 0.0)
        half_x = pr.width(0.015 * size + 0.02, 0.045 * size)
        half_y = pr.scale * 0.05 * size
        out["bag"] = (centre[0], centre[1], half_x, half_y, centre[2], pr.metres * 0.02 * size)
        top = pr.point(bx, hip_y + lift + 0.02 + 0.05 * size, 0.0)
        opp = -sh.bag_side * 0.6 * sh.shoulder_half_width
        for name, zsign in (("strap_a", 1.0), ("strap_b", -1.0)):  # across the chest and the back
            sp = pr.point(opp, sh_y, zsign * (sh.torso_half_depth + 0.004))
            out[name] = (*sp, *top, pr.scale * 0.008, 0.0)
    elif sh.bag_type == 2:
        centre = pr.point(
            0.0, 0.5 * (sh_y + hip_y + lift) + 0.03, -(sh.torso_half_depth + 0.045 * size)
        )
        half_x = pr.width(0.085 * size, 0.045 * size)
        half_y = pr.scale * 0.12 * size
        out["bag"] = (centre[0], centre[1], half_x, half_y, centre[2], pr.metres * 0.03 * size)
        for name, sign in (("strap_a", 1.0), ("strap_b", -1.0)):  # over the right and left shoulder
            x = sign * 0.55 * sh.shoulder_half_width
            p0 = pr.point(x, sh_y + 0.005, sh.torso_half_depth + 0.004)
            p1 = pr.point(x * 0.9, hip_y + lift + 0.1, sh.torso_half_depth + 0.004)
            out[name] = (*p0, *p1, pr.scale * 0.01, 0.0)
    else:
        out["bag"] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        out["strap_a"] = (0.0,) * 8
        out["strap_b"] = (0.0,) * 8
    return out


def rasterise(
    shapes: Sequence[BodyShape], frames: Sequence[FrameParams], height: int, width: int
) -> Geometry:
    """Geometry of N frames: shapes[i] posed as frames[i]. See `Geometry` for the arrays."""
    if len(shapes) != len(frames):
        raise ValueError(
            f"rasterise: got {len(shapes)} shapes for {len(frames)} frames; expected equal"
        )
    n = len(frames)
    prims = [_frame_primitives(s, f, width / height) for s, f in zip(shapes, frames)]
    stacked = {k: np.asarray([p[k] for p in prims], np.float32) for k in prims[0]}

    def cols(key):
        return [_col(c) for c in stacked[key].T]

    canvas = _Canvas(n, height, width)

    def capsule(key, label):
        x0, y0, z0, x1, y1, z1, r, rm = cols(key)
        _capsule(canvas, (x0, y0, z0), (x1, y1, z1), r, rm, label)

    for key, label in (
        ("thigh_r", LOWER),
        ("thigh_l", LOWER),
        ("shin_r", SHIN),
        ("shin_l", SHIN),
        ("foot_r", SHOES),
        ("foot_l", SHOES),
    ):
        capsule(key, label)
    cx, cx_bottom, y_top, y_bottom, half_top, half_bottom, cz, depth_m = cols("torso")
    _trapezoid(canvas, cx, cx_bottom, y_top, y_bottom, half_top, half_bottom, cz, depth_m, UPPER)
    # Coat (upper garment) or skirt (lower garment), per frame.
    garment = np.asarray([sh.garment for sh in shapes])
    cx, cx_bottom, y_top, y_bottom, half_top, half_bottom, cz, depth_m = cols("garment")
    coat = _col(garment == 1)
    skirt = _col(garment == 2)
    _trapezoid(
        canvas,
        cx,
        cx_bottom,
        y_top,
        y_bottom,
        half_top * coat,
        half_bottom * coat,
        cz,
        depth_m,
        UPPER,
    )
    _trapezoid(
        canvas,
        cx,
        cx_bottom,
        y_top,
        y_bottom,
        half_top * skirt,
        half_bottom * skirt,
        cz,
        depth_m,
        LOWER,
    )
    for key, label in (
        ("upper_arm_r", SLEEVE),
        ("upper_arm_l", SLEEVE),
        ("forearm_r", FOREARM),
        ("forearm_l", FOREARM),
        ("hand_r", SKIN),
        ("hand_l", SKIN),
        ("neck", SKIN),
        ("long_hair", HAIR),
        ("strap_a", STRAP),
        ("strap_b", STRAP),
    ):
        capsule(key, label)
    hx, hy, hz, rx, ry, rm = cols("head")
    _ellipse(canvas, (hx, hy, hz), rx, ry, rm, FACE)
    hx, hy, hz, rx, ry, rm = cols("hair")
    _ellipse(canvas, (hx, hy, hz), rx, ry, rm, HAIR)
    hx, hy, hz, rx, ry, rm = cols("bun")
    _ellipse(canvas, (hx, hy, hz), rx, ry, rm, HAIR)
    hx, hy, hz, rx, ry, rm = cols("hat")
    _ellipse(canvas, (hx, hy, hz), rx, ry, rm, HAT)
    bx, by, half_x, half_y, bz, bm = cols("bag")
    _box(canvas, bx, by, half_x, half_y, bz, bm, BAG)
    return Geometry(canvas.label, canvas.z, canvas.u, canvas.v, canvas.bulge)


# --------------------------------------------------------------------------------------
# Shading per modality.


def _frame_rng(frame: FrameParams, stream: int) -> np.random.Generator:
    return np.random.default_rng([frame.noise_seed, stream])


def _scene_layers(frames: Sequence[FrameParams], height: int, width: int, values):
    """Static background of each frame: [N, H, W, C] float32.

    values(scene) -> (wall [C], floor [C], objects [K][C]). The scene is panned by
    `background_pan`; the floor starts at the horizon, `scene.horizon` body heights above
    the feet.
    """
    xx, yy = _pixel_grid(height, width)
    n = len(frames)
    walls, floors, objects = zip(*(values(f.scene) for f in frames))
    walls = np.asarray(walls, np.float32).reshape(n, 1, 1, -1)
    floors = np.asarray(floors, np.float32).reshape(n, 1, 1, -1)
    objects = np.asarray(objects, np.float32)  # [N, K, C]
    horizon = _col([f.ground_y - f.scale * f.scene.horizon for f in frames])
    img = np.empty((n, height, width, walls.shape[-1]), np.float32)
    img[...] = np.where((yy >= horizon)[..., None], floors, walls)
    boxes = np.asarray([f.scene.object_boxes for f in frames], np.float32)  # [N, K, 4]
    pan = np.asarray([f.background_pan for f in frames], np.float32)
    for k in range(boxes.shape[1]):
        x0, y0, x1, y1 = (_col(c) for c in boxes[:, k].T)
        x0, x1 = x0 + _col(pan), x1 + _col(pan)
        inside = (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)
        np.copyto(img, objects[:, k].reshape(n, 1, 1, -1), where=inside[..., None])
    return img


_MAX_CLUTTER = 4


def _paint_clutter(img: np.ndarray, frames, scale: np.ndarray | None = None) -> None:
    """Paints per-frame clutter (posters, passers-by, reflections) into img [N, H, W, C].

    Each frame draws up to four rectangles from its own `background_seed`; their values
    are multiplied by scale [N] when given.
    """
    n, height, width, channels = img.shape
    xx, yy = _pixel_grid(height, width)
    aspect = width / height
    params = np.zeros((n, _MAX_CLUTTER, 4 + channels), np.float32)
    for i, f in enumerate(frames):
        rng = np.random.default_rng([f.background_seed, 7])
        count = int(rng.integers(0, _MAX_CLUTTER + 1))
        draws = rng.uniform(size=(_MAX_CLUTTER, 4 + channels))
        x0 = -0.1 + draws[:, 0] * (aspect + 0.1)
        y0 = -0.1 + draws[:, 1]
        params[i, :, 0], params[i, :, 1] = x0, y0
        params[i, :, 2] = x0 + 0.05 + 0.2 * draws[:, 2]
        params[i, :, 3] = y0 + 0.05 + 0.35 * draws[:, 3]
        params[i, :, 4:] = draws[:, 4:]
        params[i, count:, 2] = -1.0  # absent rectangle: empty x range
    if scale is not None:
        params[:, :, 4:] *= np.asarray(scale, np.float32).reshape(n, 1, 1)
    for k in range(_MAX_CLUTTER):
        x0, y0, x1, y1 = (_col(params[:, k, j]) for j in range(4))
        inside = (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)
        np.copyto(img, params[:, k, 4:].reshape(n, 1, 1, channels), where=inside[..., None])


def _illumination(frames, height, width):
    """Multiplicative light field [N, H, W, 3]: gain, colour tint and a linear gradient."""
    xx, yy = _pixel_grid(height, width)
    gain = _col([f.light_gain for f in frames])
    gx = _col([f.light_gradient[0] for f in frames])
    gy = _col([f.light_gradient[1] for f in frames])
    field = gain * (1.0 + gx * (xx - 0.5 * width / height) + gy * (yy - 0.5))
    tint = np.asarray([f.light_tint for f in frames], np.float32).reshape(-1, 1, 1, 3)
    return np.clip(field, 0.15, 3.0)[..., None] * tint


def _garment_pattern(geom: Geometry, identities, frames):
    """Where the torso shows the pattern colour: [N, H, W] bool.

    Stripes wrap around the body; a chest logo or an open jacket only shows on the front.
    """
    kind = _col([i.appearance.pattern for i in identities])
    freq = _col([i.appearance.stripe_frequency for i in identities])
    facing = _col([math.cos(f.yaw) for f in frames])
    torso = geom.label == UPPER
    stripes = (kind == 1) & (np.mod(geom.v * freq, 1.0) < 0.45)
    front = facing > 0.3
    logo = (kind == 2) & front & (np.abs(geom.u) < 0.4) & (geom.v > 0.15) & (geom.v < 0.5)
    jacket = (kind == 3) & front & (np.abs(geom.u) < 0.3)
    return torso & (stripes | logo | jacket)


# Surface labels = part labels plus the garment pattern (appearance decides where it is).
PATTERN = NUM_LABELS
NUM_SURFACES = NUM_LABELS + 1


def _surface_labels(geom: Geometry, identities, frames) -> np.ndarray:
    """Part labels with the pattern and the hair above the hairline painted in: [N, H, W] int8."""
    label = geom.label.copy()
    np.copyto(label, np.int8(PATTERN), where=_garment_pattern(geom, identities, frames))
    hairline = _col([i.appearance.hairline for i in identities])
    np.copyto(label, np.int8(HAIR), where=(geom.label == FACE) & (geom.v < hairline))
    return label


def _per_surface(identities, values) -> np.ndarray:
    """Look-up table [N, NUM_SURFACES, C] from values(appearance) -> {label: [C] value}."""
    rows = [values(ident.appearance) for ident in identities]
    c = len(rows[0][FACE])
    table = np.zeros((len(rows), NUM_SURFACES, c), np.float32)
    for i, entries in enumerate(rows):
        for label, val in entries.items():
            table[i, label] = val
    return table


def _lookup(table: np.ndarray, label: np.ndarray) -> np.ndarray:
    """table [N, L, C], label [N, H, W] -> [N, H, W, C]."""
    n = label.shape[0]
    return table[np.arange(n).reshape(n, 1, 1), label.astype(np.intp)]


def _rgb_colours(a: Appearance):
    return {
        FACE: a.skin_rgb,
        HAIR: a.hair_rgb,
        HAT: a.hat_rgb,
        SKIN: a.skin_rgb,
        UPPER: a.upper_rgb,
        SLEEVE: a.upper_rgb,
        FOREARM: a.upper_rgb if a.long_sleeves else a.skin_rgb,
        LOWER: a.lower_rgb,
        SHIN: a.skin_rgb if a.shorts else a.lower_rgb,
        SHOES: a.shoes_rgb,
        BAG: a.bag_rgb,
        STRAP: a.bag_rgb,
        PATTERN: a.pattern_rgb,
    }


def _ir_levels(a: Appearance):
    return {
        FACE: (a.skin_ir,),
        HAIR: (a.hair_ir,),
        HAT: (a.hat_ir,),
        SKIN: (a.skin_ir,),
        UPPER: (a.upper_ir,),
        SLEEVE: (a.upper_ir,),
        FOREARM: (a.upper_ir if a.long_sleeves else a.skin_ir,),
        LOWER: (a.lower_ir,),
        SHIN: (a.skin_ir if a.shorts else a.lower_ir,),
        SHOES: (a.shoes_ir,),
        BAG: (a.bag_ir,),
        STRAP: (a.bag_ir,),
        PATTERN: (a.pattern_ir,),
    }


def _to_uint8(img: np.ndarray) -> np.ndarray:
    img *= 255.0
    np.rint(img, out=img)
    np.clip(img, 0.0, 255.0, out=img)
    return img.astype(np.uint8)


def shade_rgb(geom: Geometry, identities, frames) -> np.ndarray:
    """RGB frames [N, H, W, 3] uint8 from geometry, colours, light and background."""
    n, height, width = geom.label.shape
    img = _scene_layers(frames, height, width, lambda s: (s.wall_rgb, s.floor_rgb, s.object_rgb))
    _paint_clutter(img, frames)
    person = _lookup(
        _per_surface(identities, _rgb_colours), _surface_labels(geom, identities, frames)
    )
    person *= (0.55 + 0.45 * geom.bulge)[..., None]
    np.copyto(img, person, where=(geom.label != BACKGROUND)[..., None])
    img *= _illumination(frames, height, width)
    noise = np.stack(
        [_frame_rng(f, 1).standard_normal((height, width, 3), np.float32) for f in frames]
    )
    noise *= 0.02
    img += noise
    return _to_uint8(img)


def shade_infrared(geom: Geometry, identities, frames) -> np.ndarray:
    """Infrared frames [N, H, W, 1] uint8: material reflectance and warm skin, no hue."""
    n, height, width = geom.label.shape
    img = _scene_layers(
        frames, height, width, lambda s: ((s.wall_ir,), (s.floor_ir,), [(o,) for o in s.object_ir])
    )
    # Indoors, clutter is dim; outdoors, sunlit surfaces are bright in infrared.
    _paint_clutter(img, frames, scale=[0.25 if f.scene.indoor else 0.75 for f in frames])
    person = _lookup(
        _per_surface(identities, _ir_levels), _surface_labels(geom, identities, frames)
    )
    # Active near-infrared illumination falls off with distance; weak surface shading.
    dist = _col([f.distance_m for f in frames])
    gain = _col([f.ir_gain for f in frames]) * np.clip(3.0 / dist, 0.75, 1.25)
    person *= (gain * (0.8 + 0.2 * geom.bulge))[..., None]
    np.copyto(img, person, where=(geom.label != BACKGROUND)[..., None])
    noise = np.stack(
        [_frame_rng(f, 2).standard_normal((height, width, 1), np.float32) for f in frames]
    )
    noise *= 0.03
    img += noise
    return _to_uint8(img)


def shade_depth(geom: Geometry, frames) -> np.ndarray:
    """Depth frames [N, H, W, 1] uint16 millimetres, 0 = hole (no measurement).

    Only `geom` and the frames are read: depth cannot depend on appearance. Noise grows
    with the square of distance and values are quantised like a structured-light sensor;
    holes appear at random, on hair, in the shadow left of the silhouette and far away.
    """
    n, height, width = geom.label.shape
    xx, yy = _pixel_grid(height, width)
    dist = _col([f.distance_m for f in frames])
    ground = _col([f.ground_y for f in frames])
    horizon = _col([f.ground_y - f.scale * f.scene.horizon for f in frames])
    wall = _col([f.scene.wall_distance_m for f in frames])
    # Floor plane through the feet: depth ~ 1 / (row - horizon) under a pinhole camera.
    below = yy - horizon
    floor = dist * (ground - horizon) / np.maximum(below, np.float32(1e-3))
    bg = np.where(below > 0.0, np.minimum(floor, wall), wall)
    boxes = np.asarray([f.scene.object_boxes for f in frames], np.float32)  # [N, K, 4]
    pan = _col([f.background_pan for f in frames])
    for k in range(boxes.shape[1]):
        x0, y0, x1, y1 = (_col(c) for c in boxes[:, k].T)
        # Objects stand behind the person (crops never show a person occluded).
        obj = _col([max(f.scene.object_distance_m[k], f.distance_m + 0.5) for f in frames])
        inside = (xx >= x0 + pan) & (xx < x1 + pan) & (yy >= y0) & (yy < y1)
        bg = np.where(inside, np.minimum(obj, bg), bg)
    person = geom.label != BACKGROUND
    metres = np.where(person, dist + geom.z, bg).astype(np.float32)
    rngs = [_frame_rng(f, 3) for f in frames]
    # Kinect-like axial noise, sigma ~ 1.5 mm + 2 mm * z^2 (z in metres).
    normal = np.stack([r.standard_normal(size=(height, width), dtype=np.float32) for r in rngs])
    metres = metres + normal * (0.0015 + 0.002 * metres * metres)
    # Structured light measures disparity ~ 1 / depth in integer steps: the depth step
    # grows with distance (~5 cm at 4 m).
    disparity = np.maximum(np.rint(1.0 / (_DISPARITY_M * metres)), 1.0)
    metres = 1.0 / (_DISPARITY_M * disparity)
    # Holes.
    prob = np.full((n, height, width), 0.01, np.float32)
    prob = np.where(geom.label == HAIR, np.float32(0.3), prob)
    prob = np.where(metres > 7.0, np.float32(0.25), prob)
    # Shadow: background pixels up to ~2 px left of a nearer surface (projector offset).
    near = np.zeros_like(person)
    reach = max(1, round(width / 16))
    for s in range(1, reach + 1):
        near[:, :, :-s] |= person[:, :, s:]
    prob = np.where(near & ~person, np.float32(0.7), prob)
    uniform = np.stack([r.random(size=(height, width), dtype=np.float32) for r in rngs])
    holes = uniform < prob
    # Up to two blob-shaped holes per frame (reflective or dark surfaces).
    blobs = np.zeros((n, 2, 4), np.float32)
    for i, r in enumerate(rngs):
        count = int(r.integers(0, 3))
        draws = r.uniform(size=(2, 4))
        blobs[i, :, 0] = draws[:, 0] * width / height
        blobs[i, :, 1] = draws[:, 1]
        blobs[i, :, 2] = 0.02 + 0.06 * draws[:, 2]
        blobs[i, :, 3] = 0.02 + 0.06 * draws[:, 3]
        blobs[i, count:, 2:] = 0.0  # absent blob
    for k in range(2):
        cx, cy, rx, ry = (_col(blobs[:, k, j]) for j in range(4))
        qx = (xx - cx) / (rx + _EPS)
        qy = (yy - cy) / (ry + _EPS)
        holes |= (qx * qx + qy * qy < 1.0) & (rx > 0.0)
    mm = np.clip(np.rint(metres * 1000.0), 1, 65535)
    mm = np.where(holes, 0, mm)
    return mm.astype(np.uint16)[..., None]


# --------------------------------------------------------------------------------------
# Entry points.


def render_frames(
    identities: Sequence[IdentityParams],
    frames: Sequence[FrameParams],
    modality: str,
    height: int,
    width: int,
) -> np.ndarray:
    """Renders identities[i] as seen in frames[i], for i < N.

    Returns rgb [N, H, W, 3] uint8, depth [N, H, W, 1] uint16 (mm, 0 = hole) or
    infrared [N, H, W, 1] uint8. The result for one frame does not depend on the rest of
    the batch. Depth frames are rendered at the given frame params: apply `advance_time`
    beforehand to model an RGB-D time offset.
    """
    if modality not in MODALITIES:
        raise ValueError(f"render: modality={modality!r}; expected one of {MODALITIES}")
    if height < 8 or width < 4:
        raise ValueError(f"render: image size {height}x{width}; expected at least 8x4")
    if len(identities) != len(frames):
        raise ValueError(
            f"render: {len(identities)} identities for {len(frames)} frames; expected equal"
        )
    if not frames:
        channels = 3 if modality == "rgb" else 1
        dtype = np.uint16 if modality == "depth" else np.uint8
        return np.zeros((0, height, width, channels), dtype)
    geom = rasterise([i.shape for i in identities], frames, height, width)
    if modality == "rgb":
        return shade_rgb(geom, identities, frames)
    if modality == "depth":
        return shade_depth(geom, frames)
    return shade_infrared(geom, identities, frames)


def render_frame(
    identity: IdentityParams, frame: FrameParams, modality: str, height: int, width: int
) -> np.ndarray:
    """One image: rgb [H, W, 3] uint8, depth [H, W, 1] uint16 mm (0 = hole), infrared [H, W, 1] uint8."""
    return render_frames([identity], [frame], modality, height, width)[0]
