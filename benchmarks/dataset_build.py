"""Benchmark: building a TFDS dataset from a manual folder of 10,000 small images.

Makes a temporary folder in the SYSU-MM01 layout (cam1..cam6/<pid>/<n>.jpg + exp/*_id.txt):
100 persons, 20 RGB images per person in each of the 4 RGB cameras (8,000) and 10
infrared images per person in each of the 2 infrared cameras (2,000, 3-channel gray JPEGs
as SYSU distributes them, so they take the convert-to-1-channel path), 128 x 64 pixels.
Then builds the 'rgb' and 'infrared' configs of `sysu_mm01` into a temporary data_dir and
reports images per second of `download_and_prepare` (TensorFlow is imported beforehand,
so its import time is not counted). Target: >= 500 images/s on the 2-core machine.

Run: python benchmarks/dataset_build.py [--num_persons 100] [--keep]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import tempfile
import time

import numpy as np
from PIL import Image

RGB_PER_CAM, IR_PER_CAM = 20, 10


def make_folder(root: pathlib.Path, num_persons: int, height: int = 128, width: int = 64) -> int:
    """Writes the SYSU-layout folder; returns the number of images."""
    rng = np.random.default_rng(0)
    count = 0
    for cam in range(1, 7):
        per_cam = IR_PER_CAM if cam in (3, 6) else RGB_PER_CAM
        for pid in range(1, num_persons + 1):
            folder = root / f"cam{cam}" / f"{pid:04d}"
            folder.mkdir(parents=True)
            for n in range(1, per_cam + 1):
                # Smooth random images so JPEG sizes are realistic (a few kB), not flat colour.
                small = rng.integers(0, 256, size=(8, 4, 3), dtype=np.uint8)
                img = Image.fromarray(small).resize((width, height), Image.BILINEAR)
                if cam in (3, 6):
                    img = img.convert("L").convert("RGB")
                img.save(folder / f"{n:04d}.jpg", quality=90)
                count += 1
    (root / "exp").mkdir()
    ids = np.arange(1, num_persons + 1)
    a, b = int(0.6 * num_persons), int(0.8 * num_persons)
    for name, part in (("train", ids[:a]), ("val", ids[a:b]), ("test", ids[b:])):
        (root / "exp" / f"{name}_id.txt").write_text(",".join(str(i) for i in part) + "\n")
    return count


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--num_persons", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf  # noqa: F401  imported up front: not part of the build time
    import tensorflow_datasets as tfds

    from jaxreid.datasets.sysu_mm01 import builder as sysu

    tfds.disable_progress_bar()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="jaxreid_bench_"))
    try:
        manual, data_dir = tmp / "SYSU-MM01", tmp / "tfds"
        t0 = time.perf_counter()
        total = make_folder(manual, args.num_persons)
        print(f"made {total} images in {time.perf_counter() - t0:.1f} s under {manual}")
        overall, images = 0.0, 0
        for config in ("rgb", "infrared"):
            b = sysu.SysuMm01(config=config, data_dir=data_dir)
            t0 = time.perf_counter()
            b.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual))
            dt = time.perf_counter() - t0
            n = sum(s.num_examples for s in b.info.splits.values())
            overall, images = overall + dt, images + n
            print(f"sysu_mm01/{config}: {n} images in {dt:.2f} s = {n / dt:.0f} images/s")
        print(
            f"overall: {images} images in {overall:.2f} s = {images / overall:.0f} images/s (target >= 500)"
        )
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
