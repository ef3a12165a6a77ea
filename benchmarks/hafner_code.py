"""Times the 'hafner_code' evaluation (jaxreid.evaluation.hafner_code) at SYSU-MM01 test size.

    python benchmarks/hafner_code.py                      # SYSU-MM01 test size, 4 pairs
    python benchmarks/hafner_code.py --quick              # 24 persons, a smoke test
    python benchmarks/hafner_code.py --save /tmp/a.npz    # keep the metrics ...
    python benchmarks/hafner_code.py --check /tmp/a.npz   # ... and compare another revision's

Problem: the SYSU-MM01 test set's size (96 persons; 6,775 RGB images on cameras 1, 2, 4, 5,
3,803 infrared images on cameras 3, 6; docs/datasets.md), random 2048-d float32 features with
identity structure. The code's draws are 50 images per person with replacement
(`HAFNER_CODE_IMAGES_PER_ID`), so every pair ranks 4,800 queries against 4,800 gallery entries;
all four (query, gallery) modality pairs, as `evaluate_cm` computes them. Two settings: the
camera rule (SYSU-MM01 test sets) and the relaxation with the code's `use_all` masking
(`use_all_quirk`, frames pair the two modalities so cross-modal pairs mask too).
`--check` asserts that every metric (CMC, mAP, mINP, valid counts) is identical, bit for bit.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from jaxreid.evaluation import hafner_code

FEATURE_DIM = 2048
PAIRS = [("rgb", "rgb"), ("rgb", "ir"), ("ir", "rgb"), ("ir", "ir")]
METRIC_KEYS = ("cmc", "mAP", "mINP", "num_valid", "num_valid_cmc")


def problem(persons: int, rgb_images: int, ir_images: int, seed: int = 0) -> dict:
    """{modality: {'feats', 'ids', 'cams', 'frames'}} with SYSU-MM01's cameras."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((persons, FEATURE_DIM), np.float32)
    data = {}
    for name, count, cams in (("rgb", rgb_images, (1, 2, 4, 5)), ("ir", ir_images, (3, 6))):
        ids = np.sort(np.r_[np.arange(persons), rng.integers(0, persons, count - persons)])
        noise = 3.0 * rng.standard_normal((count, FEATURE_DIM), np.float32)
        # One frame key per (person, image number): the first images of a person pair up
        # across the modalities, as simultaneous frames would.
        number = np.arange(count) - np.searchsorted(ids, ids)
        data[name] = {
            "feats": (centers[ids] + noise).astype(np.float32),
            "ids": ids,
            "cams": rng.choice(cams, count),
            "frames": np.array([f"{p}_{k}" for p, k in zip(ids, number)]),
        }
    return data


def run(data, camera_rule: bool) -> tuple[float, dict]:
    start = time.perf_counter()
    res = hafner_code.evaluate_modality_pairs_code(
        data, PAIRS, seed=0, camera_rule=camera_rule, use_all_quirk=not camera_rule
    )
    return time.perf_counter() - start, res


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="24 persons instead of 96")
    parser.add_argument("--save", help="write the metrics to this .npz")
    parser.add_argument("--check", help="compare the metrics with this .npz (from --save)")
    args = parser.parse_args()
    sizes = (24, 1700, 950) if args.quick else (96, 6775, 3803)  # SYSU-MM01 test set
    data = problem(*sizes)
    print(f"{platform.processor() or platform.machine()}; persons, RGB, IR images = {sizes}")
    metrics = {}
    for camera_rule in (True, False):
        seconds, res = run(data, camera_rule)
        label = "camera_rule" if camera_rule else "use_all_quirk"
        q, g = res[PAIRS[0]]["num_queries"], res[PAIRS[0]]["num_gallery"]
        print(f"{label:14s} 4 pairs of {q} x {g}: {seconds:6.1f} s")
        for pair, r in res.items():
            for key in METRIC_KEYS:
                metrics[f"{label}/{pair[0]}-{pair[1]}/{key}"] = np.asarray(r[key])
    if args.save:
        np.savez(args.save, **metrics)
    if args.check:
        want = np.load(args.check)
        assert sorted(want.files) == sorted(metrics), "different settings or pairs"
        for key in want.files:
            np.testing.assert_array_equal(metrics[key], want[key], err_msg=key)
        print(f"identical to {args.check}: {len(want.files)} values")


if __name__ == "__main__":
    main()
