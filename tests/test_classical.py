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
                s = 1 if n > (1 + tau) * c else 2 if n < (1 - tau) * c else 0
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
    np.testing.assert_array_equal(
        np.asarray(lomo.hsv_bins(hsv)), [7 * 64 + 3 * 8 + 0, 7 * 64 + 7 * 8 + 7, 0]
    )


def test_joint_hsv_window_histograms_match_numpy():
    image = RNG.integers(0, 256, (20, 25, 3)).astype(np.float32)
    hsv = np_hsv(image / 255.0)
    q = np.minimum(np.floor(hsv * 8), 7).astype(int)
    codes = q[..., 2] * 64 + q[..., 1] * 8 + q[..., 0]
    got = np.asarray(
        lomo.window_histograms(lomo.hsv_bins(lomo.rgb_to_hsv(image[None] / 255.0)), 512)
    )[0]
    assert got.shape == (3, 4, 512)
    np.testing.assert_array_equal(got, np_windows(codes, 512))


def test_siltp_codes_hand_worked_and_against_loops():
    gray = np.full((7, 7), 100.0, np.float32)
    gray[3, 4] = 140  # right: 140 > 130 -> 1
    gray[2, 3] = 60  # up: 60 < 70 -> 2
    gray[3, 2] = 129  # left: within ±30% -> 0
    got = np.asarray(lomo.siltp_codes(gray[None], radius=1))[0]
    assert got[3, 3] == 1 * 1 + 2 * 3
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
    """The whole descriptor from the NumPy stage references above."""
    hsv = np_hsv(np_retinex(image))
    gray = image.astype(np.float64) @ np.array(lomo.GRAY_WEIGHTS)
    colour, tex = [], {3: [], 5: []}
    for scale in range(3):
        if scale:
            hsv, gray = np_pool(hsv), np_pool(gray)
        q = np.minimum(np.floor(hsv * 8), 7).astype(int)
        codes = q[..., 2] * 64 + q[..., 1] * 8 + q[..., 0]
        colour.append(np_lognorm(np_windows(codes, 512).max(axis=1).ravel()))
        for r in (3, 5):
            tex[r].append(np_lognorm(np_windows(np_siltp(gray, r), 81).max(axis=1).ravel()))
    return np.concatenate(colour + tex[3] + tex[5])


def test_lomo_matches_the_numpy_pipeline_and_published_length():
    assert lomo.lomo_length(128, 48) == lomo.FEATURE_LENGTH == 26960  # Liao 2015 §3.2
    # A smooth image (Retinex differences far from bin edges are rare but possible): compare
    # the colour part loosely and the texture part, computed from the grey original, exactly.
    image = RNG.integers(0, 256, (40, 40, 3)).astype(np.float32)
    got = np.asarray(lomo.lomo(image[None]))[0]
    expected = np_lomo(image)
    assert got.shape == expected.shape == (lomo.lomo_length(40, 40),)
    colour = 512 * (7 + 3 + 1)
    # Texture part: the same float32 values; an L2 norm over 9,000 terms in another order.
    np.testing.assert_allclose(got[colour:], expected[colour:], atol=1e-6)
    # Float32 Retinex may move a pixel whose HSV value lies within ~1e-3 of a bin edge into
    # the neighbouring bin; allow a few such pixels (each changes one count by 1).
    assert np.abs(got[:colour] - expected[:colour]).sum() < 0.1
    assert np.asarray(lomo.lomo(np.zeros((1, 128, 48, 3), np.float32))).shape == (1, 26960)


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
    """Dalal-Triggs HOG, a loop per pixel: the colour channel with the largest gradient."""
    h, w, c = rgb.shape
    p = np.pad(rgb.astype(np.float64), ((1, 1), (1, 1), (0, 0)), mode="edge")
    cells = np.zeros((h // cell, w // cell, orient))
    for y in range(h // cell * cell):
        for x in range(w // cell * cell):
            grads = [
                (p[y + 1, x + 2, k] - p[y + 1, x, k], p[y + 2, x + 1, k] - p[y, x + 1, k])
                for k in range(c)
            ]
            gx, gy = max(grads, key=lambda g: np.hypot(*g))
            angle = np.arctan2(gy, gx) % np.pi
            b = min(int(angle / np.pi * orient), orient - 1)
            cells[y // cell, x // cell, b] += np.hypot(gx, gy)
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
    # The HS part: 8 stripes of 16 rows over the whole image, then 7 of the inner window
    # rows 8..119, columns 8..55, pixels weighted by the 2-D Epanechnikov mask.
    rgb = image[0] / 255.0
    hsv = np_hsv(rgb)
    hs = np.minimum(np.floor(hsv[..., 0] * 8), 7) * 8 + np.minimum(np.floor(hsv[..., 1] * 8), 7)
    hs = hs.astype(int)
    v = (np.arange(128) + 0.5 - 64) / 64
    u = (np.arange(64) + 0.5 - 32) / 32
    wts = np.maximum(0, 1 - v[:, None] ** 2 - u[None, :] ** 2)
    hists = []
    for top, count, cols in ((0, 8, slice(0, 64)), (8, 7, slice(8, 56))):
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


def test_xqda_equals_the_direct_generalised_eigensolution_and_separates_classes():
    x, z, ids = gaussian_problem()
    model = xqda.fit_xqda(x, ids, z, ids)
    expected, w, values = direct_xqda_distance(x, ids, z, ids, x, z)
    # float64 eigenvalues by two routes (generalised vs direct): ~1e-12, rtol 1e-8.
    np.testing.assert_allclose(model.eigenvalues, values, rtol=1e-8)
    # Eigenvectors up to sign (the distance is invariant to it).
    signs = np.sign(np.sum(model.projection * w, axis=0))
    np.testing.assert_allclose(model.projection * signs, w, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(model.distance(x, z), expected, rtol=1e-6, atol=1e-9)
    # The Euclidean embedding reproduces the metric (M is PSD when eigenvalues > 1 are kept).
    ex, ez = model.embed(x).astype(np.float64), model.embed(z).astype(np.float64)
    sq = ((ex[:, None] - ez[None]) ** 2).sum(-1)
    np.testing.assert_allclose(sq, expected, rtol=1e-4, atol=1e-4)  # float32 embedding
    # Separation: nearest cross-view neighbour has the right identity; Euclidean fails.
    xqda_rank1 = np.mean(ids[np.argmin(expected, axis=1)] == ids)
    euclid = ((x[:, None] - z[None]) ** 2).sum(-1)
    euclid_rank1 = np.mean(ids[np.argmin(euclid, axis=1)] == ids)
    assert xqda_rank1 >= 0.95 and euclid_rank1 < 0.6


def test_xqda_in_the_span_of_high_dimensional_features_equals_the_full_space_solution():
    x, z, ids = gaussian_problem(num_ids=4, per_id=3, d=40, seed=2)
    model = xqda.fit_xqda(x, ids, z, ids)  # 40 > 24 images: solved in their span
    expected, _, _ = direct_xqda_distance(x, ids, z, ids, x, z)
    np.testing.assert_allclose(model.distance(x, z), expected, rtol=1e-6, atol=1e-8)


# --- the method ------------------------------------------------------------------------------


def eval_config(protocol="full"):
    config = ml_collections.ConfigDict()
    config.eval = ml_collections.ConfigDict(
        dict(test_protocol="pairs", protocol=protocol, seed=0, repeats=10, max_queries_per_id=50)
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
