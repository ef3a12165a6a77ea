"""Tests of the synthetic RGB / depth / infrared dataset (renderer, generation, TFDS builder)."""

import dataclasses
import math
import subprocess
import sys

import numpy as np
import pytest

from jaxreid.datasets.synthetic import generation, render
from jaxreid.datasets.synthetic.generation import Camera, SyntheticConfig

TINY = SyntheticConfig(
    seed=7,
    num_train_ids=3,
    num_val_ids=2,
    num_test_ids=2,
    rgbd_frames_per_id=3,
    ir_frames_per_id=2,
    height=32,
    width=16,
)
MODALITIES = ("rgb", "depth", "infrared")


def _frames(config, n, camera=Camera(1, True), person_id=1):
    return [generation.frame(config, person_id, camera, i) for i in range(n)]


def _as_key(examples):
    return [
        (
            e["modality"],
            e["person_id"],
            e["camera_id"],
            e["frame_id"],
            e["file_index"],
            e["filename"],
            e["image"].dtype.str,
            e["image"].shape,
            e["image"].tobytes(),
        )
        for e in examples
    ]


# ---------------------------------------------------------------------------------------
# Determinism.


def test_same_seed_is_byte_identical_and_other_seed_differs():
    a = generation.generate(TINY)
    b = generation.generate(TINY)
    c = generation.generate(dataclasses.replace(TINY, seed=8))
    for split in generation.SPLITS:
        assert _as_key(a[split]) == _as_key(b[split])
        same = [np.array_equal(x["image"], y["image"]) for x, y in zip(a[split], c[split])]
        assert not any(same), f"{split}: seed 8 reproduced {sum(same)} images of seed 7"


def test_subset_batch_and_modality_order_do_not_change_images():
    full = generation.generate(TINY)
    subset = generation.generate(TINY, modalities=("depth", "infrared"), person_ids=[5, 2])
    for split in generation.SPLITS:
        expected = [e for e in full[split] if e["person_id"] in (2, 5) and e["modality"] != "rgb"]
        expected.sort(
            key=lambda e: (e["modality"], e["person_id"], e["camera_id"], e["file_index"])
        )
        got = sorted(
            subset[split],
            key=lambda e: (e["modality"], e["person_id"], e["camera_id"], e["file_index"]),
        )
        assert _as_key(got) == _as_key(expected)
    one_by_one = list(generation.iter_examples(TINY, "rgb", "train", batch_size=1))
    batched = [e for e in full["train"] if e["modality"] == "rgb"]
    assert _as_key(one_by_one) == _as_key(batched)


# ---------------------------------------------------------------------------------------
# What each modality can see.


def test_depth_sees_shape_only():
    a = generation.identity(TINY, 1)
    b = generation.identity(TINY, 2)
    assert a.appearance != b.appearance
    # Same body, someone else's clothes, hair colour, patterns and IR materials.
    a_dressed_as_b = render.IdentityParams(shape=a.shape, appearance=b.appearance)
    recoloured = dataclasses.replace(
        a,
        appearance=dataclasses.replace(
            a.appearance,
            upper_rgb=(0.9, 0.1, 0.1),
            lower_rgb=(0.1, 0.9, 0.1),
            pattern=1,
            hairline=0.9,
        ),
    )
    frames = _frames(TINY, 6)
    for other in (a_dressed_as_b, recoloured):
        idents = [a] * len(frames)
        others = [other] * len(frames)
        depth_a = render.render_frames(idents, frames, "depth", 64, 32)
        depth_o = render.render_frames(others, frames, "depth", 64, 32)
        np.testing.assert_array_equal(depth_a, depth_o)
        rgb_a = render.render_frames(idents, frames, "rgb", 64, 32)
        rgb_o = render.render_frames(others, frames, "rgb", 64, 32)
        assert (rgb_a != rgb_o).any(axis=(1, 2, 3)).all(), "RGB must change with clothing colours"
    # ... while a different body does change depth.
    other_body = render.IdentityParams(shape=b.shape, appearance=a.appearance)
    depth_b = render.render_frames([other_body] * len(frames), frames, "depth", 64, 32)
    assert (depth_b != depth_a).any(axis=(1, 2, 3)).all()


