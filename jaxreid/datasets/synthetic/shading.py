"""Shading per modality: geometry -> RGB, depth or infrared pixels (NumPy only).

  rgb       shape + colours + patterns, illumination and background clutter
  depth     shape only (metres -> uint16 millimetres), distance-dependent noise,
            quantisation and holes like a Kinect (0 = no measurement)
  infrared  shape + material reflectance (one grey level per material, no hue)

Depth never reads `Appearance`, infrared never reads the RGB colours. Per-frame random
draws use a generator seeded by the frame's own seeds, so a frame renders identically
whatever batch it is in.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from jaxreid.datasets.synthetic.geometry import (
    BACKGROUND,
    BAG,
    EPS,
    FACE,
    FOREARM,
    HAIR,
    HAT,
    LOWER,
    NUM_LABELS,
    SHIN,
    SHOES,
    SKIN,
    SLEEVE,
    STRAP,
    UPPER,
    Geometry,
    per_frame,
    pixel_grid,
)
from jaxreid.datasets.synthetic.people import Appearance
from jaxreid.datasets.synthetic.scenes import FrameParams

# Depth per disparity step of a Kinect-like structured-light sensor: 1 / (c * depth).
_DISPARITY_M = np.float32(0.00285)


def _frame_rng(frame: FrameParams, stream: int) -> np.random.Generator:
    return np.random.default_rng([frame.noise_seed, stream])


def _scene_layers(frames: Sequence[FrameParams], height: int, width: int, values):
    """Static background of each frame: [N, H, W, C] float32.

    values(scene) -> (wall [C], floor [C], objects [K][C]). The scene is panned by
    `background_pan`; the floor starts at the horizon, `scene.horizon` body heights above
    the feet.
    """
    xx, yy = pixel_grid(height, width)
    n = len(frames)
    walls, floors, objects = zip(*(values(f.scene) for f in frames))
    walls = np.asarray(walls, np.float32).reshape(n, 1, 1, -1)
    floors = np.asarray(floors, np.float32).reshape(n, 1, 1, -1)
    objects = np.asarray(objects, np.float32)  # [N, K, C]
    horizon = per_frame([f.ground_y - f.scale * f.scene.horizon for f in frames])
    img = np.empty((n, height, width, walls.shape[-1]), np.float32)
    img[...] = np.where((yy >= horizon)[..., None], floors, walls)
    boxes = np.asarray([f.scene.object_boxes for f in frames], np.float32)  # [N, K, 4]
    pan = np.asarray([f.background_pan for f in frames], np.float32)
    for k in range(boxes.shape[1]):
        x0, y0, x1, y1 = (per_frame(c) for c in boxes[:, k].T)
        x0, x1 = x0 + per_frame(pan), x1 + per_frame(pan)
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
    xx, yy = pixel_grid(height, width)
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
        x0, y0, x1, y1 = (per_frame(params[:, k, j]) for j in range(4))
        inside = (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)
        np.copyto(img, params[:, k, 4:].reshape(n, 1, 1, channels), where=inside[..., None])


def _illumination(frames, height, width):
    """Multiplicative light field [N, H, W, 3]: gain, colour tint and a linear gradient."""
    xx, yy = pixel_grid(height, width)
    gain = per_frame([f.light_gain for f in frames])
    gx = per_frame([f.light_gradient[0] for f in frames])
    gy = per_frame([f.light_gradient[1] for f in frames])
    field = gain * (1.0 + gx * (xx - 0.5 * width / height) + gy * (yy - 0.5))
    tint = np.asarray([f.light_tint for f in frames], np.float32).reshape(-1, 1, 1, 3)
    return np.clip(field, 0.15, 3.0)[..., None] * tint


def _garment_pattern(geom: Geometry, identities, frames):
    """Where the torso shows the pattern colour: [N, H, W] bool.

    Stripes wrap around the body; a chest logo or an open jacket only shows on the front.
    """
    kind = per_frame([i.appearance.pattern for i in identities])
    freq = per_frame([i.appearance.stripe_frequency for i in identities])
    facing = per_frame([math.cos(f.yaw) for f in frames])
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
    hairline = per_frame([i.appearance.hairline for i in identities])
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
    dist = per_frame([f.distance_m for f in frames])
    gain = per_frame([f.ir_gain for f in frames]) * np.clip(3.0 / dist, 0.75, 1.25)
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
    xx, yy = pixel_grid(height, width)
    dist = per_frame([f.distance_m for f in frames])
    ground = per_frame([f.ground_y for f in frames])
    horizon = per_frame([f.ground_y - f.scale * f.scene.horizon for f in frames])
    wall = per_frame([f.scene.wall_distance_m for f in frames])
    # Floor plane through the feet: depth ~ 1 / (row - horizon) under a pinhole camera.
    below = yy - horizon
    floor = dist * (ground - horizon) / np.maximum(below, np.float32(1e-3))
    bg = np.where(below > 0.0, np.minimum(floor, wall), wall)
    boxes = np.asarray([f.scene.object_boxes for f in frames], np.float32)  # [N, K, 4]
    pan = per_frame([f.background_pan for f in frames])
    for k in range(boxes.shape[1]):
        x0, y0, x1, y1 = (per_frame(c) for c in boxes[:, k].T)
        # Objects stand behind the person (crops never show a person occluded).
        obj = per_frame([max(f.scene.object_distance_m[k], f.distance_m + 0.5) for f in frames])
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
        cx, cy, rx, ry = (per_frame(blobs[:, k, j]) for j in range(4))
        qx = (xx - cx) / (rx + EPS)
        qy = (yy - cy) / (ry + EPS)
        holes |= (qx * qx + qy * qy < 1.0) & (rx > 0.0)
    mm = np.clip(np.rint(metres * 1000.0), 1, 65535)
    mm = np.where(holes, 0, mm)
    return mm.astype(np.uint16)[..., None]
