"""LOMO, WHOS and XQDA (jaxreid.classical) against plain NumPy/SciPy computations.

Every stage runs on small hand-made images and is compared with a reference written here
with loops, scipy.ndimage or colorsys, independent of the JAX code under test.
"""

import colorsys
import importlib.util
import json
import os

import ml_collections
import numpy as np
import pytest
import scipy.linalg
import scipy.ndimage

from jaxreid.classical import lomo, method, whos, xqda

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RNG = np.random.default_rng(0)


# --- NumPy references ------------------------------------------------------------------------


def np_gaussian(sigma):
    """MATLAB fspecial('gaussian', 2*floor(3σ)+1, σ), 1-D factor."""
    half = int(np.floor(3 * sigma))
    t = np.arange(-half, half + 1)
    k = np.exp(-(t**2) / (2 * sigma**2))
    return k / k.sum()


def np_retinex(image):
    """Multi-scale Retinex with colour restoration and 1% colour balance, float64."""
    x = image.astype(np.float64) + 1
    msr = np.zeros_like(x)
    for sigma in (5.0, 20.0):
        k = np_gaussian(sigma)
        for c in range(3):
            blurred = scipy.ndimage.correlate(x[..., c], np.outer(k, k), mode="nearest")
            msr[..., c] += np.log(x[..., c]) - np.log(blurred)
    msr /= 2
    crf = 46.0 * (np.log(125.0 * x) - np.log(x.sum(axis=-1, keepdims=True)))
    r = crf * msr
    out = np.empty_like(r)
    for c in range(3):
        lo, hi = np.quantile(r[..., c], 0.01), np.quantile(r[..., c], 0.99)
        out[..., c] = (np.clip(r[..., c], lo, hi) - lo) / (hi - lo)
    return out


def np_windows(codes, bins, block=10, step=5):
    """[H, W] codes -> [rows, cols, bins] histograms of every sub-window, by loops."""
    h, w = codes.shape
    rows, cols = (h - block) // step + 1, (w - block) // step + 1
    out = np.zeros((rows, cols, bins))
    for i in range(rows):
        for j in range(cols):
            win = codes[i * step : i * step + block, j * step : j * step + block]
            out[i, j] = np.bincount(win.ravel(), minlength=bins)
    return out


def np_siltp(gray, radius, tau=0.3):
    h, w = gray.shape
    out = np.zeros((h, w), np.int64)
    for y in range(h):
        for x in range(w):
            c = gray[y, x]
            for k, (dy, dx) in enumerate(((0, radius), (-radius, 0), (0, -radius), (radius, 0))):
                n = gray[min(max(y + dy, 0), h - 1), min(max(x + dx, 0), w - 1)]
                # SILTP.m, encoder 0: 1 below (1 - τ) I_c, 2 above (1 + τ) I_c.
                s = 1 if n < (1 - tau) * c else 2 if n > (1 + tau) * c else 0
                out[y, x] += s * 3**k
    return out


def np_pool(image):
    h, w = image.shape[0] // 2, image.shape[1] // 2
    out = np.zeros((h, w) + image.shape[2:])
    for y in range(h):
        for x in range(w):
            out[y, x] = image[2 * y : 2 * y + 2, 2 * x : 2 * x + 2].mean(axis=(0, 1))
    return out


def np_hsv(rgb):
    return np.apply_along_axis(lambda p: colorsys.rgb_to_hsv(*p), -1, rgb.astype(np.float64))


def np_lognorm(v):
    v = np.log(v + 1)
    return v / np.linalg.norm(v)


# --- LOMO stages -----------------------------------------------------------------------------


def test_gaussian_blur_matrix_is_a_replicate_border_filter():
    x = RNG.uniform(0, 255, (40, 24))
    k = np_gaussian(5.0)
    expected = scipy.ndimage.correlate(x, np.outer(k, k), mode="nearest")
    got = lomo.gaussian_blur_matrix(40, 5.0) @ x @ lomo.gaussian_blur_matrix(24, 5.0).T
    np.testing.assert_allclose(got, expected, rtol=1e-5)  # float32 taps, float64 data


def test_retinex_matches_numpy():
    image = RNG.integers(0, 256, (40, 24, 3)).astype(np.float32)
    got = np.asarray(lomo.retinex(image[None]))[0]
    # float32 logs of values ~ 1..256 and the x46 colour restoration: ~1e-4 relative error
    # before the rescaling to [0, 1] by a range of the same order.
    np.testing.assert_allclose(got, np_retinex(image), atol=2e-3)
    assert got.min() >= 0 and got.max() <= 1


def test_order_statistics_equal_a_sort():
    v = RNG.normal(size=(3, 500)).astype(np.float32)
    v[0, :50] = 0.0  # ties
    v[1, :3] = -0.0
    ranks = [0, 1, 49, 50, 250, 499]
    np.testing.assert_array_equal(
        np.asarray(lomo.order_statistics(v, ranks)), np.sort(v, axis=-1)[:, ranks]
    )


def test_hsv_conversion_and_joint_bins():
    rgb = RNG.uniform(0, 1, (6, 7, 3)).astype(np.float32)
    rgb[0, 0] = 0.5  # grey: H = S = 0
    rgb[0, 1] = 0.0  # black
    np.testing.assert_allclose(np.asarray(lomo.rgb_to_hsv(rgb)), np_hsv(rgb), atol=1e-6)
    # Bin centres of every channel; V * 64 + S * 8 + H, the top value 1.0 in the last bin.
    hsv = np.array([[0.5 / 8, 3.5 / 8, 7.5 / 8], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], np.float32)
    levels = lomo.hsv_levels(hsv)
    np.testing.assert_array_equal(np.asarray(levels), [[0, 3, 7], [7, 7, 7], [0, 0, 0]])
    np.testing.assert_array_equal(
        np.asarray(lomo.joint_hsv_bins(levels)), [7 * 64 + 3 * 8 + 0, 7 * 64 + 7 * 8 + 7, 0]
    )


