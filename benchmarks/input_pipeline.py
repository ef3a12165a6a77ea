"""Throughput of the tf.data training pipeline alone, where its time goes, and the train step.

  python benchmarks/input_pipeline.py [--sizes 256x128,288x144] [--batches 20] [--no-tfds]
                                      [--no-step] [--target 3000]

1. In-memory sets (what training iterates over; jaxreid.data.sources loads a TFDS set into
   memory once): `jaxreid.data.pipeline.train_batches` with the full training augmentation
   (random flip + pad-and-crop 10 px) on a cross-modal RGB (uint8) + depth (uint16, person
   distance subtracted) set, P x K = 16 x 4 = 64 images per batch. Images/s of the pipeline
   and per host core (divided by os.cpu_count(): tf.data parallelises over all cores), and
   variants with stages switched off.
2. Stage costs on one core: sampling, gathering the batch's rows, normalisation of each
   modality (channel conversion, depth centring, scaling), the augmentation and the copy
   into a tf.data tensor.
3. TFDS files: a small synthetic TFDS set rendered at the size is built in a temporary
   folder; `jaxreid.data.sources.load_image_set` is timed (record reading + PNG decode +
   resize), and the decode alone.
4. The train step on this machine's CPU for ResNet18/50 (the benchmarks' own re-id step,
   float32, batch `--step_batch`), to give pipeline rate / step rate, and the host cores a
   GPU host needs at `--target` images/s with the measured per-core rate.

Figures on a shared machine are noisy; the table says the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

# This checkout's jaxreid (not an installed one) and the sibling benchmark module.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(_HERE), _HERE]

import tensorflow as tf  # noqa: E402

from jaxreid.data import pipeline, preprocessing, sampler  # noqa: E402
from jaxreid.data.image_set import ImageSet  # noqa: E402

P, K = 16, 4
PAD = 10


def synthetic_sets(height: int, width: int, ids: int = 50, per_id: int = 16):
    """RGB uint8 and depth uint16 ImageSets of smooth random images (not flat colour)."""
    rng = np.random.default_rng(0)
    n = ids * per_id
    person_ids = np.repeat(np.arange(ids), per_id).astype(np.int32)

    def smooth(channels, dtype, high):
        small = rng.integers(0, high, size=(n, height // 16, width // 16, channels))
        big = small.repeat(16, axis=1).repeat(16, axis=2)
        noise = rng.integers(0, high // 32, size=big.shape)
        return np.clip(big + noise, 0, high - 1).astype(dtype)

    depth = smooth(1, np.uint16, 8000)
    depth[:, : height // 8] = 0  # Holes, as Kinect depth has.

    def make(modality, images):
        return ImageSet(
            modality=modality,
            images=images,
            person_ids=person_ids,
            camera_ids=np.ones(n, np.int32),
            frame_ids=np.array([str(i) for i in range(n)], object),
            file_index=np.arange(n, dtype=np.int32) + 1,
            filenames=np.array([""] * n, object),
        )

    return [make("rgb", smooth(3, np.uint8, 256)), make("depth", depth)]


def pipeline_rate(sets, norms, index, batches: int, **kwargs) -> float:
    """Images/s of train_batches after 3 warm-up batches."""
    it = pipeline.train_batches(
        sets,
        norms,
        index,
        num_identities=P,
        images_per_identity=K,
        layout="shared",
        seed=0,
        start_step=0,
        num_steps=batches + 3,
        **kwargs,
    )
    for _ in range(3):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * P * K / (time.perf_counter() - start)


def _best_of(fn, repeats=5) -> float:
    """Fastest of `repeats` timings of fn() in seconds (the least disturbed by other load)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def stage_costs(sets, norms, index, height, width) -> dict[str, float]:
    """Seconds per batch of each stage on one core (tf ops limited to one thread)."""
    labels, modality, positions = sampler.sample_batch(index, P, K, 0, 1)
    costs = {"sample": _best_of(lambda: sampler.sample_batch(index, P, K, 0, 1))}
    rows = [modality == m for m in range(2)]
    costs["gather"] = _best_of(lambda: [s.images[positions[r]] for s, r in zip(sets, rows)])
    gathered = [s.images[positions[r]] for s, r in zip(sets, rows)]
    costs["normalise rgb"] = _best_of(
        lambda: preprocessing.normalize(gathered[0], norms[0], "shared", 0)
    )
    costs["normalise depth (with centring)"] = _best_of(
        lambda: preprocessing.normalize(gathered[1], norms[1], "shared", 1)
    )
    plain = preprocessing.Normalization(norms[1].scale, norms[1].mean, norms[1].std, False)
    costs["  of which depth centring"] = costs["normalise depth (with centring)"] - _best_of(
        lambda: preprocessing.normalize(gathered[1], plain, "shared", 1)
    )
    batch = np.zeros((P * K, height, width, 3), np.float32)
    # The pipeline's own TensorFlow flip and pad-and-crop (jaxreid.data.pipeline._augment),
    # on a tensor already in tf.data, as in the pipeline.
    tensor = tf.constant(batch)
    key = tf.constant([0, 1], tf.int32)
    rows = (0, P * K, P * K)
    costs["augment (flip + pad-crop)"] = _best_of(
        lambda: pipeline._augment(tensor, key, True, PAD, rows).numpy()
    )
    costs["  of which flip"] = costs["augment (flip + pad-crop)"] - _best_of(
        lambda: pipeline._augment(tensor, key, False, PAD, rows).numpy()
    )
    costs["to tf.data tensor (copy)"] = _best_of(lambda: tf.constant(batch).numpy())
    return costs


