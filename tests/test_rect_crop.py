"""The thesis author's RandomSizedRectCrop (jaxreid.data.rect_crop) against a port of his code.

The reference below is open-reid/reid/utils/data/transforms.py lines 22-49 of
frhf/cross-modal-distillation-reidentification line by line, with PIL's crop and BILINEAR
resize, and its `random` replaced by one that hands out injected draws: the same uniforms then
drive both, and every branch (first attempt fits, a later attempt fits, no attempt fits: the
RectScale fallback) is checked.
"""

import math

import numpy as np
import pytest
from PIL import Image

from jaxreid.data import pipeline, preprocessing, rect_crop, sampler
from jaxreid.data.image_set import ImageSet

HEIGHT, WIDTH = 32, 16  # The test suite's image size (the grids use 256 x 128).


class InjectedRandom:
    """`random.uniform` / `random.randint` reading one image's draws [ATTEMPTS, 4] in order:
    per attempt the area and aspect uniforms, then (on a fit) x1 and y1."""

    def __init__(self, draws):
        self.draws, self.attempt = draws, 0

    def uniform(self, a, b):
        column = 0 if a == 0.64 else 1
        return a + (b - a) * float(self.draws[self.attempt, column])

    def randint(self, a, b, column):
        return a + math.floor(float(self.draws[self.attempt, column]) * (b - a + 1))


def authors_crop(image: np.ndarray, draws: np.ndarray):
    """transforms.py RandomSizedRectCrop.__call__ on a float [H, W, C] image -> (image, branch,
    box (y1, x1, h, w) or None). PIL's size is (width, height)."""
    random = InjectedRandom(draws)
    channels = [Image.fromarray(image[..., c].astype(np.float32), mode="F") for c in range(3)]
    size = channels[0].size
    for attempt in range(10):
        random.attempt = attempt
        area = size[0] * size[1]
        target_area = random.uniform(0.64, 1.0) * area
        aspect_ratio = random.uniform(2, 3)
        h = int(round(math.sqrt(target_area * aspect_ratio)))
        w = int(round(math.sqrt(target_area / aspect_ratio)))
        if w <= size[0] and h <= size[1]:
            x1 = random.randint(0, size[0] - w, column=2)
            y1 = random.randint(0, size[1] - h, column=3)
            out = [
                c.crop((x1, y1, x1 + w, y1 + h)).resize((WIDTH, HEIGHT), Image.BILINEAR)
                for c in channels
            ]
            branch = "first" if attempt == 0 else "later"
            return np.stack([np.asarray(c) for c in out], -1), branch, (y1, x1, h, w)
    # Fallback: RectScale(height, width) of an image of that size returns it unchanged.
    out = [c if c.size == (WIDTH, HEIGHT) else c.resize((WIDTH, HEIGHT)) for c in channels]
    return np.stack([np.asarray(c) for c in out], -1), "fallback", None


def draws_with_every_branch(n: int, seed: int = 0) -> np.ndarray:
    """[n, 10, 4] uniforms; image 0 fits at once, image 1 after 3 misses, image 2 never."""
    rng = np.random.default_rng(seed)
    draws = rng.uniform(size=(n, 10, 4))
    # At 32 x 16: area 0.64 x 512, aspect 2 -> h = round(25.6) = 26, w = round(12.8) = 13
    # fits; x1 = floor(0.999 x 4) = 3, y1 = floor(0.5 x 7) = 3.
    draws[0, 0] = (0.0, 0.0, 0.999, 0.5)
    # Area 0.99 x 512 and aspect 2.99: h = round(38.9) = 39 > 32 misses.
    draws[1, :3, :2] = (0.99, 0.99)
    draws[1, 3] = (0.5, 0.1, 0.2, 0.7)  # h = round(sqrt(419.84 x 2.1)) = 30 fits.
    draws[2, :, :2] = (0.99, 0.99)  # No attempt fits: the fallback.
    return draws