def test_colour_pyramid_pools_the_quantised_levels():
    """LOMO.m's ColorPooling: floor of the 2x2 mean of the *levels*. Hand-worked 2x2 block
    with V levels 0, 1, 1, 1: the floor of 0.75 is level 0; pooling the image instead
    (V = 0.12, 0.13, 0.13, 0.13 -> 0.1275, level 1) would give level 1."""
    v = np.array([[0.12, 0.13], [0.13, 0.13]], np.float32)  # levels floor(8v): 0, 1, 1, 1
    hsv = np.stack([np.zeros_like(v), np.zeros_like(v), v], axis=-1)[None]
    pooled = np.asarray(lomo.pool_levels(lomo.hsv_levels(hsv)))
    np.testing.assert_array_equal(pooled, np.zeros((1, 1, 1, 3)))
    levels = np.array([[[3, 5, 6], [4, 5, 7]], [[4, 6, 7], [4, 6, 7]]], np.float32)[None]
    # H: (3+4+4+4)/4 = 3.75 -> 3; S: 22/4 = 5.5 -> 5; V: 27/4 = 6.75 -> 6.
    np.testing.assert_array_equal(np.asarray(lomo.pool_levels(levels)), [[[[3, 5, 6]]]])


def test_joint_hsv_window_histograms_match_numpy():
    image = RNG.integers(0, 256, (20, 25, 3)).astype(np.float32)
    hsv = np_hsv(image / 255.0)
    q = np.minimum(np.floor(hsv * 8), 7).astype(int)
    codes = q[..., 2] * 64 + q[..., 1] * 8 + q[..., 0]
    codes_jax = lomo.joint_hsv_bins(lomo.hsv_levels(lomo.rgb_to_hsv(image[None] / 255.0)))
    got = np.asarray(lomo.window_histograms(codes_jax, 512))[0]
    assert got.shape == (3, 4, 512)
    np.testing.assert_array_equal(got, np_windows(codes, 512))


def test_siltp_codes_hand_worked_and_against_loops():
    gray = np.full((7, 7), 100.0, np.float32)
    gray[3, 4] = 140  # right: 140 > 130 -> 2
    gray[2, 3] = 60  # up: 60 < 70 -> 1
    gray[3, 2] = 129  # left: within ±30% -> 0
    got = np.asarray(lomo.siltp_codes(gray[None], radius=1))[0]
    assert got[3, 3] == 2 * 1 + 1 * 3
    # Ties, frequent on whole-number grey images, are not beyond the bounds (SILTP.m decides
    # them in double arithmetic, exact here): around a centre of 90, 117 = 1.3 * 90 and
    # 63 = 0.7 * 90 code 0, although float32 puts 1.3 * 90 at 116.99999.
    gray[3, 3], gray[3, 4], gray[2, 3], gray[3, 2], gray[4, 3] = 90, 117, 63, 100, 118
    got = np.asarray(lomo.siltp_codes(gray[None], radius=1))[0]
    assert got[3, 3] == 2 * 27  # only the neighbour below (k=3): 118 > 117
    image = RNG.uniform(0, 255, (12, 9)).astype(np.float32)
    for radius in (3, 5):
        np.testing.assert_array_equal(
            np.asarray(lomo.siltp_codes(image[None], radius))[0], np_siltp(image, radius)
        )


def test_maximal_occurrence_over_each_strip():
    codes = RNG.integers(0, 81, (22, 30))
    got = np.asarray(lomo.max_occurrence(lomo.window_histograms(codes[None], 81)))[0]
    expected = np_windows(codes, 81).max(axis=1)
    assert got.shape == (3, 81)
    np.testing.assert_array_equal(got, expected)


def test_average_pooling_drops_odd_edges():
    x = RNG.uniform(0, 1, (9, 7, 3)).astype(np.float32)
    # Means of 2x2 float32 blocks vs NumPy's float32: summation order only (rtol 1e-6).
    np.testing.assert_allclose(np.asarray(lomo.average_pool(x[None]))[0], np_pool(x), rtol=1e-6)


def test_log_normalize():
    v = RNG.uniform(0, 20, (2, 13)).astype(np.float32)
    v[1] = 0
    got = np.asarray(lomo.log_normalize(v))
    # float32 log(1 + v) and an L2 norm of 13 terms vs float64: a few ulp (rtol 1e-6).
    np.testing.assert_allclose(got[0], np_lognorm(v[0].astype(np.float64)), rtol=1e-6)
    np.testing.assert_array_equal(got[1], 0)


def np_lomo(image):
    """The whole descriptor from the NumPy stage references above, in LOMO.m's order:
    quantise, then pool the levels (floor of the mean); round the grey image; log and
    normalise each of the three feature types once, over all its scales."""
    q = np.minimum(np.floor(np_hsv(np_retinex(image)) * 8), 7)
    gray = np.floor(image.astype(np.float64) @ np.array(lomo.GRAY_WEIGHTS) + 0.5)
    colour, tex = [], {3: [], 5: []}
    for scale in range(3):
        if scale:
            q = np.floor(np_pool(q))
        codes = (q[..., 2] * 64 + q[..., 1] * 8 + q[..., 0]).astype(int)
        colour.append(np_windows(codes, 512).max(axis=1).ravel())
    for r in (3, 5):
        g = gray
        for scale in range(3):
            if g.shape[1] < 2 * r + 1:  # LOMO.m: "Skip scale R = ..."
                break
            tex[r].append(np_windows(np_siltp(g, r), 81).max(axis=1).ravel())
            g = np_pool(g)
    return np.concatenate([np_lognorm(np.concatenate(p)) for p in (colour, tex[3], tex[5])])


def test_lomo_matches_the_numpy_pipeline_and_published_length():
    assert lomo.lomo_length(128, 48) == lomo.FEATURE_LENGTH == 26960  # Liao 2015 §3.2
    # A smooth image (Retinex differences far from bin edges are rare but possible): compare
    # the colour part loosely and the texture part, computed from the grey original, exactly.
    image = RNG.integers(0, 256, (40, 40, 3)).astype(np.float32)
    got = np.asarray(lomo.lomo(image[None]))[0]
    expected = np_lomo(image)
    # 40 px wide: scales 40, 20, 10; SILTP R=5 skips the 10-px scale (10 < 2R + 1).
    assert lomo.lomo_length(40, 40) == 512 * (7 + 3 + 1) + 81 * (7 + 3 + 1) + 81 * (7 + 3)
    assert got.shape == expected.shape == (lomo.lomo_length(40, 40),)
    colour = 512 * (7 + 3 + 1)
    # Texture part: the same float32 values; an L2 norm over 9,000 terms in another order.
    np.testing.assert_allclose(got[colour:], expected[colour:], atol=1e-6)
    # Float32 Retinex may move a pixel whose HSV value lies within ~1e-3 of a bin edge into
    # the neighbouring bin; allow a few such pixels (each changes one count by 1).
    assert np.abs(got[:colour] - expected[:colour]).sum() < 0.1
    assert np.asarray(lomo.lomo(np.zeros((1, 128, 48, 3), np.float32))).shape == (1, 26960)