def test_infrared_has_no_hue():
    a = generation.identity(TINY, 3)
    reds = dataclasses.replace(
        a.appearance,
        upper_rgb=(0.8, 0.1, 0.1),
        lower_rgb=(0.7, 0.2, 0.2),
        pattern_rgb=(0.9, 0.5, 0.1),
        bag_rgb=(0.9, 0.0, 0.0),
    )

    # Same brightness, hue rotated by 180 degrees; the IR reflectances are unchanged.
    def rotate(rgb):
        import colorsys

        h, s, v = colorsys.rgb_to_hsv(*rgb)
        return colorsys.hsv_to_rgb((h + 0.5) % 1.0, s, v)

    blues = dataclasses.replace(
        reds,
        **{
            k: rotate(getattr(reds, k))
            for k in ("upper_rgb", "lower_rgb", "pattern_rgb", "bag_rgb")
        },
    )
    frames = _frames(TINY, 6, camera=Camera(3, True))
    id_red = [render.IdentityParams(a.shape, reds)] * 6
    id_blue = [render.IdentityParams(a.shape, blues)] * 6
    ir_red = render.render_frames(id_red, frames, "infrared", 64, 32)
    np.testing.assert_array_equal(ir_red, render.render_frames(id_blue, frames, "infrared", 64, 32))
    assert ir_red.shape == (6, 64, 32, 1) and ir_red.dtype == np.uint8
    rgb_red = render.render_frames(id_red, frames, "rgb", 64, 32).astype(int)
    rgb_blue = render.render_frames(id_blue, frames, "rgb", 64, 32).astype(int)
    assert (rgb_red != rgb_blue).any(axis=(1, 2, 3)).all()
    # Changing a material reflectance does change infrared.
    brighter = dataclasses.replace(
        reds, upper_ir=min(1.0, reds.upper_ir + 0.3), lower_ir=min(1.0, reds.lower_ir + 0.3)
    )
    ir_bright = render.render_frames(
        [render.IdentityParams(a.shape, brighter)] * 6, frames, "infrared", 64, 32
    )
    assert (ir_bright.astype(int) - ir_red).sum() > 0


# ---------------------------------------------------------------------------------------
# Splits, files, pairing.


def test_splits_counts_and_file_names():
    data = generation.generate(TINY)
    ids = {s: {e["person_id"] for e in data[s]} for s in generation.SPLITS}
    assert ids == {"train": {1, 2, 3}, "val": {4, 5}, "test": {6, 7}}
    for split, n_ids in (("train", 3), ("val", 2), ("test", 2)):
        by_mod = {m: [e for e in data[split] if e["modality"] == m] for m in MODALITIES}
        assert (
            len(by_mod["rgb"]) == len(by_mod["depth"]) == n_ids * 2 * 3
        )  # ids x RGB-D cams x frames
        assert len(by_mod["infrared"]) == n_ids * 2 * 2  # ids x IR cams x frames
        assert {e["camera_id"] for e in by_mod["rgb"]} == {1, 2}
        assert {e["camera_id"] for e in by_mod["infrared"]} == {3, 4}
        for e in by_mod["infrared"]:
            assert e["frame_id"] == ""
        for m in MODALITIES:
            names = [e["filename"] for e in by_mod[m]]
            assert len(set(names)) == len(names)
            for e in by_mod[m]:
                assert (
                    e["filename"]
                    == f"cam{e['camera_id']}/{e['person_id']:04d}/{e['file_index']:04d}.png"
                )
            assert sorted({e["file_index"] for e in by_mod[m]}) == list(
                range(1, (3 if m != "infrared" else 2) + 1)
            )
    first = data["train"][0]
    assert first["filename"] == "cam1/0001/0001.png" and first["frame_id"] == "cam1/0001/0001"


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="num_val_ids"):
        SyntheticConfig(num_val_ids=-1)
    with pytest.raises(ValueError, match="camera ids"):
        SyntheticConfig(ir_cameras=(Camera(1),))
    with pytest.raises(ValueError, match="split"):
        TINY.split_person_ids("validation")


