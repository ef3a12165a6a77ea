"""Writes dummy_data/ (the LLCM layout, 8 x 16 JPEGs); run from anywhere.

Visible images: uniform RGB (40 * pid + 10 * n, 30 * camera, 100); near-infrared images:
3-channel gray JPEGs of value 40 * pid + 10 * n (n = the file's number in its folder).
Train ids 1, 2; test ids 3, 4. The file names are illustrative: the builder reads the folder
structure (cam<c>/<pid>/) and the idx/ files only.
"""

import pathlib

from PIL import Image

ROOT = pathlib.Path(__file__).parent / "dummy_data"
# (folder, camera, person id, number of files)
FOLDERS = [
    ("train_vis", 1, 1, 2),
    ("train_vis", 2, 2, 1),
    ("train_vis", 3, 2, 1),
    ("train_nir", 1, 1, 1),
    ("train_nir", 4, 2, 2),
    ("test_vis", 1, 3, 2),
    ("test_vis", 3, 3, 1),
    ("test_vis", 2, 4, 1),
    ("test_vis", 5, 4, 3),
    ("test_nir", 1, 3, 1),
    ("test_nir", 4, 3, 2),
    ("test_nir", 2, 4, 2),
    ("test_nir", 9, 4, 1),
]


def main():
    index = {"train_vis": [], "train_nir": []}
    for folder, cam, pid, count in FOLDERS:
        d = ROOT / folder / f"cam{cam}" / f"{pid:04d}"
        d.mkdir(parents=True, exist_ok=True)
        kind = folder.split("_")[1]
        for n in range(1, count + 1):
            name = f"{pid:04d}_c0{cam}_f{n:04d}_{kind}.jpg"
            v = 40 * pid + 10 * n
            colour = (v, 30 * cam, 100) if kind == "vis" else (v, v, v)
            Image.new("RGB", (8, 16), colour).save(d / name, quality=95)
            if folder in index:
                index[folder].append(f"{folder}/cam{cam}/{pid:04d}/{name} {pid - 1}")
    (ROOT / "idx").mkdir(exist_ok=True)
    for folder, lines in index.items():
        (ROOT / "idx" / f"{folder}.txt").write_text("\n".join(lines) + "\n")
    (ROOT / "idx" / "test_id.txt").write_text("3,4\n")


if __name__ == "__main__":
    main()
