"""Writes dummy_data/ (the Market-1501 layout, 8 x 16 JPEGs); run from anywhere.

Each image is one uniform colour, red = 20 * person id (junk -1: 5), green = 30 * camera.
"""

import pathlib

from PIL import Image

ROOT = pathlib.Path(__file__).parent / "dummy_data"
FILES = {
    "bounding_box_train": [
        "0002_c1s1_000451_03.jpg",
        "0002_c2s1_000301_01.jpg",
        "0007_c1s1_000001_01.jpg",
        "0007_c3s2_000101_02.jpg",
        "0007_c3s2_000201_01.jpg",
    ],
    "query": ["0001_c1s1_001051_00.jpg", "0003_c2s1_000151_00.jpg"],
    "bounding_box_test": [
        "-1_c1s1_000401_03.jpg",  # junk
        "-1_c2s1_000101_01.jpg",  # junk
        "0000_c1s1_000001_01.jpg",  # distractor
        "0000_c3s1_000001_02.jpg",  # distractor
        "0001_c1s1_001101_02.jpg",  # query 1's camera: removed for query 1
        "0001_c4s2_000001_01.jpg",
        "0003_c2s1_000201_01.jpg",  # query 3's camera: removed for query 3
        "0003_c5s3_000101_01.jpg",
        "0003_c6s4_000101_03.jpg",
    ],
}


def main():
    for folder, names in FILES.items():
        (ROOT / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            pid, cam = int(name.split("_")[0]), int(name.split("_")[1][1])
            colour = (5 if pid < 0 else 20 * pid, 30 * cam, 100)
            Image.new("RGB", (8, 16), colour).save(ROOT / folder / name, quality=95)
    (ROOT / "bounding_box_test" / "Thumbs.db").write_bytes(b"not an image")  # as distributed
    (ROOT / "readme.txt").write_text("Market-1501 dummy data for jaxreid's tests.\n")


if __name__ == "__main__":
    main()
