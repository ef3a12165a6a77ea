"""WHOS: Weighted Histograms of Overlapping Stripes (Lisanti, Masi, Bagdanov & Del Bimbo,
"Person re-identification by iterative re-weighted sparse ranking", IEEE TPAMI 37(8), 2015,
the descriptor section; its section number is unverified), in JAX.

    features = whos(images)        # [N, 128, 64, 3] float32 in [0, 255] -> [N, 5700] float32

The descriptor pools colour histograms over overlapping horizontal stripes, every pixel
weighted by a centre-support kernel that down-weights the background at the image sides, and
adds a HOG descriptor of the whole image. Stages (each tested on its own):

  center_weights     Epanechnikov kernel over the image columns
  stripe_histograms  weighted histograms of overlapping horizontal stripes, L1-normalised
  hs_bins, rgb_bins  8x8 hue-saturation and 4x4x4 RGB joint bins
  hog                Dalal-Triggs HOG: 8x8-pixel cells, 9 unsigned orientations, 2x2-cell
                     blocks, L2 block normalisation

Sources. The paper's text was not available to us. What the authors themselves publish
(github.com/glisanti/WHOS: README.md and the descriptor figure media/descriptor.png) gives:
the TPAMI descriptor is HS + RGB + HOG (the extended one with Lab and LBP is the ICDSC 2014
variant, not used here); the stripes are two levels, 8 stripes over the image and 7 stripes
overlapped between them ("Horizontal Stripes Second Level (Overlapped)"), i.e. the 15 stripes
of `stripe_layout`; the pixel weights are an "Epanechnikov Mask" centred on the person. The
figure gives no bin counts, stripe height in pixels, kernel bandwidth, HOG parameters or
normalisation, so those remain marked "Choice:" below (bins 8x8 HS / 4x4x4 RGB as we know
them from the paper's descriptions, unverified against its text).
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np

from jaxreid.classical.lomo import rgb_to_hsv, to_gray

# Unverified against the paper's text (its section number too): 128x64 images, 8x8 HS and
# 4x4x4 RGB histograms per stripe; the same values in Kodirov's third-party re-implementation
# (github.com/RSL-NEU/person-reid-benchmark, FeatureExtraction/util/demo_kcca_fea/
# PETA_cal_color_histogram.m, whose author calls it possibly imperfect).
IMAGE_SIZE = (128, 64)  # Lisanti 2015: images normalised to 128x64.
HS_BINS = (8, 8)  # Lisanti 2015: hue-saturation histogram, 8x8 bins.
RGB_BINS = 4  # Lisanti 2015: RGB histogram, 4x4x4 bins.
# glisanti/WHOS media/descriptor.png (authors' figure): 8 first-level stripes plus 7 second-level
# stripes overlapping them, 15 in all. Choice: the second level is offset by exactly half a
# stripe (the figure shows it so, no number is given); the two levels come interleaved in the
# output (stripe s covers rows [8s, 8s + 16) at 128 rows), a fixed permutation of the
# level-by-level order that neither Euclidean nor XQDA matching depends on.
STRIPES = 8
HOG_CELL = 8  # Dalal & Triggs CVPR 2005 §6: 8x8-pixel cells, 9 unsigned orientation bins,
HOG_ORIENTATIONS = 9  # 2x2-cell blocks with a one-cell stride, L2 normalisation.
HOG_BLOCK = 2
HOG_EPS = 1e-3  # Dalal & Triggs §6.4: ε in v / sqrt(|v|² + ε²) (images in [0, 1]).


def center_weights(width: int) -> np.ndarray:
    """[width] float32 Epanechnikov kernel 1 - u² over the columns, u in (-1, 1).

    u is the distance of the column centre from the image's vertical axis in units of half
    the width, so the kernel is largest in the middle (the person) and falls to near 0 at the
    sides (background). Choice: horizontal-only support, full width as bandwidth. Unverified:
    the authors' figure (glisanti/WHOS media/descriptor.png, "Epanechnikov Mask") shows a 2-D
    elliptical mask that also falls off towards the top and bottom rows; its bandwidths are not
    given there, so this 1-D form is kept until the paper's values can be checked.
    """
    u = (np.arange(width) + 0.5 - width / 2.0) / (width / 2.0)
    return np.maximum(0.0, 1.0 - u**2).astype(np.float32)


def stripe_layout(height: int, stripes: int = STRIPES) -> tuple[int, int, int]:
    """(stripe height, stride, number of stripes): stripes of height // stripes rows at a
    stride of half that, covering the image top to bottom (2 * stripes - 1 stripes)."""
    size = height // stripes
    if size < 2 or size % 2:
        raise ValueError(
            f"Image height {height} gives stripes of {size} rows; expected an even number >= 2 "
            f"(height a multiple of {2 * stripes})."
        )
    return size, size // 2, 2 * stripes - 1


def stripe_histograms(
    codes: jax.Array, weights: jax.Array, num_bins: int, stripes: int = STRIPES
) -> jax.Array:
    """Weighted, L1-normalised histograms of overlapping horizontal stripes.

    Args:
      codes: [N, H, W] int32 bin of every pixel.
      weights: [H, W] or [N, H, W] float32 weight of every pixel.
      num_bins: histogram length.

    Returns:
      [N, num_stripes, num_bins] float32; stripe s covers rows [s * stride, s * stride +
      size) (`stripe_layout`); each histogram sums to 1 (0 if its weights are all 0).
    """
    n, h, w = codes.shape
    size, stride, count = stripe_layout(h, stripes)
    weights = jnp.broadcast_to(weights, codes.shape)
    half_rows = stride * (count + 1)
    row_cell = (jnp.arange(half_rows) // stride)[:, None]
    index = row_cell * num_bins + codes[:, :half_rows]
    cells = jax.vmap(
        lambda i, v: (
            jnp.zeros((count + 1) * num_bins, jnp.float32).at[i.reshape(-1)].add(v.reshape(-1))
        )
    )(index, weights[:, :half_rows]).reshape(n, count + 1, num_bins)
    hist = cells[:, :-1] + cells[:, 1:]
    total = hist.sum(axis=-1, keepdims=True)
    return hist / jnp.where(total > 0, total, 1.0)


def hs_bins(hsv: jax.Array, bins=HS_BINS) -> jax.Array:
    """[..., 3] HSV in [0, 1] -> [...] int32 joint hue-saturation bin H * bins_s + S."""
    h = jnp.minimum(jnp.floor(hsv[..., 0] * bins[0]), bins[0] - 1).astype(jnp.int32)
    s = jnp.minimum(jnp.floor(hsv[..., 1] * bins[1]), bins[1] - 1).astype(jnp.int32)
    return h * bins[1] + s


def rgb_bins(rgb: jax.Array, bins: int = RGB_BINS) -> jax.Array:
    """[..., 3] RGB in [0, 1] -> [...] int32 joint bin R * bins² + G * bins + B."""
    q = jnp.minimum(jnp.floor(rgb * bins), bins - 1).astype(jnp.int32)
    return q[..., 0] * bins * bins + q[..., 1] * bins + q[..., 2]


def hog_cells(gray: jax.Array, cell: int = HOG_CELL, orientations: int = HOG_ORIENTATIONS):
    """Orientation histograms of cell x cell-pixel cells (Dalal & Triggs 2005 §6.2-6.3).

    Args:
      gray: [N, H, W] float32.

    Returns:
      [N, H // cell, W // cell, orientations] float32: per cell, the gradient magnitudes
      summed into the bin of their unsigned orientation in [0, 180°). Gradients are the
      centred differences [-1, 0, 1] with replicated borders. Choice: each pixel votes into
      one bin (no bilinear interpolation between bins or cells).
    """
    padded = jnp.pad(gray, ((0, 0), (1, 1), (1, 1)), mode="edge")
    gx = padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2]
    gy = padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1]
    magnitude = jnp.sqrt(gx**2 + gy**2)
    angle = jnp.mod(jnp.arctan2(gy, gx), jnp.pi)
    bins = jnp.minimum(jnp.floor(angle / jnp.pi * orientations), orientations - 1).astype(jnp.int32)
    n, h, w = gray.shape
    ch, cw = h // cell, w // cell
    one_hot = jax.nn.one_hot(bins[:, : ch * cell, : cw * cell], orientations)
    votes = one_hot * magnitude[:, : ch * cell, : cw * cell, None]
    return votes.reshape(n, ch, cell, cw, cell, orientations).sum(axis=(2, 4))


def hog_blocks(cells: jax.Array, block: int = HOG_BLOCK, eps: float = HOG_EPS) -> jax.Array:
    """[N, CH, CW, O] cell histograms -> [N, (CH-1)(CW-1) * 4 * O] L2-normalised blocks.

    Blocks of block x block cells at a stride of one cell, each vector v scaled to
    v / sqrt(|v|² + eps²) (Dalal & Triggs 2005 §6.4, L2-norm).
    """
    n, ch, cw, o = cells.shape
    rows, cols = ch - block + 1, cw - block + 1
    parts = [cells[:, dy : dy + rows, dx : dx + cols] for dy in range(block) for dx in range(block)]
    blocks = jnp.concatenate(parts, axis=-1)  # [N, rows, cols, block² * O]
    norm = jnp.sqrt(jnp.sum(blocks**2, axis=-1, keepdims=True) + eps**2)
    return (blocks / norm).reshape(n, -1)


def whos_length(height: int, width: int) -> int:
    """Length of `whos` at height x width (5700 at 128x64)."""
    _, _, stripes = stripe_layout(height)
    colour = stripes * (HS_BINS[0] * HS_BINS[1] + RGB_BINS**3)
    ch, cw = height // HOG_CELL, width // HOG_CELL
    return colour + (ch - HOG_BLOCK + 1) * (cw - HOG_BLOCK + 1) * HOG_BLOCK**2 * HOG_ORIENTATIONS


def _unit(x: jax.Array) -> jax.Array:
    norm = jnp.linalg.norm(x, axis=1, keepdims=True)
    return x / jnp.where(norm > 0, norm, 1.0)


@jax.jit
def whos(images: jax.Array) -> jax.Array:
    """WHOS descriptor of a batch; see `whos_batch`. One compiled call that loops over the
    images (`jax.lax.map`), faster per image on CPU than vectorising over the batch."""
    return jax.lax.map(lambda image: whos_batch(image[None])[0], images)


def whos_batch(images: jax.Array) -> jax.Array:
    """WHOS descriptor of a batch (Lisanti et al. TPAMI 2015).

    Args:
      images: [N, H, W, 3] float32 RGB in [0, 255]; the paper's size is 128 x 64
        (`IMAGE_SIZE`); H must be a multiple of 16.

    Returns:
      [N, whos_length(H, W)] float32: [HS stripe histograms, RGB stripe histograms, HOG],
      each of the three groups scaled to unit L2 norm (Choice: so that each weighs equally in
      a Euclidean distance).
    """
    rgb = images.astype(jnp.float32) / 255.0
    n = rgb.shape[0]
    weights = jnp.asarray(center_weights(rgb.shape[2]))[None, :]
    hs = stripe_histograms(hs_bins(rgb_to_hsv(rgb)), weights, HS_BINS[0] * HS_BINS[1])
    rgb_hist = stripe_histograms(rgb_bins(rgb), weights, RGB_BINS**3)
    hog = hog_blocks(hog_cells(to_gray(rgb)))
    return jnp.concatenate(
        [_unit(hs.reshape(n, -1)), _unit(rgb_hist.reshape(n, -1)), _unit(hog)], axis=1
    )
