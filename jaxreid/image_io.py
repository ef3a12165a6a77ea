"""Image files for inference: reading JPEG / PNG / PGM (8- and 16-bit), listing a folder, and
resizing exactly as the input pipeline resizes (bilinear with anti-aliasing, rounded back to
the stored dtype). NumPy and Pillow only.
"""

from __future__ import annotations

import os

import numpy as np

from jaxreid.data import preprocessing

# Channels each modality is stored with (the TFDS conventions): RGB 3, the others 1.
MODALITY_CHANNELS = {"rgb": 3, "visible": 3, "depth": 1, "infrared": 1, "thermal": 1}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".pnm", ".tif", ".tiff")


def _resize_weights(in_size: int, out_size: int) -> np.ndarray:
    """[out_size, in_size] float64 weights of bilinear resizing with anti-aliasing.

    Output pixel i samples the input at x = (i + 0.5) * in/out - 0.5 (pixel centres) with the
    triangle kernel, widened by in/out when shrinking (anti-aliasing); weights outside the
    image are dropped and the rest normalised to sum 1. This is the definition
    tf.image.resize(..., antialias=True) implements (its ScaleAndTranslate kernel), which the
    input pipeline uses.
    """
    scale = in_size / out_size
    kernel_scale = max(scale, 1.0)
    sample = (np.arange(out_size) + 0.5) * scale - 0.5
    distance = np.abs(sample[:, None] - np.arange(in_size)[None, :]) / kernel_scale
    weights = np.maximum(0.0, 1.0 - distance)
    total = weights.sum(axis=1, keepdims=True)
    return np.where(total > 0, weights / np.where(total > 0, total, 1.0), 0.0)


def resize_images(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[N, H, W, C] -> [N, size[0], size[1], C] in the same dtype, as the input pipeline
    resizes (`jaxreid.data.sources.load_image_set`): bilinear with anti-aliasing, then for
    integer dtypes rounded (half to even) and clipped to the dtype's range."""
    images = np.asarray(images)
    height, width = size
    if images.shape[1:3] == (height, width):
        return images
    rows = _resize_weights(images.shape[1], height)
    cols = _resize_weights(images.shape[2], width)
    out = np.einsum("hH,nHWc,wW->nhwc", rows, images.astype(np.float64), cols)
    if np.issubdtype(images.dtype, np.integer):
        info = np.iinfo(images.dtype)
        out = np.clip(np.round(out), info.min, info.max)
    return out.astype(images.dtype)


def _to_modality_channels(image: np.ndarray, modality: str, where: str) -> np.ndarray:
    """[H, W] / [H, W, C] -> [H, W, MODALITY_CHANNELS[modality]] in the same dtype."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3:
        raise ValueError(f"{where}: expected an image [H, W, C] or [H, W], got shape {image.shape}")
    want, have = MODALITY_CHANNELS.get(modality, image.shape[-1]), image.shape[-1]
    if have == 4:  # RGBA: drop alpha
        image, have = image[..., :3], 3
    if have == want:
        return image
    if have == 1 and want == 3:
        return np.repeat(image, 3, axis=-1)
    if have == 3 and want == 1:  # a gray image stored with 3 channels: exact for gray
        luma = preprocessing.convert_channels(image[None], 1)[0]
        if np.issubdtype(image.dtype, np.integer):
            luma = np.round(luma)
        return luma.astype(image.dtype)
    raise ValueError(f"{where}: {have}-channel image for modality {modality!r}; expected {want}")


def read_image(path) -> np.ndarray:
    """An image file as [H, W, C] uint8 (8-bit files) or uint16 (16-bit PNG / PGM depth).

    Pillow reads JPEG, PNG, PGM/PPM, BMP and TIFF; 16-bit gray files (Pillow modes 'I;16*'
    and 'I') become uint16, palette / CMYK images RGB, gray images one channel.
    """
    from PIL import Image  # local: only needed for files

    path = os.fspath(path)
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in ("1", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "LA"):
                img = img.convert("RGBA" if "A" in mode or mode == "P" else "RGB")
                mode = img.mode
            array = np.asarray(img)
    except FileNotFoundError:
        raise FileNotFoundError(f"image file {path!r} does not exist") from None
    except OSError as e:
        raise ValueError(f"image file {path!r} cannot be read: {e}") from None
    if mode.startswith("I;16") or mode == "I":
        if array.size and (array.min() < 0 or array.max() > 65535):
            raise ValueError(f"image file {path!r}: 32-bit values outside 0..65535")
        array = array.astype(np.uint16)
    elif mode == "F":
        array = array.astype(np.float32)
    if array.ndim == 2:
        array = array[..., None]
    if array.shape[-1] == 4:
        array = array[..., :3]
    return array


def list_images(folder) -> list[str]:
    """Paths of the image files under `folder` (recursively), sorted by relative path."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise NotADirectoryError(f"gallery folder {folder!r} is not a directory")
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found += [
            os.path.join(root, f)
            for f in files
            if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith(".")
        ]
    found.sort(key=lambda p: os.path.relpath(p, folder))
    return found