def test_rgb_and_depth_frames_are_the_same_instant():
    pid, cam = 2, TINY.rgbd_cameras[1]
    ident = generation.identity(TINY, pid)
    rgb = {
        e["frame_id"]: e
        for e in generation.iter_examples(TINY, "rgb", "train")
        if e["person_id"] == pid
    }
    depth = {
        e["frame_id"]: e
        for e in generation.iter_examples(TINY, "depth", "train")
        if e["person_id"] == pid
    }
    assert rgb.keys() == depth.keys()
    for index in range(TINY.rgbd_frames_per_id):
        key = f"cam{cam.camera_id}/{pid:04d}/{index + 1:04d}"
        frame = generation.frame(TINY, pid, cam, index)
        np.testing.assert_array_equal(
            rgb[key]["image"], render.render_frame(ident, frame, "rgb", 32, 16)
        )
        np.testing.assert_array_equal(
            depth[key]["image"], render.render_frame(ident, frame, "depth", 32, 16)
        )
    # With a time offset, depth shows the walk `offset` frames later (RobotPKU-like).
    late = dataclasses.replace(TINY, depth_time_offset=5)
    depth_late = {
        e["frame_id"]: e
        for e in generation.iter_examples(late, "depth", "train")
        if e["person_id"] == pid
    }
    frame = generation.frame(TINY, pid, cam, 0)
    shifted = render.advance_time(frame, 5)
    # float64 phase: the same product computed in another order (approx's rel 1e-6).
    assert shifted.phase == pytest.approx(
        frame.phase + 5 * 2 * math.pi * 0.9 / 30
    )  # 0.9 gait cycles/s, 30 fps
    key = f"cam{cam.camera_id}/{pid:04d}/0001"
    np.testing.assert_array_equal(
        depth_late[key]["image"], render.render_frame(ident, shifted, "depth", 32, 16)
    )
    assert not np.array_equal(depth_late[key]["image"], depth[key]["image"])


def test_depth_format_distance_and_holes():
    cfg = dataclasses.replace(TINY, height=64, width=32)
    ident = generation.identity(cfg, 1)
    frames = _frames(cfg, 12)
    depth = render.render_frames([ident] * 12, frames, "depth", 64, 32)
    assert depth.dtype == np.uint16 and depth.shape == (12, 64, 32, 1)
    geom = render.rasterise([ident.shape] * 12, frames, 64, 32)
    holes = depth[..., 0] == 0
    assert 0.005 < holes.mean() < 0.2, f"hole fraction {holes.mean():.3f}"
    for i, f in enumerate(frames):
        on_body = (geom.label[i] != render.BACKGROUND) & ~holes[i]
        # The body's median depth is the sampled distance (relief is a few cm; noise is
        # ~1.5 mm + 2 mm/m^2, quantisation ~5 cm at 4 m).
        assert abs(np.median(depth[i, ..., 0][on_body]) - 1000 * f.distance_m) < 150
        background = (geom.label[i] == render.BACKGROUND) & ~holes[i]
        assert np.median(depth[i, ..., 0][background]) > 1000 * f.distance_m
    assert (
        2000 <= min(f.distance_m * 1000 for f in frames)
        and max(f.distance_m * 1000 for f in frames) <= 5000
    )


def _rank1(features, pids, cams):
    """Raw-pixel nearest neighbour, camera A queries camera B and vice versa (brute force)."""
    a, b = sorted(set(cams.tolist()))
    hits = []
    for q, g in ((a, b), (b, a)):
        fq, fg = features[cams == q], features[cams == g]
        d = ((fq[:, None, :] - fg[None, :, :]) ** 2).sum(-1)
        hits.append(pids[cams == g][d.argmin(1)] == pids[cams == q])
    return float(np.concatenate(hits).mean())


