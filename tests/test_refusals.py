"""Combinations that cannot train or evaluate are refused before any work (issue #24).

Each refusal is checked against an independent reference: PyTorch's own BatchNorm for the
one-value-per-channel rule, the shapes of the built network for the layer it names, the
training pipeline's own check for channel augmentation. No data are loaded here (see
tests/test_dataset_errors.py).
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxreid import config as config_lib
from jaxreid import models
from jaxreid.config import ConfigError, combinations
from jaxreid.data.image_set import ImageSet
from jaxreid.models.resnet import BatchNorm


def config_with(overrides):
    config = config_lib.default_config()
    config_lib.apply_overrides(config, overrides)
    return config


def refusal(overrides) -> str:
    with pytest.raises(ConfigError) as e:
        config_lib.validate(config_with(overrides))
    return str(e.value)


# --- a BatchNorm that would see one value per channel --------------------------------------

ONE_IMAGE = ["data.modalities=rgb", "batch.num_identities=1", "batch.images_per_identity=1"]


@pytest.mark.parametrize(
    "overrides, layer",
    [
        # 32x16 -> layer4 is 1x1 (32 / 32, 16 / 32 rounded up): every BN there sees 1 value.
        (ONE_IMAGE + ["data.image_size=(32, 16)", "model.head=bnneck"], "'layer4'"),
        # 256x128 -> layer4 is 8x4; only the head's 1-D BatchNorm sees a single value.
        (ONE_IMAGE + ["model.head=bnneck"], "'bnneck_bn'"),
        (ONE_IMAGE + ["model.head=linear", "model.embedding_size=16"], "'embedding_bn'"),
        # Two streams specific up to layer3 at 16x16: layer3 is 1x1 and sees the one image
        # of its modality, though the batch has two.
        (
            [
                "data.modalities=rgb,depth",
                "batch.num_identities=1",
                "batch.images_per_identity=2",
                "data.image_size=(16, 16)",
                "model.shared_from=layer4",
                "model.head=bnneck",
            ],
            "'layer3'",
        ),
    ],
    ids=["layer4_at_32x16", "bnneck_bn", "embedding_bn", "stream_layer3"],
)
def test_batch_of_one_value_per_channel_is_refused_naming_the_layer(overrides, layer):
    message = refusal(overrides)
    for text in ("config.batch.num_identities=1", "config.batch.images_per_identity=", layer):
        assert text in message, f"{text!r} not in {message!r}"
    assert "1 value per channel" in message and "Fix:" in message


@pytest.mark.parametrize(
    "overrides",
    [
        # One image, but 8x4 positions at layer4 and no head BatchNorm: torch accepts it.
        ONE_IMAGE + ["model.head=linear", "model.embedding_size=0", "loss.name=softmax"],
        [
            "data.modalities=rgb",
            "batch.num_identities=2",
            "batch.images_per_identity=1",
            "data.image_size=(32, 16)",
            "model.head=bnneck",
        ],
        # The refused stream case with P=2: two images per stream.
        [
            "data.modalities=rgb,depth",
            "batch.num_identities=2",
            "batch.images_per_identity=2",
            "data.image_size=(16, 16)",
            "model.shared_from=layer4",
            "model.head=bnneck",
        ],
        # The conventional baseline trains no BatchNorm.
        ONE_IMAGE + ["method=classical", "data.image_size=(32, 16)"],
    ],
    ids=["one_image_8x4_no_head_bn", "two_images", "two_per_stream", "classical"],
)
def test_batches_with_two_values_per_channel_pass(overrides):
    config_lib.validate(config_with(overrides))


@pytest.mark.parametrize(
    "overrides",
    [
        ["data.image_size=(32, 16)", "model.head=bnneck"],
        ["data.image_size=(37, 23)", "model.last_stride=1", "model.embedding_size=8"],
        ["data.image_size=(64, 48)", "model.backbone=resnet50", "model.non_local=(0,1,1,0)"],
        [
            "data.image_size=(16, 16)",
            "data.modalities=rgb,depth",
            "model.shared_from=layer3",
            "model.head=bnneck",
        ],
    ],
)
def test_batch_norm_positions_are_those_of_the_built_network(overrides):
    """combinations.batch_norm_values computes each BatchNorm's H x W from the strides; the
    reference is the output shape of every BatchNorm of the network itself (jax.eval_shape
    with captured intermediates), grouped as the rule names them."""
    config = config_with(overrides + ["model.width=4"])
    model = models.model_from_config(config, num_classes=3)
    height, width = config.data.image_size
    kwargs = {"modality": jnp.zeros((2,), jnp.int32)} if config.model.shared_from else {}
    x = jnp.zeros((2, height, width, 3))

    def bn_outputs():
        variables = model.init(jax.random.key(0), x, False, **kwargs)
        _, state = model.apply(
            variables,
            x,
            False,
            **kwargs,
            mutable=["intermediates"],
            capture_intermediates=lambda module, _: isinstance(module, BatchNorm),
        )
        return state["intermediates"]

    found = {}
    flat = jax.tree_util.tree_flatten_with_path(jax.eval_shape(bn_outputs))[0]
    for path, shape in flat:
        names = [str(getattr(k, "key", k)) for k in path]
        positions = int(np.prod(shape.shape[1:-1]))  # [N, (H, W,) C] -> H x W (1 for [N, C])
        layer = "bn1"  # the stem's, conv1 -> bn1
        for name in names:
            stage = re.search(r"(?:layer|non_local)(\d)_\d+$", name)  # blocks of stage i
            if stage:
                layer = f"layer{stage.group(1)}"
            elif name in ("bnneck_bn", "embedding_bn"):
                layer = name
        found[layer] = min(found.get(layer, positions), positions)
    got = {layer: positions for layer, _, positions in combinations.batch_norm_values(config)}
    assert got == found


# --- the BatchNorm itself --------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 4), (1, 1, 1, 4), (2, 4), (1, 2, 1, 4)])
def test_batch_norm_refuses_one_value_per_channel_as_torch_does(shape):
    """Reference: torch.nn.BatchNorm1d / 2d in training mode raises ValueError ("Expected more
    than 1 value per channel when training") exactly when N x H x W == 1; where it accepts the
    batch, ours gives its output and running statistics."""
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    torch_bn = (torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d)(4).train()
    x_torch = torch.from_numpy(x if len(shape) == 2 else x.transpose(0, 3, 1, 2))
    try:
        y_torch = torch_bn(x_torch).detach().numpy()
        torch_refuses = False
    except ValueError:
        torch_refuses = True

    bn = BatchNorm()
    variables = bn.init(jax.random.key(0), jnp.zeros(shape), False)
    if torch_refuses:
        with pytest.raises(ValueError, match=r"1 value per channel, expected at least 2"):
            bn.apply(variables, jnp.asarray(x), True, mutable=["batch_stats"])
        # At trace time: no array is computed (the shapes alone decide).
        with pytest.raises(ValueError, match=r"1 value per channel"):
            jax.eval_shape(
                lambda v, x: bn.apply(v, x, True, mutable=["batch_stats"]),
                variables,
                jax.ShapeDtypeStruct(shape, jnp.float32),
            )
        return
    y, updates = bn.apply(variables, jnp.asarray(x), True, mutable=["batch_stats"])
    if len(shape) == 4:
        y_torch = y_torch.transpose(0, 2, 3, 1)
    # float32 mean / variance over 2 values: a few ulp of difference in summation order.
    np.testing.assert_allclose(np.asarray(y), y_torch, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(updates["batch_stats"]["var"]), torch_bn.running_var.numpy(), rtol=1e-5
    )


def test_masked_batch_norm_refuses_a_batch_of_one_row():
    """With a mask (a modality-specific layer) the static bound is every row: one row of one
    position is refused at trace time; the per-stream count is `validate`'s job."""
    bn = BatchNorm()
    variables = bn.init(jax.random.key(0), jnp.zeros((1, 4)), False)
    with pytest.raises(ValueError, match=r"shape \(1, 4\)"):
        bn.apply(variables, jnp.ones((1, 4)), True, jnp.ones((1,), bool), mutable=["batch_stats"])
    bn.apply(variables, jnp.ones((2, 4)), True, jnp.ones((2,), bool), mutable=["batch_stats"])


def test_network_with_one_image_raises_where_validate_refuses():
    """The network traced in training mode on the refused batch raises in layer4 (the first
    BatchNorm with one value per channel), the layer validate names."""
    config = config_with(ONE_IMAGE + ["data.image_size=(32, 16)", "model.width=4"])
    model = models.model_from_config(config, num_classes=3)
    variables = jax.eval_shape(
        lambda: model.init(jax.random.key(0), jnp.zeros((2, 32, 16, 3)), False)
    )
    with pytest.raises(ValueError, match=r"layer4_0/bn1.*1 value per channel"):
        jax.eval_shape(
            lambda v, x: model.apply(
                v, x, True, mutable=["batch_stats"], rngs={"dropout": jax.random.key(1)}
            ),
            variables,
            jax.ShapeDtypeStruct((1, 32, 16, 3), jnp.float32),
        )


# --- combinations that cannot run ------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (
            # The one protocol rule (evaluation.experiment.PROTOCOL_MODALITIES) for every
            # method: LLCM needs rgb and infrared.
            ["method=classical", "data.modalities=rgb,depth", "eval.test_protocol=llcm"],
            ["config.eval.test_protocol='llcm'", "('rgb', 'infrared')", "('rgb', 'depth')"],
        ),
        (
            ["data.augment.channel_exchange=0.5", "data.input_layout=gray"],
            [
                "config.data.augment.channel_exchange=0.5",
                "config.data.input_layout='gray'",
                "gives 1",
            ],
        ),
        (
            [
                "data.augment.random_gray=0.2",
                "data.augment.channel_erasing=0.5",
                "data.input_layout=zero_pad2",
            ],
            [
                "config.data.augment.channel_erasing=0.5",
                "config.data.augment.random_gray=0.2",
                "config.data.input_layout='zero_pad2'",
                "gives 2",
            ],
        ),
    ],
    ids=[
        "classical_llcm_without_infrared",
        "exchange_gray",
        "gray_erasing_zero_pad2",
    ],
)
def test_combinations_that_cannot_run_are_refused(overrides, expected):
    message = refusal(overrides)
    for text in expected:
        assert text in message, f"{text!r} not in {message!r}"