def test_lomo_three_part_normalisation_hand_computed():
    """128x48, left 24 columns black, right 24 white. Grey 0 | 255 in every row, so the up
    and down neighbours never differ and SILTP codes depend on the column only: a black
    centre whose right neighbour (k=0) is white codes 2 * 3^0 = 2, a white centre whose left
    neighbour (k=2) is black codes 1 * 3^2 = 9, every other pixel 0. Each strip's maximal
    occurrences over the 10x10 windows at stride 5 (counted by hand; every strip of a scale
    is alike):
      R=3  scale 128x48: codes 2 at columns 21-23, 9 at 24-26; windows x=20 (2: 30, 9: 30)
           and x=0 (0: 100) -> (bin0, bin2, bin9) = (100, 30, 30), 24 strips
           scale 64x24: edge at 12; 2 at 9-11, 9 at 12-14; x=5 (2: 30, 9: 30),
           x=0 (0: 90) -> (90, 30, 30), 11 strips
           scale 32x12: edge at 6; 2 at 3-5, 9 at 6-8; one window x=0: (40, 30, 30), 5 strips
      R=5  scale 128x48: 2 at 19-23, 9 at 24-28 -> (100, 50, 50), 24 strips
           scale 64x24: 2 at 7-11, 9 at 12-16; x=0 (0: 70), x=5 (2: 50), x=10 (9: 50)
           -> (70, 50, 50), 11 strips
           scale 32x12 (12 >= 2R + 1): 2 at 1-5, 9 at 6-10; x=0 -> (10, 50, 40), 5 strips
    LOMO.m applies log(x + 1) and one unit norm to each of the three parts (joint HSV, R=3,
    R=5) after the scale loop."""
    image = np.zeros((128, 48, 3), np.float32)
    image[:, 24:] = 255
    got = np.asarray(lomo.lomo(image[None]))[0].astype(np.float64)
    strips = (24, 11, 5)
    hand = {
        3: [(100, 30, 30), (90, 30, 30), (40, 30, 30)],
        5: [(100, 50, 50), (70, 50, 50), (10, 50, 50 - 10)],
    }
    colour = 512 * sum(strips)
    offset = colour
    for r in (3, 5):
        part = []
        for count, (b0, b2, b9) in zip(strips, hand[r]):
            strip = np.zeros(81)
            strip[[0, 2, 9]] = b0, b2, b9
            part += [strip] * count
        part = np.log(np.concatenate(part) + 1)
        expected = part / np.linalg.norm(part)
        # float32 logs and norm of ~3,000 entries: 1e-6 relative.
        np.testing.assert_allclose(got[offset : offset + 81 * 40], expected, rtol=1e-5, atol=1e-7)
        offset += 81 * 40
    assert offset == len(got) == 26960
    # The colour part (Retinex, not worked by hand) is one unit vector over its three scales.
    np.testing.assert_allclose(np.linalg.norm(got[:colour]), 1, rtol=1e-5)
    assert np.linalg.norm(got[: 512 * 24]) < 0.99  # not a unit vector per scale


# --- WHOS stages -----------------------------------------------------------------------------


def test_center_weights_epanechnikov():
    w = whos.center_weights(6, 8)
    u = (np.arange(8) + 0.5 - 4) / 4
    v = (np.arange(6) + 0.5 - 3) / 3
    expected = np.maximum(0, 1 - v[:, None] ** 2 - u[None, :] ** 2)
    # The float32 mask vs float64: one rounding of 1 - v^2 - u^2 (rtol 1e-6).
    np.testing.assert_allclose(w, expected, rtol=1e-6)
    assert w.shape == (6, 8) and w[2:4, 3:5].min() == w.max() and w[0, 0] == 0


def test_inner_window_is_the_authors_at_128x64():
    rows, cols = whos.inner_window(128, 64)
    # [9:120, 9:56] in MATLAB's 1-based inclusive indexing.
    assert (rows.start + 1, rows.stop, cols.start + 1, cols.stop) == (9, 120, 9, 56)


def test_stripe_histograms_match_numpy():
    codes = RNG.integers(0, 5, (32, 6))
    weights = RNG.uniform(0, 1, (32, 6)).astype(np.float32)
    got = np.asarray(whos.stripe_histograms(codes[None], weights, 5, stripes=4))[0]
    expected = []
    for s in range(4):  # 4 stripes of 8 rows
        rows = slice(8 * s, 8 * s + 8)
        h = np.bincount(codes[rows].ravel(), weights[rows].ravel(), minlength=5)
        expected.append(h / np.linalg.norm(h))
    # float32 weights vs float64 bincount and norm (sum order): ~1e-6, rtol 1e-5.
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="30 rows do not split into 4"):
        whos.stripe_histograms(codes[None, :30], weights[:30], 5, stripes=4)


def test_hs_and_rgb_bins():
    hsv = np.array([[0.99, 0.01, 0.3], [0.5, 1.0, 1.0]], np.float32)
    np.testing.assert_array_equal(np.asarray(whos.hs_bins(hsv)), [7 * 8 + 0, 4 * 8 + 7])
    rgb = np.array([[1.0, 0.3, 0.0], [0.26, 0.74, 0.5]], np.float32)
    np.testing.assert_array_equal(
        np.asarray(whos.rgb_bins(rgb)), [3 * 16 + 1 * 4 + 0, 1 * 16 + 2 * 4 + 2]
    )


