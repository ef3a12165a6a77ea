"""A dataset split's images as files, to search with `jaxreid.search_cli` or any other tool.

    python -m jaxreid.data.image_files --run=/tmp/jaxreid/synthetic --split=test \\
        --out=/tmp/jaxreid/images

writes every image of the split, each modality of the run's dataset, as

    <out>/<split>/<modality>/cam<c>/<person id>/<n>.png

(the dataset's own relative file name with a .png suffix when it has one, e.g. SYSU-MM01's
cam<c>/<id>/<n>; else cam<c>/<id:04d>/<file index:04d>). PNG keeps the stored values
exactly: 8-bit RGB / infrared, 16-bit depth in millimetres. Images are written at the run's
input size (`config.data.image_size`), as `load_image_set` gives them. `--config=FILE`
(e.g. configs/synthetic.py) instead of `--run` takes the dataset of a config file.
Imports TensorFlow (the data layer).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

SPLITS = ("train", "val", "test")


def relative_path(filename: str, camera_id: int, person_id: int, file_index: int) -> str:
    """The file's path under <out>/<split>/<modality>/, '/'-separated, ending in .png."""
    filename = str(filename).replace(os.sep, "/").lstrip("/")
    if filename and ".." not in filename.split("/"):
        return os.path.splitext(filename)[0] + ".png"
    return f"cam{int(camera_id)}/{int(person_id):04d}/{int(file_index):04d}.png"


def write_image(path: str, image: np.ndarray) -> None:
    """[H, W, C] uint8 (C = 1 or 3) or [H, W, 1] uint16 -> a PNG of the same values."""
    from PIL import Image

    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.dtype not in (np.uint8, np.uint16) or (image.dtype == np.uint16 and image.ndim != 2):
        raise ValueError(
            f"{path}: cannot write a {image.dtype} image of shape {image.shape} as PNG; "
            "expected uint8 gray / RGB or uint16 gray"
        )
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(image).save(path)


def write_split(
    data_config, split: str, out, modalities: Sequence[str] | None = None
) -> dict[str, list[str]]:
    """Writes the images of one split; returns {modality: [paths]} in the split's order.

    Args:
      data_config: a `config.data` (dataset name, data_dir, modalities, image_size).
      split: 'train' | 'val' | 'test'.
      out: the output root; files go to <out>/<split>/<modality>/.
      modalities: default `data_config.modalities`.
    """
    from jaxreid.data import sources  # local: imports TensorFlow

    written = {}
    for modality in modalities or data_config.modalities:
        image_set = sources.load_image_set(data_config, modality, split)
        root = os.path.join(os.fspath(out), split, modality)
        paths = []
        for i in range(len(image_set)):
            relative = relative_path(
                image_set.filenames[i],
                image_set.camera_ids[i],
                image_set.person_ids[i],
                image_set.file_index[i],
            )
            path = os.path.join(root, *relative.split("/"))
            write_image(path, image_set.images[i])
            paths.append(path)
        written[modality] = paths
    return written


def main(argv) -> None:  # pragma: no cover - run as a command in the README
    from absl import app, flags

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from jaxreid import log_filters

    log_filters.install()  # TFDS's and JAX's INFO lines, as in jaxreid.main
    values = flags.FLAGS
    if bool(values.run) == bool(values.config):
        raise app.UsageError("give exactly one of --run and --config")
    if values.run:
        from jaxreid import inference

        config = inference.read_run_info(values.run)["config"]
    else:
        config = values.config
    written = write_split(config.data, values.split, values.out, values.modalities)
    for modality, paths in written.items():
        folder = os.path.join(values.out, values.split, modality)
        print(f"{len(paths)} {modality} images -> {folder}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from absl import app as _app
    from absl import flags as _flags
    from ml_collections import config_flags

    _flags.DEFINE_string("run", None, "Run directory whose dataset to write (its run.json).")
    config_flags.DEFINE_config_file("config", None, "Or a config file, e.g. configs/synthetic.py.")
    _flags.DEFINE_enum("split", "test", list(SPLITS), "Split to write.")
    _flags.DEFINE_string("out", None, "Output root.")
    _flags.DEFINE_list("modalities", None, "Modalities to write (default: the dataset's).")
    _flags.mark_flags_as_required(["out"])
    _app.run(main)