def test_depth_is_less_discriminative_than_rgb():
    cfg = SyntheticConfig(seed=0, num_train_ids=0, num_val_ids=0, num_test_ids=50)
    scores = {}
    for m in MODALITIES:
        images, pids, cams = generation.stack(list(generation.iter_examples(cfg, m, "test")))
        x = images.astype(np.float32)
        n, h, w, c = x.shape
        x = x.reshape(n, h // 4, 4, w // 4, 4, c).mean((2, 4)).reshape(n, -1)  # 16x8 pixels
        scores[m] = _rank1(x, pids, cams)
    print("raw-pixel NN rank-1:", scores, "chance:", 1 / 50)
    # Raw pixels favour depth (its silhouette stands out from the far background, while RGB
    # pixels carry clutter and illumination), so this margin is smaller than with learned
    # features (datasets/synthetic/README.md: ResNet18 one-stream, RGB 75 % vs depth 47 % mAP).
    assert scores["rgb"] > 0.1
    assert scores["depth"] > 0.04  # depth carries identity: body shape
    assert scores["rgb"] > 1.3 * scores["depth"], scores


# ---------------------------------------------------------------------------------------
# Packaging.


def test_package_import_does_not_import_tensorflow():
    code = (
        "import sys, jaxreid.datasets, jaxreid.datasets.synthetic; "
        "assert 'tensorflow' not in sys.modules and 'tensorflow_datasets' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_builder_writes_all_modalities(tmp_path):
    import tensorflow_datasets as tfds

    import jaxreid.datasets
    from jaxreid.datasets.synthetic import builder

    assert builder.SyntheticReid.name == "synthetic_reid"
    assert set(builder.SyntheticReid.builder_configs) == {"rgb", "depth", "infrared"}
    cfg = dataclasses.replace(TINY, num_test_ids=1)
    expected_counts = {"rgb": (18, 12, 6), "depth": (18, 12, 6), "infrared": (12, 8, 4)}
    formats = {"rgb": (3, "uint8"), "depth": (1, "uint16"), "infrared": (1, "uint8")}
    frame_ids = {}
    for m in MODALITIES:
        b = builder.build(tmp_path, m, cfg)
        assert b.builder_config.name.startswith(f"{m}_s7_32x16_")
        assert {s: b.info.splits[s].num_examples for s in ("train", "val", "test")} == dict(
            zip(("train", "val", "test"), expected_counts[m])
        )
        channels, dtype = formats[m]
        assert b.info.features["image"].shape == (None, None, channels)
        assert b.info.features["image"].dtype == np.dtype(dtype)
        # The example schema of every jaxreid dataset (conventions.md), images as PNG.
        schema = tfds.features.FeaturesDict(
            {
                "image": tfds.features.Image(
                    shape=(None, None, channels), dtype=np.dtype(dtype), encoding_format="png"
                ),
                "modality": tfds.features.Text(),
                "person_id": np.int32,
                "camera_id": np.int32,
                "frame_id": tfds.features.Text(),
                "file_index": np.int32,
                "filename": tfds.features.Text(),
            }
        )
        assert b.info.features.to_json_content() == schema.to_json_content()
        reference = {e["filename"]: e for e in generation.iter_examples(cfg, m, "val")}
        rows = list(b.as_dataset(split="val").as_numpy_iterator())
        assert len(rows) == len(reference)
        for row in rows:
            ref = reference[row["filename"].decode()]
            assert row["image"].dtype == np.dtype(dtype) and row["image"].shape == (
                32,
                16,
                channels,
            )
            np.testing.assert_array_equal(
                row["image"], ref["image"]
            )  # PNG is lossless, also for uint16
            assert row["modality"].decode() == m
            for k in ("person_id", "camera_id", "file_index"):
                assert row[k] == ref[k]
            assert row["frame_id"].decode() == ref["frame_id"]
        frame_ids[m] = sorted(r["frame_id"] for r in rows)
    assert frame_ids["rgb"] == frame_ids["depth"] and all(f for f in frame_ids["rgb"])
    assert set(frame_ids["infrared"]) == {b""}
    # The registry reaches the same builder; another seed gets its own directory.
    same = jaxreid.datasets.builder("synthetic", "depth", data_dir=tmp_path, synthetic_config=cfg)
    assert same.data_dir == builder.builder("depth", cfg, tmp_path).data_dir
    other = builder.builder("depth", dataclasses.replace(cfg, seed=8), tmp_path)
    assert other.data_dir != same.data_dir
    assert builder.builder("rgb", None, tmp_path).builder_config.name == "rgb"
    with pytest.raises(ValueError, match="unknown dataset 'market'"):
        jaxreid.datasets.builder("market", "rgb")