def test_crop_is_the_authors_transform_on_injected_draws():
    rng = np.random.default_rng(1)
    images = rng.normal(size=(9, HEIGHT, WIDTH, 3)).astype(np.float32)
    draws = draws_with_every_branch(len(images))
    got = np.asarray(rect_crop.crop(images, draws))
    y1, x1, h, w = (np.asarray(v) for v in rect_crop.boxes(draws, HEIGHT, WIDTH))
    branches = []
    for i, image in enumerate(images):
        want, branch, box = authors_crop(image, draws[i])
        branches.append(branch)
        if box is not None:
            assert (y1[i], x1[i], h[i], w[i]) == box, i
        else:
            assert (y1[i], x1[i], h[i], w[i]) == (0, 0, HEIGHT, WIDTH), i
        # Float32 bilinear weights: PIL mixes in double, jaxreid in float32 (values ~N(0, 1)).
        np.testing.assert_allclose(got[i], want, atol=2e-5, err_msg=f"image {i} ({branch})")
    assert branches[:3] == ["first", "later", "fallback"]
    assert (y1[0], x1[0], h[0], w[0]) == (3, 3, 26, 13)  # worked out by hand above
    np.testing.assert_array_equal(got[2], images[2])  # the fallback keeps the image


def test_box_ranges_follow_the_published_constants():
    """Over many draws every box lies in the image, has 64-100 % of its area (up to the
    rounding of h and w) and height / width in [2, 3] (up to the same rounding)."""
    draws = np.random.default_rng(2).uniform(size=(4000, 10, 4))
    y1, x1, h, w = (np.asarray(v) for v in rect_crop.boxes(draws, 256, 128))
    assert (y1 >= 0).all() and (x1 >= 0).all()
    assert (y1 + h <= 256).all() and (x1 + w <= 128).all()
    cropped = (h != 256) | (w != 128)
    area = h * w / (256 * 128)
    assert area[cropped].min() > 0.62 and area.max() <= 1.0
    aspect = h[cropped] / w[cropped]
    assert aspect.min() > 1.95 and aspect.max() < 3.05
    # At 256 x 128 an attempt fits about half the time: 10 misses are rare (0.5 ** 10).
    assert cropped.mean() > 0.99


def _image_set(n_ids=4, per_id=2):
    rng = np.random.default_rng(3)
    n = n_ids * per_id
    return ImageSet(
        modality="rgb",
        images=rng.integers(0, 255, size=(n, HEIGHT, WIDTH, 3)).astype(np.uint8),
        person_ids=np.repeat(np.arange(n_ids), per_id).astype(np.int32),
        camera_ids=np.ones(n, np.int32),
        frame_ids=np.array([str(i) for i in range(n)], object),
        file_index=np.arange(n, dtype=np.int32) + 1,
        filenames=np.array([""] * n, object),
    )


@pytest.mark.parametrize("process_count", [1, 2])
def test_pipeline_crops_every_image_with_its_own_key(process_count):
    images = _image_set()
    norm = preprocessing.Normalization(255.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    index = sampler.index_identities([images.person_ids])
    kw = dict(
        num_identities=4,
        images_per_identity=2,
        layout="shared",
        seed=7,
        start_step=0,
        num_steps=2,
        pad_crop=0,
        random_flip=False,
    )
    plain = list(pipeline.train_batches([images], [norm], index, **kw))
    shares = [
        list(
            pipeline.train_batches(
                [images],
                [norm],
                index,
                random_sized_rect_crop=True,
                process_index=p,
                process_count=process_count,
                **kw,
            )
        )
        for p in range(process_count)
    ]
    import tensorflow as tf

    for step, batch in enumerate(plain):
        cropped = np.concatenate([share[step]["image"] for share in shares])
        # The pipeline's crop key: (seed, step) folded with 2; draws for the global batch.
        key = tf.random.experimental.stateless_fold_in(tf.constant([7, step], tf.int64), 2)
        draws = np.asarray(rect_crop.draw(key, (0, 8, 8)))
        for i, image in enumerate(batch["image"]):
            want, _, _ = authors_crop(image, draws[i])
            np.testing.assert_allclose(cropped[i], want, atol=1e-5)  # float32 weights
        assert not np.allclose(cropped, batch["image"])  # the crop changed the batch


def test_the_config_key_is_off_by_default_and_checked():
    import ml_collections

    from jaxreid.config import ConfigError, default_config, validate

    values = default_config().to_dict()
    assert values["data"]["augment"]["random_sized_rect_crop"] is False
    values["data"]["augment"]["random_sized_rect_crop"] = 1  # e.g. a hand-edited run.json
    with pytest.raises(ConfigError, match=r"random_sized_rect_crop=1: expected True or False"):
        validate(ml_collections.ConfigDict(values), num_devices=1)
