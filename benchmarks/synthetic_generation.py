"""Speed of the synthetic dataset: rendering throughput and time to build the TFDS dataset.

  python benchmarks/synthetic_generation.py                  # default 64x32 dataset
  python benchmarks/synthetic_generation.py --height 128 --width 64 --skip_tfds

Prints images/s per modality (NumPy rendering only), the time to render every image of
the dataset, and the time to build the three TFDS configs ('rgb', 'depth', 'infrared')
into a fresh directory (PNG encoding and TFRecord writing included). Wall and CPU times
are both shown: on a shared machine the CPU time is the more stable figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time

from jaxreid.datasets.synthetic import generation, render


class _Timer:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--height", type=int, default=generation.SyntheticConfig.height)
    parser.add_argument("--width", type=int, default=generation.SyntheticConfig.width)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip_tfds", action="store_true", help="only time the NumPy rendering")
    parser.add_argument(
        "--data_dir", default=None, help="where to build (default: a temporary directory)"
    )
    args = parser.parse_args()
    config = dataclasses.replace(
        generation.SyntheticConfig(), height=args.height, width=args.width, seed=args.seed
    )
    print(f"config: {config.to_json()}")

    total_images, total = 0, _Timer()
    with total:
        for modality in render.MODALITIES:
            with _Timer() as t:
                n = sum(
                    1
                    for split in generation.SPLITS
                    for _ in generation.iter_examples(config, modality, split)
                )
            total_images += n
            print(
                f"render {modality:9s} {n:6d} images  {t.wall:6.2f} s wall {t.cpu:6.2f} s cpu  "
                f"{n / t.wall:7.0f} images/s wall {n / t.cpu:7.0f} images/s cpu"
            )
    print(
        f"render all       {total_images:6d} images  {total.wall:6.2f} s wall {total.cpu:6.2f} s cpu"
    )

    if args.skip_tfds:
        return
    with _Timer() as t:
        import tensorflow  # pylint: disable=g-import-not-at-top,unused-import  # TFDS imports it lazily
        from jaxreid.datasets.synthetic import builder  # pylint: disable=g-import-not-at-top
    print(f"import tensorflow + builder            {t.wall:6.2f} s wall {t.cpu:6.2f} s cpu")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or tmp
        with _Timer() as everything:
            for modality in render.MODALITIES:
                with _Timer() as t:
                    b = builder.build(data_dir, modality, config)
                counts = {s: b.info.splits[s].num_examples for s in b.info.splits}
                print(
                    f"build  {modality:9s} {t.wall:6.2f} s wall {t.cpu:6.2f} s cpu  {counts}  -> {b.data_dir}"
                )
        print(f"build  all       {everything.wall:6.2f} s wall {everything.cpu:6.2f} s cpu")
        if args.data_dir is None:
            print("(temporary directory removed)")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
