"""Procedural renderer of walking people for RGB, depth and infrared cameras (NumPy only).

The renderer is split by concept; this module holds the entry points and re-exports the
public names of the others (`render.IdentityParams`, `render.rasterise`, ... keep working):

  people    `BodyShape`, `Appearance`, `IdentityParams`, `sample_identity`: who is seen
  scenes    `CameraScene`, `FrameParams`, `sample_camera_scene`, `sample_frame`,
            `advance_time`: which camera, viewpoint, crop, light and instant
  pose      gait, posture and projection of a body into one frame
  geometry  `rasterise(shapes, frames, H, W)`: geometry only -> part labels, depth relief,
            surface coordinates (`Geometry`)
  shading   `shade_rgb` / `shade_depth` / `shade_infrared` turn the geometry into pixels:
    rgb       shape + colours + patterns, illumination and background clutter
    depth     shape only (metres -> uint16 millimetres), distance-dependent noise,
              quantisation and holes like a Kinect (0 = no measurement)
    infrared  shape + material reflectance (one grey level per material, no hue)

Rendering is split in two (geometry, then shading) so that what each modality can see is
fixed by construction: depth never reads `Appearance`, infrared never reads the RGB
colours. Everything is vectorised over a batch of frames `[N, H, W]`; per-frame random
draws use a generator seeded by the frame's own seeds, so a frame renders identically
whatever batch it is in. Only elementwise NumPy operations touch pixel arrays, which keeps
batching bit-exact.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from jaxreid.config import choices
from jaxreid.datasets.synthetic.geometry import (
    BACKGROUND,
    BAG,
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
    rasterise,
)
from jaxreid.datasets.synthetic.people import (
    STATURE_M,
    Appearance,
    BodyShape,
    IdentityParams,
    sample_identity,
)
from jaxreid.datasets.synthetic.scenes import (
    METRES_PER_FRAME,
    PHASE_PER_FRAME,
    CameraScene,
    FrameParams,
    advance_time,
    sample_camera_scene,
    sample_frame,
)
from jaxreid.datasets.synthetic.shading import (
    NUM_SURFACES,
    PATTERN,
    shade_depth,
    shade_infrared,
    shade_rgb,
)

MODALITIES = choices.DATASET_MODALITIES["synthetic"]  # the synthetic set's (config vocabulary)


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


__all__ = [
    "MODALITIES",
    "render_frames",
    "render_frame",
    # people
    "STATURE_M",
    "BodyShape",
    "Appearance",
    "IdentityParams",
    "sample_identity",
    # scenes
    "PHASE_PER_FRAME",
    "METRES_PER_FRAME",
    "CameraScene",
    "FrameParams",
    "sample_camera_scene",
    "sample_frame",
    "advance_time",
    # geometry
    "BACKGROUND",
    "FACE",
    "HAIR",
    "SKIN",
    "UPPER",
    "SLEEVE",
    "FOREARM",
    "LOWER",
    "SHIN",
    "SHOES",
    "BAG",
    "STRAP",
    "HAT",
    "NUM_LABELS",
    "Geometry",
    "rasterise",
    # shading
    "PATTERN",
    "NUM_SURFACES",
    "shade_rgb",
    "shade_depth",
    "shade_infrared",
]
