"""LOMO: Local Maximal Occurrence features (Liao, Hu, Zhu & Li, CVPR 2015, §3), in JAX.

    features = lomo(images)        # [N, 128, 48, 3] float32 in [0, 255] -> [N, 26960] float32

One jit-compiled, batched function of fixed-size images (`method.extract_features` feeds
a whole image set through it in padded batches). The stages, each tested on its own:

  retinex            multi-scale Retinex with colour restoration (§3.1; sigmas 5 and 20)
  hsv_levels         RGB -> HSV, each channel quantised to 8 levels (§3.2; 8x8x8 = 512 bins)
  joint_hsv_bins     the joint bin V * 64 + S * 8 + H of three level maps
  siltp_codes        scale-invariant local ternary patterns, 4 neighbours at radius R
                     (§3.2, Liao et al. CVPR 2010; tau = 0.3, R = 3 and 5; 3^4 = 81 codes)
  window_histograms  histograms of 10x10 sub-windows with stride 5 (§3.2)
  max_occurrence     the maximum of every bin over the sub-windows of one horizontal strip
  average_pool       2x2 average pooling (the three scales of §3.2); pool_levels for the
                     quantised HSV levels
  log_normalize      log(x + 1) and unit L2 norm (§3.2, end)

The pipeline is that of the authors' released MATLAB code, LOMO.m (v1.0, 2015-04-29, in Liao's
LOMO_XQDA release), where the paper leaves it open:
  - PyramidMaxJointHist quantises the Retinex HSV image to 8 levels per channel *before* the
    pyramid and pools those level maps (ColorPooling: floor of the 2x2 mean), so a coarser
    scale's bin is built from pooled levels, not from a pooled image;
  - PyramidMaxSILTPHist codes rgb2gray of the uint8 image (rounded to integers) and pools the
    grey image (Pooling: 2x2 mean), skipping a radius once the width is below 2R + 1;
  - each of the three feature types (joint HSV, SILTP R=3, SILTP R=5) gets log(x + 1) and one
    unit L2 norm over all its scales together (`descriptors = normc(log(descriptors + 1))`
    after the scale loop): three normalised parts, not one per scale;
  - SILTP.m's default encoder writes 1 for a neighbour below (1 - τ) I_c and 2 above
    (1 + τ) I_c.
Retinex: LOMO.m calls `Retinex(I)`, but the release ships no MATLAB source for it (issue #27:
a compiled binary), so its constants here are taken from the papers where they give them and
are otherwise jaxreid's choice, marked "Choice:" (see `retinex`).
"""

from __future__ import annotations

import fractions
import functools

import jax
import jax.numpy as jnp
import numpy as np

IMAGE_SIZE = (128, 48)  # (height, width); Liao 2015 §5.1: images normalised to 128x48.
RETINEX_SIGMAS = (5.0, 20.0)  # Liao 2015 §3.1: "σ = 5 and 20".
# Colour restoration of Jobson, Rahman & Woodell (IEEE TIP 1997, "A multiscale retinex for
# bridging the gap between color images and the human observation of scenes", Eqs. 6-7):
# C_i = β (log(α I_i) - log Σ_c I_c), α = 125, β = 46. Choice: Liao 2015 does not say which
# restoration its Retinex uses; these are Jobson's.
CRF_ALPHA = 125.0
CRF_BETA = 46.0
# Choice: a simplest colour balance after Retinex that clips 1% at each end of every channel
# (no source: the released Retinex is a binary, Liao 2015 §3.1 names no constant).
BALANCE_CLIP = 0.01
HSV_BINS = 8  # Liao 2015 §3.2: 8x8x8-bin joint HSV histogram.
SILTP_TAU = 0.3  # Liao 2015 §3.2: "the scale factor τ = 0.3".
SILTP_RADII = (3, 5)  # Liao 2015 §3.2: SILTP^{0.3}_{4,3} and SILTP^{0.3}_{4,5}.
SILTP_POINTS = 4  # Four neighbours: 3^4 = 81 codes per pixel.
SILTP_CODES = 3**SILTP_POINTS
BLOCK_SIZE = 10  # Liao 2015 §3.2: 10x10 sub-windows ...
BLOCK_STEP = 5  # ... with an overlapping step of 5 pixels.
NUM_SCALES = 3  # Liao 2015 §3.2: the original image and two 2x2 average poolings.
FEATURE_LENGTH = 26960  # Liao 2015 §3.2: the LOMO length at 128x48.
# MATLAB rgb2gray's documented weights (ITU-R BT.601 luma), which LOMO.m's
# PyramidMaxSILTPHist applies to the uint8 image (and so rounds to integers).
GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)