def tfds_rates(height: int, width: int) -> tuple[float, float, int]:
    """(load_image_set images/s, decode-only images/s, number of images) of a synthetic
    TFDS set rendered at height x width, built in a temporary folder."""
    import ml_collections
    import tensorflow_datasets as tfds

    from jaxreid import config as config_lib
    from jaxreid.data import sources

    tfds.disable_progress_bar()
    with tempfile.TemporaryDirectory() as tmp:
        config = config_lib.default_config().data
        config.data_dir = tmp
        config.image_size = (height, width)
        config.synthetic = ml_collections.ConfigDict(config.synthetic.to_dict())
        config.synthetic.height, config.synthetic.width = height, width
        config.synthetic.num_train_ids = 16
        config.synthetic.num_val_ids = 2
        config.synthetic.num_test_ids = 2
        builder = sources.prepared_builder(config, "rgb")
        n = builder.info.splits["train"].num_examples

        def decode_only():
            ds = builder.as_dataset(split="train", shuffle_files=False).batch(256)
            for _ in tfds.as_numpy(ds):
                pass

        decode_only()  # Warm the file cache and the tf.function traces.
        decode = n / _best_of(decode_only, 3)
        load = n / _best_of(lambda: sources.load_image_set(config, "rgb", "train"), 3)
        return load, decode, n


def step_rate(backbone: str, batch: int, height: int, width: int, steps: int = 2) -> float:
    import jax

    import reid_step

    _, init_fn, step_fn = reid_step.build(backbone)
    images, labels = reid_step.random_batch(batch, height, width)
    state = init_fn(images)
    step = jax.jit(step_fn, donate_argnums=0)
    key = jax.random.key(0)
    state, loss = step(state, images, labels, key)
    jax.block_until_ready(loss)
    start = time.perf_counter()
    for _ in range(steps):
        state, loss = step(state, images, labels, key)
    jax.block_until_ready(loss)
    return batch * steps / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256x128,288x144")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--no-tfds", dest="tfds", action="store_false")
    parser.add_argument("--no-step", dest="step", action="store_false")
    parser.add_argument("--step_batch", type=int, default=8)
    parser.add_argument("--target", type=float, default=3000.0, help="Accelerator images/s.")
    args = parser.parse_args()
    cores = os.cpu_count()
    print(
        f"{time.strftime('%Y-%m-%d')} | {cores} cores | tensorflow {tf.__version__} | "
        f"load average {os.getloadavg()[0]:.1f} | batch P x K = {P} x {K}"
    )
    summary = []
    for size in args.sizes.split(","):
        height, width = map(int, size.split("x"))
        sets = synthetic_sets(height, width)
        norms = [
            preprocessing.fit_normalization(sets[0].images, "shared", "dataset"),
            preprocessing.fit_normalization(sets[1].images, "shared", "dataset", center=True),
        ]
        index = sampler.index_identities([s.person_ids for s in sets])
        print(f"\n## {height}x{width}, in-memory RGB + depth sets\n")
        print("| pipeline variant | images/s | per core |")
        print("|---|---|---|")
        variants = {
            "full (flip + pad-crop 10)": dict(random_flip=True, pad_crop=PAD),
            "no pad-crop": dict(random_flip=True, pad_crop=0),
            "no augmentation": dict(random_flip=False, pad_crop=0),
        }
        rates = {}
        for name, kwargs in variants.items():
            rates[name] = pipeline_rate(sets, norms, index, args.batches, **kwargs)
            print(f"| {name} | {rates[name]:.0f} | {rates[name] / cores:.0f} |", flush=True)
        rgb_only = pipeline_rate(
            sets[:1],
            norms[:1],
            sampler.index_identities([sets[0].person_ids]),
            args.batches,
            random_flip=True,
            pad_crop=PAD,
        )
        print(f"| full, RGB only (no depth centring) | {rgb_only:.0f} | {rgb_only / cores:.0f} |")

        print(f"\nStage costs on one core, per batch of {P * K} (best of 5):\n")
        print("| stage | ms / batch | images/s on one core |")
        print("|---|---|---|")
        for name, sec in stage_costs(sets, norms, index, height, width).items():
            ips = f"{P * K / sec:.0f}" if not name.startswith("  ") else ""
            print(f"| {name} | {sec * 1e3:.1f} | {ips} |", flush=True)

        if args.tfds:
            load, decode, n = tfds_rates(height, width)
            print(f"\nTFDS files ({n} synthetic RGB PNGs at {height}x{width}):\n")
            print("| stage | images/s | per core |")
            print("|---|---|---|")
            print(f"| read + decode | {decode:.0f} | {decode / cores:.0f} |")
            print(f"| load_image_set (read + decode + resize) | {load:.0f} | {load / cores:.0f} |")

        full = rates["full (flip + pad-crop 10)"]
        if args.step:
            print(f"\nTrain step on this CPU (float32, batch {args.step_batch}):\n")
            print("| backbone | step images/s | pipeline / step |")
            print("|---|---|---|")
            for backbone in ("resnet18", "resnet50"):
                rate = step_rate(backbone, args.step_batch, height, width)
                print(f"| {backbone} | {rate:.1f} | {full / rate:.0f}x |", flush=True)
        per_core = full / cores
        summary.append(
            f"{height}x{width}: {full:.0f} images/s on {cores} cores ({per_core:.0f} per core); "
            f"{args.target:.0f} images/s need {args.target / per_core:.1f} such cores "
            f"(full augmentation, RGB + depth)"
        )
    print("\n" + "\n".join(summary))


if __name__ == "__main__":
    main()
