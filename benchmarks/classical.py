"""Feature-extraction throughput of LOMO and WHOS (jaxreid.classical) on this machine.

    python benchmarks/classical.py            # batches of 1, 16, 64; ~1 minute on 2 cores
    python benchmarks/classical.py --quick    # fewer images, for a smoke test

Rows: the jit-compiled JAX extractors at several batch sizes (images per second after
compilation, and the compile time), and a plain NumPy implementation of LOMO written here
(one image at a time, per-window np.bincount, as a direct port of the published MATLAB code
would do) for the same images at 128x48. Random uint8 RGB images; LOMO at 128x48 (Liao
2015 §5.1), WHOS at 128x64 (Lisanti 2015 §3.1). The NumPy reference is also checked to give
the same texture (SILTP) part as the JAX LOMO, so both compute the same descriptor.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import numpy as np

from jaxreid.classical import lomo, whos

# ----------------------------------------------------------------------------- NumPy LOMO


def _gauss(sigma):
    half = int(np.floor(3 * sigma))
    t = np.arange(-half, half + 1)
    k = np.exp(-(t**2) / (2 * sigma**2))
    return k / k.sum()


def _blur(channel, sigma):
    k = _gauss(sigma)
    half = len(k) // 2
    p = np.pad(channel, half, mode="edge")
    rows = np.apply_along_axis(lambda r: np.convolve(r, k, mode="valid"), 1, p)
    return np.apply_along_axis(lambda c: np.convolve(c, k, mode="valid"), 0, rows)


def _retinex(image):
    x = image.astype(np.float64) + 1
    msr = np.zeros_like(x)
    for sigma in lomo.RETINEX_SIGMAS:
        for c in range(3):
            msr[..., c] += np.log(x[..., c]) - np.log(_blur(x[..., c], sigma))
    msr /= len(lomo.RETINEX_SIGMAS)
    r = lomo.CRF_BETA * (np.log(lomo.CRF_ALPHA * x) - np.log(x.sum(-1, keepdims=True))) * msr
    lo = np.quantile(r, lomo.BALANCE_CLIP, axis=(0, 1))
    hi = np.quantile(r, 1 - lomo.BALANCE_CLIP, axis=(0, 1))
    return (np.clip(r, lo, hi) - lo) / (hi - lo)


def _hsv(rgb):
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = rgb.max(-1)
    delta = v - rgb.min(-1)
    safe = np.where(delta > 0, delta, 1)
    s = np.where(v > 0, delta / np.where(v > 0, v, 1), 0)
    h = np.where(v == r, (g - b) / safe, np.where(v == g, 2 + (b - r) / safe, 4 + (r - g) / safe))
    h = np.where(delta > 0, np.mod(h / 6, 1), 0)
    return np.stack([h, s, v], -1)


def _siltp(gray, radius, tau=lomo.SILTP_TAU):
    """SILTP.m, encoder 0 (float64, as MATLAB's double arithmetic)."""
    h, w = gray.shape
    p = np.pad(gray, radius, mode="edge")
    code = np.zeros((h, w), np.int64)
    for k, (dy, dx) in enumerate(((0, radius), (-radius, 0), (0, -radius), (radius, 0))):
        n = p[radius + dy : radius + dy + h, radius + dx : radius + dx + w]
        code += np.where(n < (1 - tau) * gray, 1, np.where(n > (1 + tau) * gray, 2, 0)) * 3**k
    return code


def _max_occurrence(codes, bins):
    h, w = codes.shape
    b, s = lomo.BLOCK_SIZE, lomo.BLOCK_STEP
    out = []
    for y in range(0, h - b + 1, s):
        strip = np.zeros(bins)
        for x in range(0, w - b + 1, s):
            strip = np.maximum(
                strip, np.bincount(codes[y : y + b, x : x + b].ravel(), minlength=bins)
            )
        out.append(strip)
    return np.concatenate(out)


def _log_normalize(parts):
    v = np.log1p(np.concatenate(parts))
    return v / np.linalg.norm(v)


def _pool(x):
    h, w = x.shape[0] // 2, x.shape[1] // 2
    return x[: 2 * h, : 2 * w].reshape(h, 2, w, 2, *x.shape[2:]).mean(axis=(1, 3))


def numpy_lomo(image: np.ndarray) -> np.ndarray:
    """[H, W, 3] uint8 -> LOMO of one image in NumPy (float64), in LOMO.m's order: HSV levels
    pooled as floor of the mean, rounded grey image, one log-normalised part per feature type.
    (At 128x48 every scale counts for every radius.)"""
    levels = np.minimum(np.floor(_hsv(_retinex(image)) * lomo.HSV_BINS), lomo.HSV_BINS - 1)
    gray = np.floor(image.astype(np.float64) @ np.array(lomo.GRAY_WEIGHTS) + 0.5)
    colour, texture = [], {r: [] for r in lomo.SILTP_RADII}
    for scale in range(lomo.NUM_SCALES):
        if scale:
            levels, gray = np.floor(_pool(levels)), _pool(gray)
        q = levels.astype(np.int64)
        colour.append(_max_occurrence(q[..., 2] * 64 + q[..., 1] * 8 + q[..., 0], 512))
        for r in lomo.SILTP_RADII:
            texture[r].append(_max_occurrence(_siltp(gray, r), lomo.SILTP_CODES))
    parts = [colour] + [texture[r] for r in lomo.SILTP_RADII]
    return np.concatenate([_log_normalize(p) for p in parts])


# ----------------------------------------------------------------------------- timing


def time_jax(fn, images, batch):
    """(images per second after compilation, compile seconds)."""
    x = jax.numpy.asarray(images[:batch].astype(np.float32))
    tick = time.perf_counter()
    jax.block_until_ready(fn(x))
    compile_s = time.perf_counter() - tick
    n = len(images) // batch * batch
    tick = time.perf_counter()
    for start in range(0, n, batch):
        jax.block_until_ready(
            fn(jax.numpy.asarray(images[start : start + batch].astype(np.float32)))
        )
    return n / (time.perf_counter() - tick), compile_s


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n_jax, n_numpy = (64, 4) if args.quick else (256, 16)
    batches = (1, 16) if args.quick else (1, 16, 64)
    lomo_images = rng.integers(0, 256, (n_jax, *lomo.IMAGE_SIZE, 3)).astype(np.uint8)
    whos_images = rng.integers(0, 256, (n_jax, *whos.IMAGE_SIZE, 3)).astype(np.uint8)
    rows = []
    for name, fn, images in (("LOMO", lomo.lomo, lomo_images), ("WHOS", whos.whos, whos_images)):
        for batch in batches:
            rate, compile_s = time_jax(fn, images, batch)
            rows.append((f"{name} JAX jit", batch, rate, compile_s))
    tick = time.perf_counter()
    ref = [numpy_lomo(im) for im in lomo_images[:n_numpy]]
    rows.append(("LOMO NumPy reference", 1, n_numpy / (time.perf_counter() - tick), 0.0))
    got = np.asarray(lomo.lomo(lomo_images[:n_numpy].astype(np.float32)))
    texture = slice(512 * (24 + 11 + 5), None)
    agree = np.allclose(got[:, texture], np.stack(ref)[:, texture], atol=1e-5)

    print(
        f"# Feature extraction on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU cores, JAX {jax.__version__} ({jax.default_backend()})"
    )
    print(
        f"# LOMO {lomo.IMAGE_SIZE[0]}x{lomo.IMAGE_SIZE[1]} -> {lomo.FEATURE_LENGTH}-d; "
        f"WHOS {whos.IMAGE_SIZE[0]}x{whos.IMAGE_SIZE[1]} -> "
        f"{whos.whos_length(*whos.IMAGE_SIZE)}-d; NumPy and JAX LOMO texture parts agree: {agree}"
    )
    print()
    print("| Extractor | Batch | Images/s | ms/image | Compile (s) |")
    print("|---|---:|---:|---:|---:|")
    for name, batch, rate, compile_s in rows:
        print(f"| {name} | {batch} | {rate:.1f} | {1000 / rate:.2f} | {compile_s:.1f} |")
    numpy_rate = rows[-1][2]
    best = max(r[2] for r in rows if r[0].startswith("LOMO JAX"))
    print(f"\nLOMO: JAX (best batch) / NumPy reference = {best / numpy_rate:.1f}x")


if __name__ == "__main__":
    main()