# --- Retinex -----------------------------------------------------------------------------------


def gaussian_blur_matrix(size: int, sigma: float) -> np.ndarray:
    """[size, size] float32 matrix B with (B @ x) = x filtered by a normalised Gaussian.

    Choice (the released Retinex is a binary): 2 * floor(3 sigma) + 1 taps and a replicated
    border (MATLAB fspecial / imfilter 'replicate' conventions), so blurring a 2-D image is
    `B_h @ image @ B_w.T`; a matrix product is also the fastest form on CPU and accelerators.
    """
    half = int(np.floor(3 * sigma))
    taps = np.arange(-half, half + 1)
    kernel = np.exp(-(taps**2) / (2.0 * sigma**2))
    kernel /= kernel.sum()
    out = np.zeros((size, size), np.float64)
    for i in range(size):
        np.add.at(out[i], np.clip(i + taps, 0, size - 1), kernel)
    return out.astype(np.float32)


def _blur(images: jax.Array, sigma: float) -> jax.Array:
    """[N, H, W, C] -> the same, Gaussian-blurred per channel with replicated borders."""
    h, w = images.shape[1:3]
    bh = jnp.asarray(gaussian_blur_matrix(h, sigma))
    bw = jnp.asarray(gaussian_blur_matrix(w, sigma))
    return jnp.einsum("ij,njkc,lk->nilc", bh, images, bw, precision="highest")


def order_statistics(values: jax.Array, ranks) -> jax.Array:
    """The ranks[j]-th smallest entries (0-based) of every row of `values`, exactly.

    Args:
      values: [..., M] float32 (finite).
      ranks: static sequence of ints in [0, M).

    Returns:
      [..., len(ranks)] float32. A 32-step bisection over the order-preserving unsigned-int
      image of the float bits (count of entries <= the candidate), instead of a sort: XLA's
      CPU sort of the 6,144 pixels of a 128x48 channel costs ~5 ms, these 32 passes ~0.1 ms.
    """
    bits = jax.lax.bitcast_convert_type(values, jnp.int32)
    keys = jax.lax.bitcast_convert_type(bits ^ ((bits >> 31) & 0x7FFFFFFF), jnp.uint32)
    keys = keys ^ jnp.uint32(0x80000000)  # monotone in the float value
    target = jnp.asarray(ranks, jnp.int32) + 1  # want the smallest key with count >= target
    shape = keys.shape[:-1] + (len(ranks),)

    def step(_, bounds):
        lo, hi = bounds
        mid = lo + (hi - lo) // 2
        count = jnp.sum(keys[..., None, :] <= mid[..., None], axis=-1, dtype=jnp.int32)
        enough = count >= target
        return jnp.where(enough, lo, mid + 1), jnp.where(enough, mid, hi)

    lo = jnp.zeros(shape, jnp.uint32)
    hi = jnp.full(shape, 0xFFFFFFFF, jnp.uint32)
    key, _ = jax.lax.fori_loop(0, 32, step, (lo, hi))
    key = key ^ jnp.uint32(0x80000000)
    bits = jax.lax.bitcast_convert_type(key, jnp.int32)
    return jax.lax.bitcast_convert_type(bits ^ ((bits >> 31) & 0x7FFFFFFF), jnp.float32)


def simplest_color_balance(images: jax.Array, clip: float = BALANCE_CLIP) -> jax.Array:
    """Per image and channel: clip at the `clip` and 1 - `clip` quantiles, rescale to [0, 1].

    Choice: quantiles by linear interpolation between order statistics (NumPy's default),
    per channel of each image.
    """
    n, h, w, c = images.shape
    m = h * w
    flat = jnp.swapaxes(images.reshape(n, m, c), 1, 2)  # [N, C, M]
    positions = (clip * (m - 1), (1.0 - clip) * (m - 1))
    floors = [int(np.floor(p)) for p in positions]
    ranks = [min(r, m - 1) for f in floors for r in (f, f + 1)]
    stats = order_statistics(flat, ranks)
    bounds = []
    for j, (p, f) in enumerate(zip(positions, floors)):
        a, b = stats[..., 2 * j], stats[..., 2 * j + 1]
        bounds.append((a + (p - f) * (b - a))[..., None])
    lo, hi = bounds
    out = (jnp.clip(flat, lo, hi) - lo) / jnp.maximum(hi - lo, 1e-12)
    return jnp.swapaxes(out, 1, 2).reshape(n, h, w, c)


