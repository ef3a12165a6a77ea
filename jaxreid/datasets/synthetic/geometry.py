"""Rasterised geometry of posed bodies: part labels, depth relief, surface coordinates (NumPy only).

`rasterise(shapes, frames, H, W)` draws the primitives of each posed body
(`pose.frame_primitives`) into a z-buffer over a batch of frames and returns a
`Geometry`: what every modality's shading starts from. Only elementwise NumPy operations
touch pixel arrays, so a frame rasterises identically whatever batch it is in.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from jaxreid.datasets.synthetic.people import BodyShape
from jaxreid.datasets.synthetic.pose import frame_primitives
from jaxreid.datasets.synthetic.scenes import FrameParams

# Part labels of the rasterised geometry. Labels are geometric (which body part a pixel
# shows); which colour a label gets (e.g. forearm = sleeve or skin) is appearance.
BACKGROUND, FACE, HAIR, SKIN, UPPER, SLEEVE, FOREARM, LOWER, SHIN, SHOES, BAG, STRAP, HAT = range(
    13
)
NUM_LABELS = 13


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


def pixel_grid(height: int, width: int):
    """Pixel centres in image-height units: yy [1, H, 1] in (0, 1), xx [1, 1, W]."""
    yy = ((np.arange(height, dtype=np.float32) + 0.5) / height).reshape(1, height, 1)
    xx = ((np.arange(width, dtype=np.float32) + 0.5) / height).reshape(1, 1, width)
    return xx, yy


def per_frame(values) -> np.ndarray:
    """Per-frame scalars -> [N, 1, 1] float32 for broadcasting against pixel grids."""
    return np.asarray(values, np.float32).reshape(-1, 1, 1)


EPS = np.float32(1e-12)


class _Canvas:
    """Z-buffer over a batch of frames: each primitive keeps the pixels where it is nearest.

    Primitives are evaluated only inside a window of rows/columns that contains their
    extent in every frame of the batch. Pixel values do not depend on the window (it only
    skips pixels the primitive cannot cover), so results stay independent of the batch.
    """

    def __init__(self, n: int, height: int, width: int):
        shape = (n, height, width)
        self.height, self.width = height, width
        self.xx, self.yy = pixel_grid(height, width)
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
    len2 = dx * dx + dy * dy + EPS
    t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / len2, 0.0, 1.0)
    ex = xx - (x0 + t * dx)
    ey = yy - (y0 + t * dy)
    r2 = radius * radius
    d2 = ex * ex + ey * ey
    inside = d2 < r2
    bulge = np.sqrt(np.clip(1.0 - d2 / (r2 + EPS), 0.0, 1.0))
    z = z0 + t * (z1 - z0) - radius_m * bulge
    # Signed distance across the segment, for patterns.
    across = (ex * dy - ey * dx) / (np.sqrt(len2) * (radius + EPS))
    canvas.draw(rows, cols, inside, z, label, across, t, bulge)


def _ellipse(canvas, centre, rx, ry, radius_m, label):
    cx, cy, cz = centre
    rows, cols, xx, yy = canvas.window(cx - rx, cx + rx, cy - ry, cy + ry)
    qx = (xx - cx) / (rx + EPS)
    qy = (yy - cy) / (ry + EPS)
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
    across = (xx - (cx_top + vc * (cx_bottom - cx_top))) / (half + EPS)
    inside = (v >= 0.0) & (v <= 1.0) & (np.abs(across) < 1.0) & (half > 0.0)
    bulge = np.sqrt(np.clip(1.0 - across * across, 0.0, 1.0))
    z = cz - depth_m * bulge
    canvas.draw(rows, cols, inside, z, label, across, v, bulge)


def _box(canvas, cx, cy, half_x, half_y, cz, depth_m, label):
    rows, cols, xx, yy = canvas.window(cx - half_x, cx + half_x, cy - half_y, cy + half_y)
    across = (xx - cx) / (half_x + EPS)
    v = (yy - (cy - half_y)) / (2.0 * half_y + EPS)
    inside = (np.abs(across) < 1.0) & (v >= 0.0) & (v <= 1.0) & (half_x > 0.0)
    bulge = np.sqrt(np.clip(1.0 - across * across, 0.0, 1.0))
    z = cz - depth_m * bulge
    canvas.draw(rows, cols, inside, z, label, across, v, bulge)


def rasterise(
    shapes: Sequence[BodyShape], frames: Sequence[FrameParams], height: int, width: int
) -> Geometry:
    """Geometry of N frames: shapes[i] posed as frames[i]. See `Geometry` for the arrays."""
    if len(shapes) != len(frames):
        raise ValueError(
            f"rasterise: got {len(shapes)} shapes for {len(frames)} frames; expected equal"
        )
    n = len(frames)
    prims = [frame_primitives(s, f, width / height) for s, f in zip(shapes, frames)]
    stacked = {k: np.asarray([p[k] for p in prims], np.float32) for k in prims[0]}

    def cols(key):
        return [per_frame(c) for c in stacked[key].T]

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
    for kind, label in ((1, UPPER), (2, LOWER)):  # 1: coat, 2: skirt
        worn = per_frame(garment == kind)  # zero width for people not wearing it
        _trapezoid(
            canvas,
            cx,
            cx_bottom,
            y_top,
            y_bottom,
            half_top * worn,
            half_bottom * worn,
            cz,
            depth_m,
            label,
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
