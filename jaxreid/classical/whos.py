"""WHOS: Weighted Histograms of Overlapping Stripes (Lisanti, Masi, Bagdanov & Del Bimbo,
"Person re-identification by iterative re-weighted sparse ranking", IEEE TPAMI 37(8), 2015,
the descriptor section), in JAX.

    features = whos(images)        # [N, 128, 64, 3] float32 in [0, 255] -> [N, 2960] float32

Colour histograms pooled over two levels of horizontal stripes, every pixel weighted by a
centre-support kernel that down-weights the background, plus a HOG descriptor of the image's
inner window. Stages (each tested on its own):

  center_weights     2-D Epanechnikov mask centred on the image
  stripe_histograms  weighted histograms of equal horizontal stripes
  hs_bins, rgb_bins  8x8 hue-saturation and 4x4x4 RGB joint bins
  hog_cells          4 unsigned orientations, 8x8-pixel cells, gradient of the colour
                     channel with the largest magnitude, votes interpolated trilinearly
                     (`hog_votes`: between the two nearest orientation bins and the 2x2
                     nearest cell centres)
  hog_blocks         2x2-cell blocks, L2-normalised

Sources. The TPAMI paper's text was not available to us; every value is from the authors'
own published material where it exists, else marked:
  [A1] github.com/glisanti/WHOS, README.md and media/descriptor.png (the authors' figure of
       the descriptor): the TPAMI descriptor is HS + RGB + HOG (the extended one with Lab and
       LBP is the ICDSC 2014 variant, not used here); two stripe levels, 8 first-level
       stripes and 7 "Horizontal Stripes Second Level (Overlapped)", the second level drawn
       across the image's full width and shifted down by half a stripe (so each of its
       stripes overlaps two first-level ones); an "Epanechnikov Mask"; the HOG cells drawn
       on the inner window (14 x 6 cells at 128x64).
  [A2] github.com/glisanti/KCCAReId, README.md (the authors' ICDSC 2014 code, which states
       that its only difference from the TPAMI descriptor is a Gaussian instead of the
       Epanechnikov kernel): images resized to 128x64; HOG with 4 orientation bins, 8-pixel
       cells, 2x2-cell blocks, unsigned ("no 360 degree"), "cutting at 1" in the block
       normalisation, computed on the window [9:120, 9:56] (MATLAB, 1-based). These are
       the parameters of a standard HOG implementation, which interpolates each vote
       trilinearly (Dalal & Triggs, CVPR 2005, §6.3: "votes are interpolated bilinearly
       between the neighbouring bin centres in both orientation and position"); the
       authors name no implementation, so the bin-centre conventions are ours (`hog_votes`).
  [A3] github.com/glisanti/MCK-CCA, the feature index table of its demo: 64 values per
       stripe and colour space.
  [K]  Kodirov's re-implementation of the ICDSC descriptor "based on paper" (in
       github.com/RSL-NEU/person-reid-benchmark, FeatureExtraction/util/demo_kcca_fea/):
       HS 8x8 and RGB 4x4x4 bins; each histogram L2-normalised; the square root of the whole
       descriptor. A third party's reading, used only where [A*] says nothing (it cuts the
       second-level stripes from the inner window [9:120, 9:56] too, which the authors'
       figure [A1] contradicts; we follow [A1]).
Choices of ours are marked "Choice:".
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxreid.classical.lomo import rgb_to_hsv

IMAGE_SIZE = (128, 64)  # [A2]: "the person image (resized to 128x64)".
HS_BINS = (8, 8)  # [K], 64 values per stripe [A3].
RGB_BINS = 4  # [K], 4x4x4 = 64 values per stripe [A3].
STRIPES = 8  # [A1]: 8 first-level stripes; 7 second-level ones between them.
HOG_CELL = 8  # [A2]: "pooling 8 px per cell"
HOG_ORIENTATIONS = 4  # [A2]: "quantized the gradients in 4 bins", unsigned ("no 360 degree")
# [A2]: "using block 2x2". Choice: a stride of one cell (Dalal & Triggs 2005 §6.4's default;
# the authors give no stride).
HOG_BLOCK = 2
# The ε of Dalal & Triggs §6.4's v / sqrt(|v|² + ε²). Choice: its value (they call it "a
# small constant"); 1e-3 against gradients of images in [0, 1].
HOG_EPS = 1e-3


def inner_window(height: int, width: int) -> tuple[slice, slice]:
    """(rows, columns) of the inner window: [9:120, 9:56] (1-based, inclusive) at 128x64
    [A2], i.e. half a stripe (H / 16 rows) off the top and bottom and W / 8 columns off each
    side. The HOG [A2] is computed on it; the second-level stripes take its rows and the
    full width [A1] (`second_level_rows`)."""
    margin_rows, margin_cols = height // (2 * STRIPES), width // 8
    return slice(margin_rows, height - margin_rows), slice(margin_cols, width - margin_cols)


def second_level_rows(height: int) -> slice:
    """Rows of the 7 second-level stripes [A1]: half a first-level stripe (H / 16 rows) off
    the top and the bottom, so second-level stripe s spans the lower half of first-level
    stripe s and the upper half of stripe s + 1; columns: the full width."""
    margin = height // (2 * STRIPES)
    return slice(margin, height - margin)


def center_weights(height: int, width: int) -> np.ndarray:
    """[height, width] float32 Epanechnikov mask 1 - (u² + v²), clipped at 0.

    u and v are a pixel centre's offsets from the image centre in units of half the width
    and half the height, so the weight is 1 in the middle (the person) and falls to 0 on the
    ellipse inscribed in the image (background corners and sides get 0). The kernel's form is
    the authors' ("Epanechnikov Mask", [A1]); Choice: its bandwidths (the inscribed ellipse;
    the figure shows a centred ellipse of about the image's size, with no numbers).
    """
    u = (np.arange(width) + 0.5 - width / 2.0) / (width / 2.0)
    v = (np.arange(height) + 0.5 - height / 2.0) / (height / 2.0)
    return np.maximum(0.0, 1.0 - v[:, None] ** 2 - u[None, :] ** 2).astype(np.float32)


def stripe_histograms(
    codes: jax.Array, weights: jax.Array, num_bins: int, stripes: int
) -> jax.Array:
    """Weighted, L2-normalised histograms of `stripes` equal horizontal stripes.

    Args:
      codes: [N, H, W] int32 bin of every pixel (H a multiple of `stripes`).
      weights: [H, W] or [N, H, W] float32 weight of every pixel.
      num_bins: histogram length.

    Returns:
      [N, stripes, num_bins] float32; stripe s covers rows [s * H / stripes, (s + 1) * H /
      stripes); each histogram has unit L2 norm [K] (0 if its weights are all 0).
    """
    n, h, w = codes.shape
    if h % stripes:
        raise ValueError(f"{h} rows do not split into {stripes} equal stripes.")
    weights = jnp.broadcast_to(weights, codes.shape)
    index = (jnp.arange(h) // (h // stripes))[:, None] * num_bins + codes
    hist = jax.vmap(
        lambda i, v: jnp.zeros(stripes * num_bins, jnp.float32).at[i.reshape(-1)].add(v.reshape(-1))
    )(index, weights).reshape(n, stripes, num_bins)
    norm = jnp.linalg.norm(hist, axis=-1, keepdims=True)
    return hist / jnp.where(norm > 0, norm, 1.0)


def hs_bins(hsv: jax.Array, bins=HS_BINS) -> jax.Array:
    """[..., 3] HSV in [0, 1] -> [...] int32 joint hue-saturation bin H * bins_s + S."""
    h = jnp.minimum(jnp.floor(hsv[..., 0] * bins[0]), bins[0] - 1).astype(jnp.int32)
    s = jnp.minimum(jnp.floor(hsv[..., 1] * bins[1]), bins[1] - 1).astype(jnp.int32)
    return h * bins[1] + s


def rgb_bins(rgb: jax.Array, bins: int = RGB_BINS) -> jax.Array:
    """[..., 3] RGB in [0, 1] -> [...] int32 joint bin R * bins² + G * bins + B."""
    q = jnp.minimum(jnp.floor(rgb * bins), bins - 1).astype(jnp.int32)
    return q[..., 0] * bins * bins + q[..., 1] * bins + q[..., 2]


def cell_weights(size: int, cell: int = HOG_CELL) -> np.ndarray:
    """[size // cell, size] float32: the share of pixel i's vote that cell c receives along
    one axis, by linear interpolation between the two nearest cell centres.

    Pixel i's centre sits at i + 1/2 and cell c's centre at (c + 1/2) * cell, so pixel i lies
    at p = (i + 1/2) / cell - 1/2 in cell units; cell floor(p) gets 1 - frac(p), cell
    floor(p) + 1 gets frac(p). Choice (Dalal & Triggs §6.3 name no border rule): a share
    that falls on a cell outside the grid is dropped, so the outer half-cell's pixels vote
    only partly.
    """
    cells = size // cell
    p = (np.arange(size) + 0.5) / cell - 0.5
    low = np.floor(p).astype(int)
    frac = p - low
    out = np.zeros((cells, size), np.float64)
    for c, w in ((low, 1.0 - frac), (low + 1, frac)):
        inside = (c >= 0) & (c < cells)
        out[c[inside], np.flatnonzero(inside)] = w[inside]
    return out.astype(np.float32)


def hog_votes(
    magnitude: jax.Array,
    angle: jax.Array,
    cell: int = HOG_CELL,
    orientations: int = HOG_ORIENTATIONS,
) -> jax.Array:
    """Orientation histograms of cells with trilinear votes (Dalal & Triggs 2005 §6.3).

    Args:
      magnitude: [N, H, W] float32 gradient magnitude of every pixel.
      angle: [N, H, W] float32 unsigned orientation in [0, π) radians.

    Returns:
      [N, H // cell, W // cell, orientations] float32. Each pixel's magnitude is shared
      between the two orientation bins whose centres enclose its angle (bin b centred at
      (b + 1/2) π / orientations, wrapping around at π; linear weights) and between the 2x2
      cells whose centres enclose it (`cell_weights`), i.e. trilinearly.
      Choice: the bin centres (the authors name no HOG implementation; [A2]).
    """
    h, w = magnitude.shape[1:]
    t = angle / (jnp.pi / orientations) - 0.5
    low = jnp.floor(t)
    frac = t - low
    low = jnp.mod(low.astype(jnp.int32), orientations)
    soft = (1.0 - frac)[..., None] * jax.nn.one_hot(low, orientations) + frac[
        ..., None
    ] * jax.nn.one_hot(jnp.mod(low + 1, orientations), orientations)
    votes = magnitude[..., None] * soft  # [N, H, W, O]
    rows = jnp.asarray(cell_weights(h, cell))
    cols = jnp.asarray(cell_weights(w, cell))
    return jnp.einsum("ry,nyxo,cx->nrco", rows, votes, cols, precision="highest")


def hog_cells(rgb: jax.Array, cell: int = HOG_CELL, orientations: int = HOG_ORIENTATIONS):
    """Orientation histograms of cell x cell-pixel cells (Dalal & Triggs 2005 §6.2-6.3).

    Args:
      rgb: [N, H, W, C] float32 (C colour channels, or 1).

    Returns:
      [N, H // cell, W // cell, orientations] float32: `hog_votes` of the gradient magnitudes
      and unsigned orientations in [0, 180°). Gradients are the centred differences
      [-1, 0, 1] with replicated borders, per channel; each pixel takes the channel with the
      largest magnitude (Dalal & Triggs §6.2, colour images).
    """
    padded = jnp.pad(rgb, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    gx = padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2]
    gy = padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1]
    magnitudes = jnp.sqrt(gx**2 + gy**2)
    best = jnp.argmax(magnitudes, axis=-1)[..., None]
    gx = jnp.take_along_axis(gx, best, axis=-1)[..., 0]
    gy = jnp.take_along_axis(gy, best, axis=-1)[..., 0]
    magnitude = jnp.take_along_axis(magnitudes, best, axis=-1)[..., 0]
    angle = jnp.mod(jnp.arctan2(gy, gx), jnp.pi)
    return hog_votes(magnitude, angle, cell, orientations)


def hog_blocks(cells: jax.Array, block: int = HOG_BLOCK, eps: float = HOG_EPS) -> jax.Array:
    """[N, CH, CW, O] cell histograms -> [N, (CH-1)(CW-1) * 4 * O] L2-normalised blocks.

    Blocks of block x block cells at a stride of one cell, each vector v scaled to
    v / sqrt(|v|² + eps²) (Dalal & Triggs 2005 §6.4, L2-norm). The authors clip at 1 after
    it [A2], which leaves a unit vector unchanged, so L2-Hys reduces to this.
    """
    n, ch, cw, o = cells.shape
    rows, cols = ch - block + 1, cw - block + 1
    parts = [cells[:, dy : dy + rows, dx : dx + cols] for dy in range(block) for dx in range(block)]
    blocks = jnp.concatenate(parts, axis=-1)  # [N, rows, cols, block² * O]
    norm = jnp.sqrt(jnp.sum(blocks**2, axis=-1, keepdims=True) + eps**2)
    return (blocks / norm).reshape(n, -1)


def whos_length(height: int, width: int) -> int:
    """Length of `whos` at height x width (2960 at 128x64: 15 stripes x (64 HS + 64 RGB) +
    13 x 5 HOG blocks x 16)."""
    colour = (2 * STRIPES - 1) * (HS_BINS[0] * HS_BINS[1] + RGB_BINS**3)
    rows, cols = inner_window(height, width)
    ch = (rows.stop - rows.start) // HOG_CELL
    cw = (cols.stop - cols.start) // HOG_CELL
    return colour + (ch - HOG_BLOCK + 1) * (cw - HOG_BLOCK + 1) * HOG_BLOCK**2 * HOG_ORIENTATIONS


@jax.jit
def whos(images: jax.Array) -> jax.Array:
    """WHOS descriptor of a batch; see `whos_batch`. One compiled call that loops over the
    images (`jax.lax.map`), faster per image on CPU than vectorising over the batch."""
    return jax.lax.map(lambda image: whos_batch(image[None])[0], images)


def whos_batch(images: jax.Array) -> jax.Array:
    """WHOS descriptor of a batch (Lisanti et al. TPAMI 2015).

    Args:
      images: [N, H, W, 3] float32 RGB in [0, 255]; the authors' size is 128 x 64
        (`IMAGE_SIZE`); H must be a multiple of 16 and W of 8.

    Returns:
      [N, whos_length(H, W)] float32, the element-wise square root [K] of
      [HS histograms of the 8 first-level stripes, then of the 7 second-level stripes,
       RGB histograms likewise, HOG blocks of the inner window]. Both stripe levels span the
      full width [A1]; the colour histograms are weighted by `center_weights` of the whole
      image; the HOG is not weighted.
    """
    rgb = images.astype(jnp.float32) / 255.0
    n, height, width, _ = rgb.shape
    rows, cols = inner_window(height, width)
    second = second_level_rows(height)
    weights = jnp.asarray(center_weights(height, width))
    colour = []
    for codes, num_bins in [
        (hs_bins(rgb_to_hsv(rgb)), HS_BINS[0] * HS_BINS[1]),
        (rgb_bins(rgb), RGB_BINS**3),
    ]:
        level1 = stripe_histograms(codes, weights, num_bins, STRIPES)
        level2 = stripe_histograms(codes[:, second], weights[second], num_bins, STRIPES - 1)
        colour.append(jnp.concatenate([level1, level2], axis=1).reshape(n, -1))
    hog = hog_blocks(hog_cells(rgb[:, rows, cols]))
    return jnp.sqrt(jnp.concatenate([*colour, hog], axis=1))