def retinex(images: jax.Array, sigmas=RETINEX_SIGMAS) -> jax.Array:
    """Multi-scale Retinex with colour restoration (Liao 2015 §3.1; Jobson et al. 1997).

    Only the two Gaussian scales are Liao's (§3.1); the +1 offset, the colour restoration's
    α and β (Jobson et al.), the 1% colour balance and the float output in [0, 1] are
    jaxreid's choices (the released Retinex is a binary; module docstring).

    Args:
      images: [N, H, W, 3] float32 RGB in [0, 255].
      sigmas: Gaussian surround scales in pixels.

    Returns:
      [N, H, W, 3] float32 in [0, 1]: with I = image + 1 (so log is finite),
      MSR = mean_s (log I - log(G_s * I)), times the colour restoration
      β (log(α I) - log Σ_c I), then `simplest_color_balance`. (The balance rescales
      each channel linearly, so β cancels; α does not.)
    """
    x = images.astype(jnp.float32) + 1.0
    log_x = jnp.log(x)
    msr = sum(log_x - jnp.log(_blur(x, s)) for s in sigmas) / len(sigmas)
    crf = CRF_BETA * (jnp.log(CRF_ALPHA * x) - jnp.log(jnp.sum(x, axis=-1, keepdims=True)))
    return simplest_color_balance(crf * msr)


# --- colour and texture codes ------------------------------------------------------------------


