"""Writes dummy_data/ (the processed RobotPKU layout, 8 x 16 JPEGs); run from anywhere.

The k-th file in sorted order (k = 0, 1, ...) is, in pku/images, the uniform RGB colour
(20 + 30 * pid, 60 + 10 * k, 100) and, in pku_depth/images, the gray value 50 + 20 * k:
1-channel for even k, 3-channel for odd k (depth JPEGs of both kinds occur).

Design persons 0, 2, 3 (three, so that a fold of the grids' smoke scale holds one out for
validation and trains on two); test persons 1, 4. Every person is seen by both cameras
(recordings 00 and 01), so each query/gallery pair has a match; person 0 has a second image
of recording 00 (file_index 2).
"""

import pathlib

from PIL import Image

ROOT = pathlib.Path(__file__).parent / "dummy_data"
# (person id, camera, index): <pid 8 digits>_<camera 2 digits>_<index 4 digits>.jpg
FILES = [
    (0, 0, 0),
    (0, 0, 1),
    (0, 1, 0),
    (1, 0, 0),
    (1, 1, 0),
    (2, 0, 0),
    (2, 1, 0),
    (3, 0, 0),
    (3, 1, 0),
    (4, 0, 0),
    (4, 1, 0),
]


def main():
    for folder in ("pku", "pku_depth"):
        (ROOT / folder / "images").mkdir(parents=True, exist_ok=True)
    for k, (pid, camera, index) in enumerate(sorted(FILES)):
        name = f"{pid:08d}_{camera:02d}_{index:04d}.jpg"
        Image.new("RGB", (8, 16), (20 + 30 * pid, 60 + 10 * k, 100)).save(
            ROOT / "pku" / "images" / name, quality=95
        )
        gray = 50 + 20 * k
        depth = (
            Image.new("L", (8, 16), gray) if k % 2 == 0 else Image.new("RGB", (8, 16), (gray,) * 3)
        )
        depth.save(ROOT / "pku_depth" / "images" / name, quality=95)


if __name__ == "__main__":
    main()
