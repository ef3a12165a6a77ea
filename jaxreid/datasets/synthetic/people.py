"""People of the synthetic dataset: body shape and appearance, and how they are drawn (NumPy only).

A person is an `IdentityParams`: a `BodyShape` (everything with 3-D extent: body
proportions, posture, gait, hair style, hat, coat or skirt, carried bag), which every
modality sees, and an `Appearance` (surface properties: colours, clothing pattern,
near-infrared reflectance of each material), which depth does not see.
"""

from __future__ import annotations

import colorsys
import dataclasses
from typing import Sequence

import numpy as np

# Real-world scale of the body model: body coordinates are in units of the person's
# height, 1.0 == STATURE_M * BodyShape.stature metres.
STATURE_M = 1.75


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


def hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    """HSV in [0, 1] (hue wraps around) -> RGB tuple of Python floats in [0, 1]."""
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (float(r), float(g), float(b))


def _sample_garment_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    """Clothing colour: many people wear dark or neutral clothes, which makes RGB harder."""
    kind = rng.random()
    if kind < 0.35:  # black / grey / white / navy
        v = float(rng.choice([0.12, 0.25, 0.45, 0.7, 0.9])) + float(rng.uniform(-0.05, 0.05))
        return hsv(rng.uniform(0.55, 0.7), rng.uniform(0.0, 0.25), v)
    return hsv(rng.random(), rng.uniform(0.35, 0.95), rng.uniform(0.3, 0.95))


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
    skin_rgb = hsv(u(0.03, 0.09), u(0.3, 0.6), skin_v)
    hair_rgb = hsv(u(0.02, 0.12), u(0.3, 0.8), float(rng.choice([0.08, 0.15, 0.3, 0.55])))
    upper_rgb = _sample_garment_colour(rng)
    pattern_rgb = _sample_garment_colour(rng)
    lower_rgb = _sample_garment_colour(rng)
    shoes_rgb = hsv(rng.random(), u(0.0, 0.4), float(rng.choice([0.1, 0.3, 0.9])))
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