@pytest.mark.parametrize(
    "overrides",
    [
        ["method=classical", "eval.test_protocol=pairs"],
        # The conventional baseline tests through the networks' dispatch: every protocol.
        ["method=classical", "data.modalities=rgb,infrared", "eval.test_protocol=llcm"],
        [
            "method=classical",
            "data.modalities=rgb",
            "batch.images_per_identity=4",
            "eval.test_protocol=market",
            "data.query_split=query",
        ],
        ["data.augment.channel_exchange=0.5", "data.input_layout=shared"],
        ["data.augment.channel_exchange=0.5", "data.input_layout=zero_pad"],  # 3 channels
        ["data.augment.random_erasing=0.5", "data.input_layout=gray"],  # any channel count
    ],
)
def test_combinations_that_run_pass(overrides):
    config_lib.validate(config_with(overrides))


def test_channel_augmentation_refusal_is_the_pipelines():
    """Reference: the training pipeline, which refuses channel operations on the layouts it
    cannot apply them to (after the data are loaded, hence validate's rule)."""
    from jaxreid.data import pipeline, preprocessing, sampler

    images = np.zeros((4, 8, 4, 3), np.uint8)
    sets = [
        _image_set("rgb", images, [1, 1, 2, 2]),
        _image_set("depth", images[..., :1], [1, 1, 2, 2]),
    ]
    index = sampler.index_identities([s.person_ids for s in sets])
    for layout in preprocessing.INPUT_LAYOUTS:
        config = config_with(["data.augment.channel_exchange=0.5", f"data.input_layout={layout}"])
        refused = bool(list(combinations._channel_augmentation_layout(config)))
        norms = [preprocessing.fit_normalization(s.images, layout, "dataset") for s in sets]
        try:
            batches = pipeline.train_batches(
                sets,
                norms,
                index,
                num_identities=2,
                images_per_identity=2,
                layout=layout,
                seed=0,
                start_step=0,
                num_steps=1,
                channel_exchange=0.5,
            )
            next(iter(batches))
            pipeline_refuses = False
        except ValueError as e:
            assert "channel" in str(e), str(e)
            pipeline_refuses = True
        assert refused == pipeline_refuses, layout


