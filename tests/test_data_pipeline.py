"""P x K sampling, per-host sharding, augmentation and padded evaluation batches."""

import numpy as np
import pytest

from jaxreid.data import pipeline, preprocessing, sampler
from jaxreid.data.image_set import ImageSet


def image_set(modality, ids, per_id, channels, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    n = len(ids) * per_id
    person_ids = np.repeat(np.asarray(ids), per_id).astype(np.int32)
    images = rng.integers(0, np.iinfo(dtype).max, size=(n, 8, 4, channels)).astype(dtype)
    return ImageSet(
        modality=modality,
        images=images,
        person_ids=person_ids,
        camera_ids=np.ones(n, np.int32),
        frame_ids=np.array([str(i) for i in range(n)], object),
        file_index=np.arange(n, dtype=np.int32) + 1,
        filenames=np.array([""] * n, object),
    )


def test_index_keeps_identities_present_in_every_modality():
    index = sampler.index_identities([np.array([1, 1, 2, 3, 3]), np.array([3, 1, 4])])
    np.testing.assert_array_equal(index.labels, [1, 3])
    np.testing.assert_array_equal(index.positions[0][1], [3, 4])
    np.testing.assert_array_equal(index.positions[1][0], [1])


def test_pk_batch_layout():
    index = sampler.index_identities([np.repeat(np.arange(10), 5), np.repeat(np.arange(10), 3)])
    labels, modality, positions = sampler.sample_batch(index, 4, 6, seed=1, step=7)
    assert len(labels) == 24
    # P blocks of K: one label each, K/2 images of each modality.
    blocks = labels.reshape(4, 6)
    assert (blocks == blocks[:, :1]).all() and len(set(blocks[:, 0])) == 4
    np.testing.assert_array_equal(modality.reshape(4, 6), [[0, 0, 0, 1, 1, 1]] * 4)
    ids = [np.repeat(np.arange(10), 5), np.repeat(np.arange(10), 3)]
    for lab, m, pos in zip(labels, modality, positions):
        assert ids[m][pos] == index.labels[lab]
    # Without replacement when there are enough images (5 >= 3 in modality 0).
    for block_pos, block_mod in zip(positions.reshape(4, 6), modality.reshape(4, 6)):
        assert len(set(block_pos[block_mod == 0])) == 3
    # A pure function of (seed, step).
    again = sampler.sample_batch(index, 4, 6, seed=1, step=7)
    np.testing.assert_array_equal(positions, again[2])
    other = sampler.sample_batch(index, 4, 6, seed=1, step=8)
    assert not np.array_equal(positions, other[2])


def test_train_batches_shard_over_processes_and_resume():
    sets = [image_set("rgb", range(6), 4, 3), image_set("depth", range(6), 4, 1, np.uint16)]
    norms = [preprocessing.fit_normalization(s.images, "shared", "dataset") for s in sets]
    index = sampler.index_identities([s.person_ids for s in sets])
    kw = dict(
        num_identities=3,
        images_per_identity=4,
        layout="shared",
        seed=5,
        num_steps=4,
        random_flip=True,
        pad_crop=2,
    )
    full = list(pipeline.train_batches(sets, norms, index, start_step=0, **kw))
    assert len(full) == 4 and full[0]["image"].shape == (12, 8, 4, 3)
    halves = [
        list(
            pipeline.train_batches(
                sets, norms, index, start_step=0, process_index=p, process_count=2, **kw
            )
        )
        for p in range(2)
    ]
    for step in range(4):
        for key in ("image", "label", "modality"):
            np.testing.assert_array_equal(
                np.concatenate([halves[0][step][key], halves[1][step][key]]), full[step][key]
            )
    resumed = list(pipeline.train_batches(sets, norms, index, start_step=2, **kw))
    for a, b in zip(resumed, full[2:]):
        np.testing.assert_array_equal(a["image"], b["image"])


def test_augmentation_is_flip_and_shifted_crop():
    sets = [image_set("rgb", range(4), 2, 3)]
    norm = preprocessing.Normalization(255.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    index = sampler.index_identities([sets[0].person_ids])
    kw = dict(
        num_identities=4, images_per_identity=2, layout="shared", seed=0, start_step=0, num_steps=3
    )
    plain = list(pipeline.train_batches(sets, [norm], index, random_flip=False, pad_crop=0, **kw))
    aug = list(pipeline.train_batches(sets, [norm], index, random_flip=True, pad_crop=1, **kw))
    for p, a in zip(plain, aug):
        for x, y in zip(p["image"], a["image"]):
            # y is x or its mirror image, shifted by at most one pixel with zero fill.
            candidates = []
            for img in (x, x[:, ::-1]):
                padded = np.pad(img, ((1, 1), (1, 1), (0, 0)))
                candidates += [
                    padded[dy : dy + 8, dx : dx + 4] for dy in range(3) for dx in range(3)
                ]
            assert any(np.array_equal(c, y) for c in candidates)


def test_normalization_and_channels():
    rgb = np.array([[[[255, 0, 0]]]], np.uint8)
    gray = preprocessing.convert_channels(rgb, 1)
    # float32 0.299 * 255 vs the decimal product: one rounding (rtol 1e-6).
    np.testing.assert_allclose(gray[..., 0], 0.299 * 255, rtol=1e-6)
    depth = np.array([[[[1000]]]], np.uint16)
    np.testing.assert_array_equal(preprocessing.convert_channels(depth, 3)[0, 0, 0], [1000] * 3)
    norm = preprocessing.Normalization(65535.0, (0.5,) * 3, (0.25,) * 3)
    # float32 (x / 65535 - mean) / std vs decimal arithmetic: two roundings (rtol 1e-6).
    np.testing.assert_allclose(
        preprocessing.normalize(depth, norm, "shared")[0, 0, 0],
        [(1000 / 65535 - 0.5) / 0.25] * 3,
        rtol=1e-6,
    )
    fitted = preprocessing.fit_normalization(
        np.stack([np.zeros((2, 2, 1)), np.full((2, 2, 1), 255)]).astype(np.uint8), "gray", "dataset"
    )
    # float32 statistics of 0 and 255 scaled to [0, 1]: 0.5 exactly or within an ulp.
    np.testing.assert_allclose(fitted.mean, [0.5]) and np.testing.assert_allclose(fitted.std, [0.5])


@pytest.mark.parametrize("n,batch,procs", [(10, 4, 1), (10, 4, 2), (3, 8, 4), (8, 8, 2)])
def test_eval_batches_cover_every_image_once(n, batch, procs):
    s = image_set("rgb", range(n), 1, 3)
    norm = preprocessing.Normalization(255.0, (0.0,) * 3, (1.0,) * 3)
    per_proc = [
        list(
            pipeline.eval_batches(
                s,
                norm,
                layout="shared",
                slot=0,
                global_batch=batch,
                process_index=p,
                process_count=procs,
            )
        )
        for p in range(procs)
    ]
    rows = []
    for step in range(len(per_proc[0])):
        for p in range(procs):
            b = per_proc[p][step]
            assert b["image"].shape[0] == batch // procs
            rows.append(b["image"][b["mask"]])
    # The same float32 division x / 255 in tf.data and NumPy: default rtol 1e-7 (an ulp).
    np.testing.assert_allclose(np.concatenate(rows), s.images.astype(np.float32) / 255.0)


def test_zero_padding_layouts_put_each_modality_in_its_own_channel():
    rgb = np.full((1, 1, 1, 3), 100, np.uint8)
    depth = np.full((1, 1, 1, 1), 50, np.uint8)
    norm = preprocessing.Normalization(255.0, (0.0,), (1.0,))
    luma = (0.299 + 0.587 + 0.114) * 100 / 255
    # float32 luma and division by 255 vs float64 decimals: a few roundings (rtol 1e-6).
    np.testing.assert_allclose(
        preprocessing.normalize(rgb, norm, "zero_pad", slot=0)[0, 0, 0], [luma, 0, 0], rtol=1e-6
    )
    np.testing.assert_allclose(
        preprocessing.normalize(depth, norm, "zero_pad", slot=1)[0, 0, 0],
        [0, 0, 50 / 255],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        preprocessing.normalize(depth, norm, "zero_pad2", slot=1)[0, 0, 0], [0, 50 / 255], rtol=1e-6
    )
    np.testing.assert_allclose(
        preprocessing.normalize(rgb, norm, "gray")[0, 0, 0], [luma], rtol=1e-6
    )


def test_center_person_subtracts_the_low_percentile_of_valid_depths():
    # 20 pixels: 4 holes, person at 2000 (4 px), wall at 5000 (12 px). The 15th percentile of
    # the 16 valid depths (linear interpolation, position 2.25) is 2000.
    image = np.array([0] * 4 + [2000] * 4 + [5000] * 12, np.float32).reshape(1, 4, 5, 1)
    out = preprocessing.center_person(image)
    np.testing.assert_array_equal(out.reshape(-1), [0] * 4 + [0] * 4 + [3000] * 12)
    # Moving the person 1 m further away changes nothing.
    np.testing.assert_array_equal(
        preprocessing.center_person(np.where(image > 0, image + 1000, 0)), out
    )


def test_random_sampler_draws_distinct_images_of_every_modality():
    ids = [np.repeat(np.arange(5), 2), np.repeat(np.arange(5), 3)]
    index = sampler.index_identities(ids)
    labels, modality, positions = sampler.sample_random_batch(index, 25, seed=0, step=3)
    assert len(set(zip(modality.tolist(), positions.tolist()))) == 25  # All 10 + 15 images.
    for lab, m, pos in zip(labels, modality, positions):
        assert ids[m][pos] == index.labels[lab]
    with pytest.raises(ValueError, match="exceeds the 25 training images"):
        sampler.sample_random_batch(index, 26, seed=0, step=0)


# --- random erasing and channel augmentation (CAJ, Ye et al. 2021 ICCV) ---------------------


def _rgb_ir_batches(seed=5, steps=2, pad_crop=2, **augment):
    sets = [image_set("rgb", range(6), 4, 3), image_set("infrared", range(6), 4, 1)]
    sets = [
        ImageSet(**{**s.__dict__, "images": np.repeat(np.repeat(s.images, 4, 1), 4, 2)})
        for s in sets
    ]  # 32 x 16 images
    norms = [preprocessing.fit_normalization(s.images, "shared", "dataset") for s in sets]
    index = sampler.index_identities([s.person_ids for s in sets])
    kw = dict(num_identities=3, images_per_identity=4, layout="shared", num_steps=steps)
    kw.update(random_flip=True, pad_crop=pad_crop, start_step=0, seed=seed)
    return list(pipeline.train_batches(sets, norms, index, **kw, **augment))


def test_channel_augmentation_keeps_shape_dtype_range_and_is_reproducible():
    plain = _rgb_ir_batches()
    augment = dict(random_erasing=0.5, channel_erasing=0.5, channel_exchange=0.4, random_gray=0.3)
    batches = _rgb_ir_batches(**augment)
    for a, b in zip(plain, batches):
        assert b["image"].shape == a["image"].shape and b["image"].dtype == np.float32
        np.testing.assert_array_equal(a["label"], b["label"])
        # Every value is an input value of its pixel, a convex combination of them, or 0.
        low = np.minimum(a["image"].min(axis=3, keepdims=True), 0)
        high = np.maximum(a["image"].max(axis=3, keepdims=True), 0)
        assert np.all(b["image"] >= low - 1e-6) and np.all(b["image"] <= high + 1e-6)
        assert not np.array_equal(a["image"], b["image"])
    again = _rgb_ir_batches(**augment)
    other = _rgb_ir_batches(seed=6, **augment)
    for b, c in zip(batches, again):
        np.testing.assert_array_equal(b["image"], c["image"])
    assert not np.array_equal(batches[0]["image"], other[0]["image"])
    # All probabilities 0 is the pipeline without them.
    zero = _rgb_ir_batches(
        random_erasing=0.0, channel_erasing=0.0, channel_exchange=0.0, random_gray=0.0
    )
    np.testing.assert_array_equal(zero[0]["image"], plain[0]["image"])


def test_channel_exchange_and_gray_replace_every_channel():
    plain = _rgb_ir_batches()[0]
    exchanged = _rgb_ir_batches(channel_exchange=1.0)[0]
    gray = _rgb_ir_batches(random_gray=1.0)[0]
    luma = plain["image"] @ np.array([0.299, 0.587, 0.114], np.float32)  # BT.601
    for i in range(len(plain["image"])):
        x, e = plain["image"][i], exchanged["image"][i]
        # One of the input's channels, in all three.
        assert any(np.array_equal(e, np.repeat(x[..., c : c + 1], 3, 2)) for c in range(3))
        np.testing.assert_allclose(gray["image"][i], np.repeat(luma[i][..., None], 3, 2), atol=1e-5)
    # Only the modalities named get the channel operations.
    only_ir = _rgb_ir_batches(channel_exchange=1.0, channel_modalities=("infrared",))[0]
    rgb = only_ir["modality"] == 0
    np.testing.assert_array_equal(only_ir["image"][rgb], plain["image"][rgb])


def test_random_erasing_zeroes_one_rectangle_of_the_published_size():
    # No padding: then no input pixel is exactly 0 and the erased pixels are the zeros.
    batches = _rgb_ir_batches(pad_crop=0, random_erasing=1.0)
    plain = _rgb_ir_batches(pad_crop=0)[0]["image"]
    erased = batches[0]["image"]
    height, width = plain.shape[1:3]
    assert not np.any(plain == 0)
    # The rectangles are drawn anew for every step and seed (stateless keys of both).
    boxes = lambda batch: np.all(batch["image"] == 0, axis=3)  # noqa: E731
    other_seed = _rgb_ir_batches(seed=6, steps=1, pad_crop=0, random_erasing=1.0)[0]
    assert not np.array_equal(boxes(batches[0]), boxes(batches[1]))
    assert not np.array_equal(boxes(batches[0]), boxes(other_seed))
    for x, e in zip(plain, erased):
        box = np.all(e == 0, axis=2)
        np.testing.assert_array_equal(e[~box], x[~box])  # nothing else changed
        ys, xs = np.nonzero(box)
        h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        assert box.sum() == h * w  # one filled rectangle
        # Zhong et al. 2020 Alg. 1: area 0.02..0.4 of the image, aspect ratio 0.3..1/0.3;
        # h and w are rounded (half a pixel each) and clipped to at most H-1, W-1.
        assert h < height and w < width
        assert (h - 0.5) * (w - 0.5) <= 0.4 * height * width
        if h < height - 1 and w < width - 1:
            assert (h + 0.5) * (w + 0.5) >= 0.02 * height * width
            assert 0.3 * (w - 0.5) <= h + 0.5 and h - 0.5 <= (w + 0.5) / 0.3
    with pytest.raises(ValueError, match="channel_exchange"):
        _rgb_ir_batches(channel_exchange=0.7, random_gray=0.5)


def test_eval_batches_give_a_later_process_an_all_padding_share():
    """5 depth images, global batch 8 over 2 processes: process 1's share of the only batch
    (rows 4..7) holds one image and then nothing; with 4 images it holds none (and depth
    centring of an empty share must not fail)."""
    from jaxreid.data.eval_batches import eval_batches
    from jaxreid.data.image_set import ImageSet

    for n, expected in ((5, 1), (4, 0)):
        depth = ImageSet(
            modality="depth",
            images=np.full((n, 4, 2, 1), 1000, np.uint16),
            person_ids=np.arange(n, dtype=np.int32),
            camera_ids=np.ones(n, np.int32),
            frame_ids=np.asarray([""] * n, object),
            file_index=np.ones(n, np.int32),
            filenames=np.asarray([f"{i}.png" for i in range(n)], object),
        )
        norm = preprocessing.Normalization(65535.0, (0.0,) * 3, (1.0,) * 3, center=True)
        (batch,) = eval_batches(
            depth, norm, layout="shared", slot=0, global_batch=8, process_index=1, process_count=2
        )
        assert batch["image"].shape == (4, 4, 2, 3) and batch["mask"].sum() == expected