def np_hog(rgb, cell=8, orient=4):
    """Dalal-Triggs HOG, a loop per pixel: the colour channel with the largest gradient, its
    magnitude shared between the two nearest orientation-bin centres ((b + 1/2) 180° / orient)
    and the 2x2 nearest cell centres ((c + 1/2) cell); shares on cells outside dropped."""
    h, w, c = rgb.shape
    p = np.pad(rgb.astype(np.float64), ((1, 1), (1, 1), (0, 0)), mode="edge")
    cells = np.zeros((h // cell, w // cell, orient))

    def shares(i, count):  # [(cell, weight)] along one axis
        pos = (i + 0.5) / cell - 0.5
        low = int(np.floor(pos))
        return [
            (k, wt) for k, wt in ((low, 1 - (pos - low)), (low + 1, pos - low)) if 0 <= k < count
        ]

    for y in range(h):
        for x in range(w):
            grads = [
                (p[y + 1, x + 2, k] - p[y + 1, x, k], p[y + 2, x + 1, k] - p[y, x + 1, k])
                for k in range(c)
            ]
            gx, gy = max(grads, key=lambda g: np.hypot(*g))
            t = (np.arctan2(gy, gx) % np.pi) / (np.pi / orient) - 0.5
            b = int(np.floor(t))
            bins = [(b % orient, 1 - (t - b)), ((b + 1) % orient, t - b)]
            for cy, wy in shares(y, h // cell):
                for cx, wx in shares(x, w // cell):
                    for o, wo in bins:
                        cells[cy, cx, o] += np.hypot(gx, gy) * wy * wx * wo
    blocks = []
    for i in range(cells.shape[0] - 1):
        for j in range(cells.shape[1] - 1):
            v = cells[i : i + 2, j : j + 2].reshape(-1)
            blocks.append(v / np.sqrt(np.sum(v**2) + 1e-3**2))
    return cells, np.concatenate(blocks)


def test_hog_cells_and_blocks_match_numpy():
    rgb = RNG.uniform(0, 1, (24, 16, 3)).astype(np.float32)
    cells, blocks = np_hog(rgb)
    got_cells = np.asarray(whos.hog_cells(rgb[None]))[0]
    np.testing.assert_allclose(got_cells, cells, rtol=1e-4, atol=1e-5)  # float32 sums of ~64
    np.testing.assert_allclose(np.asarray(whos.hog_blocks(got_cells[None]))[0], blocks, atol=1e-5)


def test_hog_votes_are_trilinear_hand_worked():
    """One pixel of magnitude 1 at row 5, column 9 of a 16x16 map, angle 30°; 8-px cells,
    4 bins of 45° centred at 22.5°, 67.5°, ...: in cell units the pixel lies at
    (5.5 / 8 - 0.5, 9.5 / 8 - 0.5) = (0.1875, 0.6875), so rows 0/1 take 0.8125/0.1875 and
    columns 0/1 take 0.3125/0.6875; 30° is 1/6 of the way from 22.5° to 67.5°, so bins
    0/1 take 5/6 and 1/6."""
    magnitude = np.zeros((1, 16, 16), np.float32)
    magnitude[0, 5, 9] = 1
    angle = np.full((1, 16, 16), np.deg2rad(30), np.float32)
    got = np.asarray(whos.hog_votes(magnitude, angle, cell=8, orientations=4))[0]
    expected = np.zeros((2, 2, 4))
    for row, wy in ((0, 0.8125), (1, 0.1875)):
        for col, wx in ((0, 0.3125), (1, 0.6875)):
            expected[row, col, :2] = wy * wx * np.array([5 / 6, 1 / 6])
    np.testing.assert_allclose(got, expected, atol=1e-6)  # float32 weights
    # 170° lies between the last bin (157.5°) and the first (22.5° = 202.5° - 180°).
    angle[:] = np.deg2rad(170)
    got = np.asarray(whos.hog_votes(magnitude, angle, cell=8, orientations=4))[0, 0, 0]
    np.testing.assert_allclose(got, 0.8125 * 0.3125 * np.array([5 / 18, 0, 0, 13 / 18]), atol=1e-6)


def test_hog_cells_of_one_bright_pixel_hand_worked():
    """16x16 grey image, 0 except 1 at row 7, column 8. The centred differences give four
    votes of magnitude 1: at (7, 7) and (7, 9) angle 0° (= 180°, halfway between bins 3 and 0:
    1/2 each), at (6, 8) and (8, 8) angle 90° (bins 1 and 2: 1/2 each). Cell shares along an
    axis (pixel i at (i + 0.5) / 8 - 0.5): i=6 -> (0.6875, 0.3125), 7 -> (0.5625, 0.4375),
    8 -> (0.4375, 0.5625), 9 -> (0.3125, 0.6875)."""
    image = np.zeros((1, 16, 16, 1), np.float32)
    image[0, 7, 8] = 1
    share = {6: (0.6875, 0.3125), 7: (0.5625, 0.4375), 8: (0.4375, 0.5625), 9: (0.3125, 0.6875)}
    votes = [((7, 7), (3, 0)), ((7, 9), (3, 0)), ((6, 8), (1, 2)), ((8, 8), (1, 2))]
    expected = np.zeros((2, 2, 4))
    for (y, x), bins in votes:
        for cy in (0, 1):
            for cx in (0, 1):
                for b in bins:
                    expected[cy, cx, b] += 0.5 * share[y][cy] * share[x][cx]
    # e.g. cell (0, 0), bin 0: 0.5 * 0.5625 * (0.5625 + 0.3125) = 0.24609375.
    assert expected[0, 0, 0] == 0.24609375
    got = np.asarray(whos.hog_cells(image))[0]
    np.testing.assert_allclose(got, expected, atol=1e-6)  # float32


def test_second_level_stripes_span_the_full_width_hand_worked():
    """128x64: 16 bands of 8 rows, band k in its own RGB colour (4x4x4 bins: R level k // 4,
    G level k % 4, B level 0), except the 8 columns at each side, in one colour (B level 3).
    First-level stripe s (rows 16s..16s+15) holds bands 2s and 2s+1; second-level stripe s
    (rows 8+16s..8+16s+15, half a stripe lower [A1]) holds bands 2s+1 and 2s+2; and, the
    second level spanning the full width, every second-level stripe also holds the side
    colour: the Epanechnikov weight 1 - v² - u² of column 7 (u² = (24.5/32)² = 0.586) is
    positive on rows 23..104, which meet all seven (rows 8..23, ..., 104..119)."""
    levels = np.array([32, 96, 160, 224], np.float32)  # one value inside each RGB level
    image = np.zeros((128, 64, 3), np.float32)
    for k in range(16):
        image[8 * k : 8 * k + 8] = levels[[k // 4, k % 4, 0]]
    image[:, :8] = image[:, 56:] = levels[[0, 0, 3]]
    band_bin = [(k // 4) * 16 + (k % 4) * 4 for k in range(16)]
    side_bin = 3
    f = np.asarray(whos.whos(image[None]))[0].astype(np.float64) ** 2  # undo the square root
    rgb = f[15 * 64 : 30 * 64].reshape(15, 64)  # 8 first-level, then 7 second-level stripes
    v = (np.arange(128) + 0.5 - 64) / 64
    u = (np.arange(64) + 0.5 - 32) / 32
    weight = np.maximum(0, 1 - v[:, None] ** 2 - u[None, :] ** 2)
    for s, top, bands in [(s, 16 * s, (2 * s, 2 * s + 1)) for s in range(8)] + [
        (8 + s, 8 + 16 * s, (2 * s + 1, 2 * s + 2)) for s in range(7)
    ]:
        hist = np.zeros(64)
        for band in bands:
            rows = slice(max(8 * band, top), min(8 * band + 8, top + 16))
            hist[band_bin[band]] += weight[rows, 8:56].sum()
        hist[side_bin] += weight[top : top + 16, :8].sum() + weight[top : top + 16, 56:].sum()
        assert (hist[side_bin] > 0) == (s >= 8 or 1 <= s <= 6), s
        np.testing.assert_allclose(rgb[s], hist / np.linalg.norm(hist), atol=1e-5)  # float32


def test_whos_length_and_parts():
    # 15 stripes x (64 HS + 64 RGB) + 13 x 5 blocks x 2x2 cells x 4 orientations.
    assert whos.whos_length(128, 64) == 15 * 128 + 13 * 5 * 16 == 2960
    # Colours drawn in HSV away from the 8x8 bin edges (float32 and float64 HSV of a colour
    # on an edge may fall on either side), as RGB in [0, 255].
    hsv = (RNG.integers(0, 8, (2, 128, 64, 3)) + RNG.uniform(0.1, 0.9, (2, 128, 64, 3))) / 8
    hsv[..., 2] = 0.2 + 0.8 * hsv[..., 2]
    image = 255 * np.apply_along_axis(lambda p: colorsys.hsv_to_rgb(*p), -1, hsv)
    image = image.astype(np.float32)
    f = np.asarray(whos.whos(image))
    assert f.shape == (2, 2960) and np.all(f >= 0)
    squared = f.astype(np.float64) ** 2  # undo the final square root
    for k in range(30):  # 15 HS + 15 RGB stripe histograms, each of unit L2 norm before it
        np.testing.assert_allclose(
            np.linalg.norm(squared[:, 64 * k : 64 * k + 64], axis=1), 1, rtol=1e-5
        )
    # The HS part: 8 stripes of 16 rows over the whole image, then 7 over rows 8..119, all
    # columns, pixels weighted by the 2-D Epanechnikov mask.
    rgb = image[0] / 255.0
    hsv = np_hsv(rgb)
    hs = np.minimum(np.floor(hsv[..., 0] * 8), 7) * 8 + np.minimum(np.floor(hsv[..., 1] * 8), 7)
    hs = hs.astype(int)
    v = (np.arange(128) + 0.5 - 64) / 64
    u = (np.arange(64) + 0.5 - 32) / 32
    wts = np.maximum(0, 1 - v[:, None] ** 2 - u[None, :] ** 2)
    hists = []
    for top, count, cols in ((0, 8, slice(0, 64)), (8, 7, slice(0, 64))):
        for s in range(count):
            rows = slice(top + 16 * s, top + 16 * s + 16)
            h = np.bincount(hs[rows, cols].ravel(), wts[rows, cols].ravel(), minlength=64)
            hists.append(h / np.linalg.norm(h))
    # float32 bin weights and sqrt vs float64 (~1e-6); one pixel in another bin moves ~1e-2.
    np.testing.assert_allclose(squared[0, :960], np.concatenate(hists), atol=2e-4)
    # The HOG part: the inner window's HOG, unweighted.
    _, blocks = np_hog(rgb[8:120, 8:56])
    np.testing.assert_allclose(squared[0, 1920:], blocks, atol=1e-4)


# --- extractor input -------------------------------------------------------------------------


def test_depth_is_scaled_per_image_to_8_bits_and_replicated():
    depth = np.array([[[0], [1000]], [[1500], [2000]]], np.uint16)[None]
    got = method.extractor_input(depth)
    assert got.shape == (1, 2, 2, 3) and np.all(got[..., 0] == got[..., 2])
    np.testing.assert_array_equal(got[0, ..., 0], [[0, 255], [128, 1]])  # 255 - 254 * t
    rgb = RNG.integers(0, 256, (1, 3, 2, 3)).astype(np.uint8)
    np.testing.assert_array_equal(method.extractor_input(rgb), rgb)
    ir = RNG.integers(0, 256, (1, 3, 2, 1)).astype(np.uint8)
    np.testing.assert_array_equal(method.extractor_input(ir), np.repeat(ir, 3, -1))


# --- XQDA ------------------------------------------------------------------------------------


def gaussian_problem(num_ids=6, per_id=8, d=5, seed=1):
    """Two views; identities differ only in dims 0-1 (std 0.1 within a class); dims 2+ carry
    large nuisance noise and a view offset, which swamp Euclidean distances."""
    rng = np.random.default_rng(seed)
    means = np.zeros((num_ids, d))
    means[:, :2] = rng.normal(0, 1.0, (num_ids, 2))
    ids = np.repeat(np.arange(num_ids), per_id)

    def view(offset):
        noise = np.concatenate(
            [rng.normal(0, 0.1, (len(ids), 2)), rng.normal(0, 5.0, (len(ids), d - 2))], axis=1
        )
        return means[ids] + noise + offset

    return view(0.0), view(np.r_[0, 0, [3.0] * (d - 2)]), ids


def test_pair_covariances_enumerate_all_cross_view_pairs():
    x, z, ids = gaussian_problem(num_ids=3, per_id=3, d=4)
    z_ids = ids.copy()
    z_ids[0] = 7  # an identity seen in one view only
    intra, extra = np.zeros((4, 4)), np.zeros((4, 4))
    n_i = n_e = 0
    for i in range(len(x)):
        for j in range(len(z)):
            d = (x[i] - z[j])[:, None]
            if ids[i] == z_ids[j]:
                intra, n_i = intra + d @ d.T, n_i + 1
            else:
                extra, n_e = extra + d @ d.T, n_e + 1
    got_i, got_e, gi, ge = xqda.pair_covariances(x, ids, z, z_ids)
    assert (gi, ge) == (n_i, n_e)
    # float64 both sides, the same products summed in another order (~1e-14 relative).
    np.testing.assert_allclose(got_i, intra / n_i, rtol=1e-10)
    np.testing.assert_allclose(got_e, extra / n_e, rtol=1e-10)


def direct_xqda_distance(x, ids, z, z_ids, q, g, lam=0.001):
    """The generalised eigenproblem solved directly (brute-force covariances, SciPy eigh)."""
    d = x.shape[1]
    diffs = x[:, None, :] - z[None, :, :]
    same = ids[:, None] == z_ids[None, :]
    intra = np.einsum("ijk,ijl->kl", diffs[same][:, None], diffs[same][:, None]) / same.sum()
    extra = np.einsum("ijk,ijl->kl", diffs[~same][:, None], diffs[~same][:, None]) / (~same).sum()
    intra = intra + lam * np.eye(d)
    values, vectors = scipy.linalg.eigh(extra, intra)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    r = max(1, int(np.sum(values > 1)))
    w = vectors[:, :r]
    m = np.linalg.inv(w.T @ intra @ w) - np.linalg.inv(w.T @ extra @ w)
    qp, gp = q @ w, g @ w
    diff = qp[:, None, :] - gp[None, :, :]
    return np.einsum("ijk,kl,ijl->ij", diff, m, diff), w, values[:r]


def test_xqda_eig_equals_the_direct_generalised_eigensolution_and_separates_classes():
    x, z, ids = gaussian_problem()
    model = xqda.fit_xqda(x, ids, z, ids, solver="eig")
    expected, w, values = direct_xqda_distance(x, ids, z, ids, x, z)
    # float64 eigenvalues by two routes (generalised vs direct): ~1e-12, rtol 1e-8.
    np.testing.assert_allclose(model.latent, values, rtol=1e-8)
    # Eigenvectors up to sign (the distance is invariant to it).
    signs = np.sign(np.sum(model.projection * w, axis=0))
    np.testing.assert_allclose(model.projection * signs, w, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(model.distance(x, z), expected, rtol=1e-6, atol=1e-9)
    # The Euclidean embedding reproduces the metric (M is PSD when eigenvalues > 1 are kept).
    assert model.negative_metric_mass() == 0
    ex, ez = model.embed(x).astype(np.float64), model.embed(z).astype(np.float64)
    sq = ((ex[:, None] - ez[None]) ** 2).sum(-1)
    np.testing.assert_allclose(sq, expected, rtol=1e-4, atol=1e-4)  # float32 embedding
    # Separation: nearest cross-view neighbour has the right identity; Euclidean fails.
    xqda_rank1 = np.mean(ids[np.argmin(expected, axis=1)] == ids)
    euclid = ((x[:, None] - z[None]) ** 2).sum(-1)
    euclid_rank1 = np.mean(ids[np.argmin(euclid, axis=1)] == ids)
    assert xqda_rank1 >= 0.95 and euclid_rank1 < 0.6


def test_xqda_eig_in_the_span_of_high_dimensional_features_equals_the_full_space_solution():
    x, z, ids = gaussian_problem(num_ids=4, per_id=3, d=40, seed=2)
    model = xqda.fit_xqda(x, ids, z, ids, solver="eig")  # 40 > 24 images: solved in their span
    expected, _, _ = direct_xqda_distance(x, ids, z, ids, x, z)
    np.testing.assert_allclose(model.distance(x, z), expected, rtol=1e-6, atol=1e-8)


def xqda_m(gal_x, prob_x, gal_labels, prob_labels, lam=0.001):
    """A line-by-line NumPy transcription of XQDA.m (LOMO_XQDA release, v1.0, 2015-04-30):
    thin QR when d > n + m, class-sum covariances, `[V, S] = svd(inCov \\ exCov)`, r = the
    number of singular values > 1 (at least 1), M = inv(V'inCov V) - inv(V'exCov V).
    Returns (W, M, latent)."""
    num_gals, d = gal_x.shape
    num_probs = len(prob_x)
    q = None
    if d > num_gals + num_probs:
        q, r_mat = np.linalg.qr(np.concatenate([gal_x, prob_x]).T)  # MATLAB qr(., 0)
        gal_x, prob_x = r_mat[:, :num_gals].T, r_mat[:, num_gals:].T
        d = r_mat.shape[0]
    labels = np.unique(np.concatenate([gal_labels, prob_labels]))
    gal_w, prob_w = np.zeros(num_gals), np.zeros(num_probs)
    gal_class_sum, prob_class_sum = np.zeros((len(labels), d)), np.zeros((len(labels), d))
    ni = 0
    for k, label in enumerate(labels):
        gal_index = np.flatnonzero(gal_labels == label)
        prob_index = np.flatnonzero(prob_labels == label)
        gal_class_sum[k] = gal_x[gal_index].sum(axis=0)
        prob_class_sum[k] = prob_x[prob_index].sum(axis=0)
        ni += len(gal_index) * len(prob_index)
        gal_w[gal_index] = np.sqrt(len(prob_index))
        prob_w[prob_index] = np.sqrt(len(gal_index))
    gal_sum, prob_sum = gal_class_sum.sum(axis=0), prob_class_sum.sum(axis=0)
    gal_cov, prob_cov = gal_x.T @ gal_x, prob_x.T @ prob_x
    gx, px = gal_w[:, None] * gal_x, prob_w[:, None] * prob_x
    in_cov = gx.T @ gx + px.T @ px - gal_class_sum.T @ prob_class_sum
    in_cov = in_cov - prob_class_sum.T @ gal_class_sum
    ex_cov = num_probs * gal_cov + num_gals * prob_cov - np.outer(gal_sum, prob_sum)
    ex_cov = ex_cov - np.outer(prob_sum, gal_sum) - in_cov
    ne = num_gals * num_probs - ni
    in_cov = in_cov / ni + lam * np.eye(d)
    ex_cov = ex_cov / ne
    u, latent, _ = np.linalg.svd(np.linalg.solve(in_cov, ex_cov))
    r = max(1, int(np.sum(latent > 1)))
    v = u[:, :r]
    w = v if q is None else q @ v
    m = np.linalg.inv(v.T @ in_cov @ v) - np.linalg.inv(v.T @ ex_cov @ v)
    return w, m, latent[:r]


def xqda_distance(w, m, q, g):
    diff = (q @ w)[:, None, :] - (g @ w)[None, :, :]
    return np.einsum("ijk,kl,ijl->ij", diff, m, diff)


@pytest.mark.parametrize("d, num_ids, per_id", [(5, 6, 8), (40, 4, 3)])
def test_xqda_svd_equals_a_transcription_of_the_published_xqda_m(d, num_ids, per_id):
    """Low-dimensional (no QR) and high-dimensional (QR there, span_basis here) problems;
    the z view has an identity the x view lacks, so the class sums see unequal classes."""
    x, z, ids = gaussian_problem(num_ids=num_ids, per_id=per_id, d=d, seed=d)
    z_ids = ids.copy()
    z_ids[-2:] = 99
    model = xqda.fit_xqda(x, ids, z, z_ids)  # solver='svd' is the default
    w, m, latent = xqda_m(x, z, ids, z_ids)
    assert model.solver == "svd" and model.projection.shape == w.shape
    np.testing.assert_allclose(model.latent, latent, rtol=1e-8)
    # float64 throughout; QR vs Gram-eigen bases differ by rounding only.
    np.testing.assert_allclose(
        model.distance(x, z), xqda_distance(w, m, x, z), rtol=1e-6, atol=1e-8
    )
    # The paper's Eq. 14 ranks differently here (Σ_I is far from a multiple of I).
    eig = xqda.fit_xqda(x, ids, z, z_ids, solver="eig")
    assert not np.allclose(eig.distance(x, z), model.distance(x, z), rtol=1e-3)


def test_negative_metric_mass_is_the_clipped_share_of_the_metric():
    """M = diag(3, -1): the embedding keeps sqrt(3) x_1 and clips x_2; a quarter of
    |M|'s spectrum (1 of 3 + 1) is clipped."""
    model = xqda.XQDA(np.eye(2), np.diag([3.0, -1.0]), np.array([2.0, 1.5]), 2, "svd")
    assert model.negative_metric_mass() == pytest.approx(0.25)
    emb = model.embed(np.array([[1.0, 1.0]]))
    np.testing.assert_allclose(np.abs(emb), [[0.0, np.sqrt(3)]], atol=1e-6)  # float32


def test_xqda_solver_is_checked_before_any_work():
    with pytest.raises(ValueError, match="solver='qr'; expected one of \\('svd', 'eig'\\)"):
        xqda.fit_xqda(np.zeros((2, 3)), np.zeros(2), np.zeros((0, 3)), np.zeros(0), solver="qr")


# --- the method ------------------------------------------------------------------------------


def eval_config(protocol="full"):
    config = ml_collections.ConfigDict()
    config.eval = ml_collections.ConfigDict(
        dict(
            test_protocol="pairs",
            protocol=protocol,
            seed=0,
            repeats=10,
            max_queries_per_id=50,
            camera_rule=False,
            hafner_code_use_all_quirk=False,
            ap="non_interpolated",
        )
    )
    return config


def test_euclidean_lomo_ranking_through_the_protocol():
    """Four people as colour patterns, two noisy views each: the protocol's rank-1 and mAP
    equal a NumPy nearest-neighbour ranking of the LOMO features."""
    from jaxreid.data.image_set import ImageSet

    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (4, 16, 8, 3))  # random 8x6-pixel blocks
    base[2:] = base[:2]  # persons 2 and 3 dress like 0 and 1: only the noise tells them apart
    images = {}
    for view in ("rgb", "depth"):  # heavy noise, so that the ranking is imperfect
        noisy = np.repeat(np.repeat(base, 8, axis=1), 6, axis=2)
        noisy = np.concatenate([noisy, noisy]) + rng.normal(0, 80, (8, 128, 48, 3))
        images[view] = np.clip(noisy, 0, 255).astype(np.uint8)
    ids = np.tile(np.arange(4), 2).astype(np.int32)
    sets = {
        m: ImageSet(
            m,
            images[m],
            ids,
            np.zeros(8, np.int32),
            np.array([""] * 8, object),
            np.ones(8, np.int32),
            np.array([""] * 8, object),
        )
        for m in images
    }
    feats = {m: method.extract_features(lomo.lomo, s.images, batch_size=3) for m, s in sets.items()}
    # Batched (3 images) vs one call: the same float32 ops, batch-dependent sum order.
    np.testing.assert_allclose(
        feats["rgb"][:3], np.asarray(lomo.lomo(images["rgb"][:3].astype(np.float32))), atol=1e-6
    )
    results = method.evaluate_features(eval_config(), sets, feats)
    d = ((feats["rgb"][:, None] - feats["depth"][None]) ** 2).sum(-1)
    order = np.argsort(d, axis=1)
    matches = ids[order] == ids[:, None]
    ap = [
        np.mean([(k + 1) / (pos + 1) for k, pos in enumerate(np.flatnonzero(row))])
        for row in matches
    ]
    r = results["Q:rgb G:depth"]
    assert 0 < r["rank1"] < 1 and r["mAP"] < 1
    # float64 means of 0/1 matches and of APs, summed in another order: rounding only.
    assert r["rank1"] == pytest.approx(matches[:, 0].mean())
    assert r["mAP"] == pytest.approx(np.mean(ap))


def load_config(arg):
    path = os.path.join(ROOT, "configs", "classical.py")
    spec = importlib.util.spec_from_file_location("config_classical", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def test_config_values_are_checked():
    config = load_config("features=whos")
    assert tuple(config.classical.image_size) == whos.IMAGE_SIZE
    config.classical.matching = "kissme"
    with pytest.raises(ValueError, match="config.classical.matching='kissme'"):
        method.check_config(config)
    with pytest.raises(ValueError, match="dataset='market'"):
        load_config("dataset=market")
    from jaxreid import config as config_lib

    config = load_config("features=lomo")
    assert config.classical.xqda_solver == "svd"  # XQDA.m, which produced Tables 17/18
    config.classical.xqda_solver = "qr"
    with pytest.raises(ValueError, match=r"config.classical.xqda_solver='qr': expected one of"):
        config_lib.validate(config)


@pytest.mark.parametrize(
    "dataset, manual, rows",
    [
        ("biwi", "biwi_rgbd_id/dummy_data/distributed", (("lomo", "xqda"), ("whos", "euclidean"))),
        ("robotpku", "robotpku/dummy_data", (("whos", "xqda"), ("lomo", "euclidean"))),
    ],
)
def test_real_dataset_configs_run_the_classical_rows(tmp_path, dataset, manual, rows):
    """The BIWI / RobotPKU classical configs on their builders' dummy trees (the four rows of
    Tables 17/18 between them); the figures mean nothing on a handful of images."""
    for features, matching in rows:
        config = load_config(f"dataset={dataset},features={features},matching={matching}")
        config.data.data_dir = str(tmp_path / "tfds")
        config.data.manual_dir = os.path.join(ROOT, "datasets", manual)
        config.data.num_val_ids = 1
        if dataset == "robotpku":  # Its dummy design set has two people; XQDA needs both.
            config.data.num_folds = 2
            config.classical.use_val_ids = True
        config.eval.repeats = 2
        results = method.train_and_evaluate(config, str(tmp_path / f"{features}_{matching}"))
        assert set(results["test"]) == {
            "Q:rgb G:depth",
            "Q:depth G:rgb",
            "Q:rgb G:rgb",
            "Q:depth G:depth",
        }
        expected_dim = {"lomo": 26960, "whos": 2960}[features]
        assert results["feature_dim"] == expected_dim


def test_grid_writes_the_four_classical_rows_with_spread_over_folds(tmp_path, monkeypatch):
    import jax

    from jaxreid import experiments

    # The runner clears JAX's caches after every run; keep them here so that LOMO and WHOS
    # compile once for the 8 runs (the test is about the grid, not about compilation).
    monkeypatch.setattr(jax, "clear_caches", lambda: None)

    grid = experiments.load_grid(
        os.path.join(ROOT, "configs", "grids", "classical.py") + ":synthetic,quick,folds=2"
    )
    overrides = [
        f"data.data_dir={tmp_path / 'tfds'}",
        "data.synthetic.num_train_ids=4",
        "data.synthetic.num_val_ids=2",
        "data.synthetic.num_test_ids=3",
        "classical.image_size=(48, 40)",  # both extractors' smallest valid size
    ]
    status = experiments.run_grid(grid, str(tmp_path / "grid"), overrides=overrides)
    assert set(status.values()) == {"done"}, status
    # Each run writes results.json / results.md as the networks do.
    run = tmp_path / "grid" / "classical" / "lomo_xqda" / "fold0"
    on_disk = json.loads((run / "results.json").read_text())
    pairs = {"Q:rgb G:depth", "Q:depth G:rgb", "Q:rgb G:rgb", "Q:depth G:depth"}
    assert set(on_disk["test"]) == pairs
    assert on_disk["method"] == "LOMO, XQDA" and on_disk["xqda"]["views"] == ["rgb", "depth"]
    assert on_disk["feature_dim"] == lomo.lomo_length(48, 40)
    for r in on_disk["test"].values():
        assert 0 <= r["mAP"] <= 1 and r["rank1"] <= r["rank5"] <= r["rank10"]
    assert "LOMO, XQDA" in (run / "results.md").read_text()
    table = (tmp_path / "grid" / "table17.md").read_text()
    for row in ("WHOS, Euclidean", "WHOS, XQDA", "LOMO, Euclidean", "LOMO, XQDA"):
        line = next(l for l in table.splitlines() if l.startswith(f"| {row} |"))
        assert "±" in line and "Q:RGB, G:D" in table
        # The protocol line names the row's own features and matching, not a network's.
        features, matching = row.split(", ")
        protocol = next(l for l in table.splitlines() if l.startswith(f"- {row}: "))
        assert f"{features} features, {matching} matching" in protocol, protocol
        assert "no checkpoint" in protocol and "metric" not in protocol, protocol


def test_classical_grids_build_and_validate():
    from jaxreid import config as config_lib
    from jaxreid import experiments

    path = os.path.join(ROOT, "configs", "grids", "classical.py")
    for arg, runs in (
        ("synthetic", 12),
        ("synthetic,networks", 12 + 24),  # + the methods grid: 8 networks x 3 folds
        ("synthetic_ir", 12),
        ("biwi", 12),
        ("robotpku", 12),
        ("sysu", 4),
    ):
        grid = experiments.load_grid(f"{path}:{arg}")
        assert len(grid.experiments) == runs and grid.tables
        for experiment in grid.experiments:
            config_lib.validate(experiment.config)
            if experiment.name.startswith("classical/"):
                method.check_config(experiment.config)
    biwi = experiments.load_grid(f"{path}:biwi")
    assert {e.config.data.fold for e in biwi.experiments} == {0, 1, 2}
    assert biwi.tables[0].pairs == ("Q:rgb G:depth", "Q:depth G:rgb")


def test_sysu_config_runs_the_sysu_protocol_on_the_dummy_tree(tmp_path):
    config = load_config("dataset=sysu,features=whos,matching=xqda")
    config.data.data_dir = str(tmp_path / "tfds")
    config.data.manual_dir = os.path.join(ROOT, "datasets", "sysu_mm01", "dummy_data")
    config.eval.sysu_settings = ("all_single",)
    results = method.train_and_evaluate(config, str(tmp_path / "run"))
    assert set(results["test"]) == {"all_single"}
    assert 0 <= results["test"]["all_single"]["mAP"] <= 1


def test_the_code_protocols_camera_rule_reaches_the_classical_test():
    """evaluate_features passes eval.camera_rule to the 'hafner_code' protocol: its result
    equals the protocol called with the rule, and differs from the relaxed one."""
    from jaxreid import evaluation
    from jaxreid.data.image_set import ImageSet

    rng = np.random.default_rng(5)
    ids = np.repeat(np.arange(4), 4).astype(np.int32)
    cams = np.tile([1, 1, 2, 2], 4).astype(np.int32)  # two images per person and camera
    sets = {
        m: ImageSet(
            m,
            np.zeros((16, 4, 4, 3), np.uint8),
            ids,
            cams,
            np.array([f"f{i}" for i in range(16)], object),
            np.ones(16, np.int32),
            np.array([""] * 16, object),
        )
        for m in ("rgb", "depth")
    }
    # Same-camera images of a person are near each other, other cameras farther.
    centre = rng.normal(0, 1, (4, 8))[ids] + 0.6 * rng.normal(0, 1, (2, 8))[cams - 1]
    feats = {m: (centre + 0.3 * rng.normal(0, 1, centre.shape)).astype(np.float32) for m in sets}
    config = eval_config("hafner_code")
    config.eval.camera_rule = True
    results = method.evaluate_features(config, sets, feats)
    by_protocol = {
        rule: evaluation.evaluate_modality_pairs(
            {
                m: dict(feats=feats[m], ids=ids, cams=cams, frames=sets[m].frame_ids)
                for m in sets
            },
            protocol="hafner_code",
            seed=0,
            metric="euclidean",
            max_queries_per_id=50,
            camera_rule=rule,
        )
        for rule in (True, False)
    }
    for pair in ("Q:rgb G:depth", "Q:depth G:rgb"):
        # The same draws and the same float arithmetic: exactly equal.
        assert results[pair]["mAP"] == by_protocol[True][pair]["mAP"]
        assert results[pair]["mAP"] != by_protocol[False][pair]["mAP"]
