"""Posing a body in one frame: gait, posture and projection into the image (NumPy only).

`frame_primitives` turns a `BodyShape` walking in a `FrameParams` into the parameters of
the primitives (capsules, ellipses, trapezoids, a box) that `geometry.rasterise` draws.
"""

from __future__ import annotations

import math

from jaxreid.datasets.synthetic.people import STATURE_M, BodyShape
from jaxreid.datasets.synthetic.scenes import FrameParams


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


def frame_primitives(shape: BodyShape, frame: FrameParams, width_over_height: float):
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