# --- a batch larger than the data ------------------------------------------------------------


def _image_set(modality, images, person_ids):
    n = len(person_ids)
    return ImageSet(
        modality=modality,
        images=images[:n],
        person_ids=np.asarray(person_ids, np.int32),
        camera_ids=np.ones(n, np.int32),
        frame_ids=np.array([""] * n, dtype=object),
        file_index=np.arange(1, n + 1, dtype=np.int32),
        filenames=np.array([f"{i}.png" for i in range(n)], dtype=object),
    )


def _splits(ids_rgb, ids_depth):
    images = np.zeros((len(ids_rgb) + len(ids_depth), 4, 4, 3), np.uint8)
    return {
        "train": {
            "rgb": _image_set("rgb", images, ids_rgb),
            "depth": _image_set("depth", images, ids_depth),
        }
    }


def test_batch_larger_than_the_training_identities_is_refused():
    from jaxreid.training import preflight

    # Identity 3 is only in RGB: two identities are in both modalities.
    splits = _splits([1, 1, 2, 2, 3], [1, 2, 2])
    config = config_with(["data.modalities=rgb,depth", "batch.num_identities=3"])
    with pytest.raises(ConfigError) as e:
        preflight.check_data(config, splits)
    for text in (
        "config.batch.num_identities=3",
        "exceeds the 2 training identities",
        "--config.batch.num_identities=2",
    ):
        assert text in str(e.value), str(e.value)
    config.batch.num_identities = 2
    preflight.check_data(config, splits)
    # The random sampler draws P x K distinct images: 2 x 4 = 8 > the 8 images? No: 8 = 8.
    config.batch.sampler = "random"
    config.batch.images_per_identity = 4
    preflight.check_data(config, _splits([1, 1, 2, 2, 3], [1, 2, 2]))  # 8 images, batch 8
    config.batch.images_per_identity = 6
    with pytest.raises(ConfigError, match=r"= 12 images per step .* exceed the 8 training images"):
        preflight.check_data(config, splits)