def rgb_to_hsv(rgb: jax.Array) -> jax.Array:
    """[..., 3] RGB in [0, 1] -> [..., 3] HSV in [0, 1] (MATLAB rgb2hsv; grey: H = S = 0)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = jnp.max(rgb, axis=-1)
    delta = v - jnp.min(rgb, axis=-1)
    safe = jnp.where(delta > 0, delta, 1.0)
    s = jnp.where(v > 0, delta / jnp.where(v > 0, v, 1.0), 0.0)
    h = jnp.where(
        v == r, (g - b) / safe, jnp.where(v == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe)
    )
    h = jnp.where(delta > 0, jnp.mod(h / 6.0, 1.0), 0.0)
    return jnp.stack([h, s, v], axis=-1)


def hsv_levels(hsv: jax.Array, bins: int = HSV_BINS) -> jax.Array:
    """[..., 3] HSV in [0, 1] -> [..., 3] float32 levels min(floor(x * bins), bins - 1), whole
    numbers in [0, bins) (LOMO.m, PyramidMaxJointHist: `min(floor(I * colorBins), colorBins-1)`).
    Kept as floats because the coarser scales average them (`pool_levels`)."""
    return jnp.minimum(jnp.floor(hsv * bins), bins - 1)


def pool_levels(levels: jax.Array) -> jax.Array:
    """[N, H, W, 3] level maps -> [N, H // 2, W // 2, 3]: floor of each 2x2 block's mean
    (LOMO.m, ColorPooling 'average': `floor(mean(outImages, 5))`)."""
    return jnp.floor(average_pool(levels))


def joint_hsv_bins(levels: jax.Array, bins: int = HSV_BINS) -> jax.Array:
    """[..., 3] HSV levels -> [...] int32 joint bin V * bins^2 + S * bins + H in [0, bins^3)
    (the channel order of LOMO.m's PyramidMaxJointHist)."""
    q = levels.astype(jnp.int32)
    return q[..., 2] * bins * bins + q[..., 1] * bins + q[..., 0]


def to_gray(images: jax.Array) -> jax.Array:
    """[N, H, W, 3] float32 RGB in [0, 255] (whole numbers) -> [N, H, W] float32 luma rounded
    to whole numbers, as MATLAB's rgb2gray returns it for the uint8 images LOMO.m reads
    (BT.601 weights; halves round up, as MATLAB rounds positive values)."""
    return jnp.floor(images @ jnp.asarray(GRAY_WEIGHTS, images.dtype) + 0.5)


def siltp_codes(gray: jax.Array, radius: int, tau: float = SILTP_TAU) -> jax.Array:
    """Scale-invariant local ternary pattern of every pixel (Liao et al. CVPR 2010, Eq. 2).

    Args:
      gray: [N, H, W] float32 grey image.
      radius: distance R of the 4 neighbours (right, up, left, down; in this order).
      tau: scale factor τ.

    Returns:
      [N, H, W] int32 in [0, 81): Σ_k 3^k s_k with s_k = 1 if I_k < (1 - τ) I_c,
      2 if I_k > (1 + τ) I_c, else 0 (neighbour k of the centre pixel c; SILTP.m's default
      `encoder = 0`, which LOMO.m uses). The image border is replicated (SILTP.m), so the
      code map has the image's size.
    """
    r = radius
    padded = jnp.pad(gray, ((0, 0), (r, r), (r, r)), mode="edge")
    h, w = gray.shape[1:]
    # The grey image holds whole numbers (pooled: multiples of 1/4 per pooling), so a
    # neighbour often equals (1 ± τ) I_c exactly; float32's (1 - τ) * I_c would round such a
    # tie either way. With τ = p / q the comparisons q I_k < (q - p) I_c are exact in float32
    # (for q <= 1000 and 8-bit images pooled a few times) and decide ties as SILTP.m's double
    # arithmetic does.
    ratio = fractions.Fraction(tau).limit_denominator(1000)
    p, q = float(ratio.numerator), float(ratio.denominator)
    lower, upper = (q - p) * gray, (q + p) * gray
    offsets = ((0, r), (-r, 0), (0, -r), (r, 0))  # (dy, dx): right, up, left, down.
    code = jnp.zeros(gray.shape, jnp.int32)
    for k, (dy, dx) in enumerate(offsets):
        neighbour = q * padded[:, r + dy : r + dy + h, r + dx : r + dx + w]
        s = jnp.where(neighbour < lower, 1, jnp.where(neighbour > upper, 2, 0))
        code = code + s * 3**k
    return code


# --- sub-window histograms, maximal occurrence, pooling, normalisation -------------------------


def window_grid(size: int, block: int = BLOCK_SIZE, step: int = BLOCK_STEP) -> int:
    """Number of sub-window positions along one axis: floor((size - block) / step) + 1, or 0
    when no window fits (LOMO.m's `minRow:blockStep:maxRow` is then empty)."""
    return max(0, (size - block) // step + 1)


def window_histograms(
    codes: jax.Array, num_bins: int, block: int = BLOCK_SIZE, step: int = BLOCK_STEP
) -> jax.Array:
    """Histograms of all block x block sub-windows at stride `step` (Liao 2015 §3.2).

    Args:
      codes: [N, H, W] int32 bin of every pixel, in [0, num_bins).
      num_bins: histogram length.

    Returns:
      [N, rows, cols, num_bins] float32 counts; rows = window_grid(H), cols = window_grid(W).
      Computed as counts of step x step cells (one scatter-add per image) summed over the
      block/step x block/step cells of each window; pixels beyond the last window are
      ignored, as they are by the windows.

    Raises:
      ValueError: if `block` is not a multiple of `step`.
    """
    if block % step:
        raise ValueError(f"block={block} must be a multiple of step={step}.")
    n, h, w = codes.shape
    rows, cols = window_grid(h, block, step), window_grid(w, block, step)
    k = block // step
    ch, cw = rows + k - 1, cols + k - 1  # cells covered by the windows
    cells = codes[:, : ch * step, : cw * step]
    cy = (jnp.arange(ch * step) // step)[:, None]
    cx = (jnp.arange(cw * step) // step)[None, :]
    index = (cy * cw + cx)[None] * num_bins + cells
    counts = jax.vmap(
        lambda i: jnp.zeros(ch * cw * num_bins, jnp.float32).at[i.reshape(-1)].add(1.0)
    )(index).reshape(n, ch, cw, num_bins)
    out = sum(counts[:, dy : dy + rows, dx : dx + cols] for dy in range(k) for dx in range(k))
    return out


def max_occurrence(histograms: jax.Array) -> jax.Array:
    """[N, rows, cols, B] -> [N, rows, B]: each bin's maximum over the windows of a strip.

    Liao 2015 §3.2, Eq. 1 ("local maximal occurrence" along each horizontal strip).
    """
    return jnp.max(histograms, axis=2)


def average_pool(images: jax.Array) -> jax.Array:
    """[N, H, W, ...] -> [N, H // 2, W // 2, ...]: mean of each 2x2 block (odd edges dropped)."""
    n, h, w = images.shape[:3]
    x = images[:, : h // 2 * 2, : w // 2 * 2]
    x = x.reshape(n, h // 2, 2, w // 2, 2, *images.shape[3:])
    return x.mean(axis=(2, 4))


def log_normalize(features: jax.Array) -> jax.Array:
    """[N, D] -> log(x + 1) scaled to unit L2 norm per row (Liao 2015 §3.2; 0 stays 0)."""
    x = jnp.log1p(features)
    norm = jnp.linalg.norm(x, axis=1, keepdims=True)
    return x / jnp.where(norm > 0, norm, 1.0)


# --- the descriptor ----------------------------------------------------------------------------


def scale_sizes(height: int, width: int, num_scales: int, radius: int | None = None):
    """The (height, width) of every scale a feature type is counted at in LOMO.m.

    Args:
      height, width: the input image size.
      num_scales: scales asked for (LOMO.m's numScales).
      radius: None for the joint-HSV part; R for a SILTP part.

    Returns:
      A list of (height, width): scale s is the image pooled 2x2 s times (odd edges dropped).
      It stops at the first scale without a sub-window (`numBlocks == 0`, `break`) and, for
      SILTP, at the first scale narrower than 2R + 1 (LOMO.m's "Skip scale R" `continue`
      skips the pooling too, so every later scale is skipped as well).
    """
    sizes = []
    for _ in range(num_scales):
        if radius is not None and width < 2 * radius + 1:
            break
        if not (window_grid(height) and window_grid(width)):
            break
        sizes.append((height, width))
        height, width = height // 2, width // 2
    return sizes


def lomo_length(height: int, width: int, num_scales: int = NUM_SCALES) -> int:
    """Length of `lomo` at height x width: Σ over the counted scales of strips x bins, for the
    joint-HSV part (512 bins) and each SILTP radius (81 bins); 26,960 at 128x48."""
    length = 0
    for bins, radius in [(HSV_BINS**3, None)] + [(SILTP_CODES, r) for r in SILTP_RADII]:
        sizes = scale_sizes(height, width, num_scales, radius)
        length += bins * sum(window_grid(h) for h, _ in sizes)
    return length


@functools.partial(jax.jit, static_argnames=("num_scales",))
def lomo(images: jax.Array, num_scales: int = NUM_SCALES) -> jax.Array:
    """LOMO descriptor of a batch (Liao 2015 §3); see `lomo_batch` for the layout.

    One compiled call per batch that loops over its images (`jax.lax.map`): one image's
    histograms and Retinex intermediates stay in the CPU caches, which makes this 2-4x
    faster per image than the same computation vectorised over a batch of 16-64.
    """
    return jax.lax.map(lambda image: lomo_batch(image[None], num_scales)[0], images)


def strip_maxima(codes: jax.Array, num_bins: int) -> jax.Array:
    """[N, H, W] int32 codes -> [N, rows * num_bins] float32: each strip's maximal
    occurrences, strip-major (LOMO.m's `reshape(fea, [], numImgs)` of [bins, rows])."""
    return max_occurrence(window_histograms(codes, num_bins)).reshape(codes.shape[0], -1)


def lomo_batch(images: jax.Array, num_scales: int = NUM_SCALES) -> jax.Array:
    """LOMO descriptor of a batch (Liao 2015 §3; LOMO.m), vectorised over the batch and not
    compiled (`lomo` compiles it for one image at a time, which is faster on CPU).

    Args:
      images: [N, H, W, 3] float32 RGB in [0, 255] (uint8 values); the paper's H x W is
        128 x 48 (`IMAGE_SIZE`), where the length is 26,960.
      num_scales: image scales (the original and num_scales - 1 average poolings).

    Returns:
      [N, lomo_length(H, W)] float32 in three parts, as LOMO.m concatenates them: joint HSV
      (all scales), SILTP R=3 (all scales), SILTP R=5 (all scales). Each part is
      `log_normalize`d as a whole (LOMO.m: `normc(log(descriptors + 1))` once per part,
      after its scale loop), so each part has unit L2 norm. Within a part, scale by scale,
      strip by strip, bin by bin.

    The joint-HSV scales pool the quantised level maps (`pool_levels`), the SILTP scales the
    rounded grey image; see the module docstring. Choice: a scale shorter than 2R + 1 but
    wide enough is coded with replicated borders (SILTP.m would stop with an error).
    """
    images = images.astype(jnp.float32)
    height, width = images.shape[1:3]
    levels = hsv_levels(rgb_to_hsv(retinex(images)))
    parts = []
    colour = []
    for scale, _ in enumerate(scale_sizes(height, width, num_scales)):
        if scale:
            levels = pool_levels(levels)
        colour.append(strip_maxima(joint_hsv_bins(levels), HSV_BINS**3))
    parts.append(colour)
    for r in SILTP_RADII:
        gray = to_gray(images)
        texture = []
        for scale, _ in enumerate(scale_sizes(height, width, num_scales, r)):
            if scale:
                gray = average_pool(gray)
            texture.append(strip_maxima(siltp_codes(gray, r), SILTP_CODES))
        parts.append(texture)
    return jnp.concatenate([log_normalize(jnp.concatenate(p, axis=1)) for p in parts if p], axis=1)
