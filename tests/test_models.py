"""Tests for jaxreid.models: ResNet topology, ReIDNet head, registry."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxreid.models import (
    BACKBONES,
    BatchNorm,
    ReIDNet,
    ResNet18,
    ResNet34,
    ResNet50,
    create_model,
)


def _abstract_variables(model, shape=(1, 64, 32, 3)):
    return jax.eval_shape(
        lambda: model.init(jax.random.key(0), jnp.zeros(shape, jnp.float32), train=False)
    )


def _num_params(tree):
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


@pytest.mark.parametrize(
    "backbone, expected",
    [
        # torchvision resnet18/34/50 totals (11,689,512 / 21,797,672 / 25,557,032) minus
        # their ImageNet fc layer (512*1000+1000 / 512*1000+1000 / 2048*1000+1000).
        (ResNet18, 11_176_512),
        (ResNet34, 21_284_672),
        (ResNet50, 23_508_032),
    ],
)
def test_backbone_param_count_matches_torchvision(backbone, expected):
    variables = _abstract_variables(backbone())
    assert _num_params(variables["params"]) == expected


def test_param_names_mirror_torchvision():
    params = _abstract_variables(ResNet50())["params"]
    assert params["conv1"]["kernel"].shape == (7, 7, 3, 64)
    assert set(params["bn1"]) == {"scale", "bias"}
    block = params["layer1_0"]
    assert set(block) == {
        "conv1",
        "bn1",
        "conv2",
        "bn2",
        "conv3",
        "bn3",
        "downsample_conv",
        "downsample_bn",
    }
    # Stride is on the 3x3 conv (torchvision v1.5); layer2_0 changes shape -> downsample.
    assert params["layer2_0"]["conv2"]["kernel"].shape == (3, 3, 128, 128)
    assert params["layer2_0"]["downsample_conv"]["kernel"].shape == (1, 1, 256, 512)
    assert "downsample_conv" not in params["layer2_1"]
    assert sorted(k for k in params if k.startswith("layer4")) == [
        "layer4_0",
        "layer4_1",
        "layer4_2",
    ]
    # ResNet18's first block keeps 64 channels at stride 1: no downsample.
    params18 = _abstract_variables(ResNet18())["params"]
    assert set(params18["layer1_0"]) == {"conv1", "bn1", "conv2", "bn2"}
    assert "downsample_bn" in params18["layer2_0"]


def test_batch_stats_names():
    stats = _abstract_variables(ResNet18(num_filters=8))["batch_stats"]
    assert set(stats["bn1"]) == {"mean", "var"}
    assert set(stats["layer3_0"]["downsample_bn"]) == {"mean", "var"}


@pytest.fixture(scope="module")
def small_model_and_variables():
    # 1-channel input (depth / infrared), reduced width 8, 32x16 images.
    model = create_model("resnet18", num_classes=5, embedding_size=16, width=8)
    variables = model.init(jax.random.key(0), jnp.zeros((2, 32, 16, 1)), train=False)
    return model, variables


def test_output_and_intermediate_shapes(small_model_and_variables):
    model, variables = small_model_and_variables
    x = jax.random.normal(jax.random.key(1), (3, 32, 16, 1))
    embedding, inter = model.apply(variables, x, train=False)
    # Sizes from torch's formula floor((H + 2p - k) / s) + 1: 32x16 -> conv1 16x8 ->
    # maxpool 8x4 -> layer2 4x2 -> layer3 2x1 -> layer4 1x1.
    expected = {
        "stem": (3, 8, 4, 8),
        "layer1": (3, 8, 4, 8),
        "layer2": (3, 4, 2, 16),
        "layer3": (3, 2, 1, 32),
        "layer4": (3, 1, 1, 64),
        "pooled": (3, 64),
        "embedding": (3, 16),
        "logits": (3, 5),
    }
    assert {k: v.shape for k, v in inter.items()} == expected
    assert embedding.shape == (3, 16) and embedding.dtype == jnp.float32
    np.testing.assert_array_equal(embedding, inter["embedding"])
    assert variables["params"]["backbone"]["conv1"]["kernel"].shape == (7, 7, 1, 8)
    # Embedding is ReLU'd (author's code: Linear -> BatchNorm1d -> ReLU).
    assert np.all(np.asarray(embedding) >= 0)
    # pooled is the spatial mean of layer4.
    np.testing.assert_allclose(
        inter["pooled"], np.asarray(inter["layer4"]).mean(axis=(1, 2)), rtol=1e-6, atol=1e-6
    )


def test_eval_logits_are_classifier_of_embedding(small_model_and_variables):
    model, variables = small_model_and_variables
    x = jax.random.normal(jax.random.key(2), (2, 32, 16, 1))
    _, inter = model.apply(variables, x, train=False)
    classifier = variables["params"]["classifier"]
    expected = np.asarray(inter["embedding"]) @ np.asarray(classifier["kernel"]) + np.asarray(
        classifier["bias"]
    )
    # A 64-term float32 dot product summed in another order than NumPy's: ~1e-6.
    np.testing.assert_allclose(inter["logits"], expected, rtol=1e-5, atol=1e-6)


def test_dropout_only_in_train(small_model_and_variables):
    model, variables = small_model_and_variables
    x = jax.random.normal(jax.random.key(3), (4, 32, 16, 1))

    def run(train, key):
        (emb, inter), _ = model.apply(
            variables, x, train=train, mutable=["batch_stats"], rngs={"dropout": key}
        )
        return np.asarray(emb), np.asarray(inter["logits"])

    emb_a, logits_a = run(True, jax.random.key(10))
    emb_b, logits_b = run(True, jax.random.key(11))
    assert not np.allclose(logits_a, logits_b)  # different dropout masks
    np.testing.assert_array_equal(emb_a, emb_b)  # embedding is taken before dropout
    # Half the embedding units dropped => logits differ from the no-dropout logits.
    classifier = variables["params"]["classifier"]
    no_dropout = emb_a @ np.asarray(classifier["kernel"]) + np.asarray(classifier["bias"])
    assert not np.allclose(logits_a, no_dropout)

    _, eval_a = run(False, jax.random.key(10))
    _, eval_b = run(False, jax.random.key(11))
    np.testing.assert_array_equal(eval_a, eval_b)

    no_drop_model = model.clone(dropout_rate=0.0)
    (_, inter_0), _ = no_drop_model.apply(
        variables, x, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.key(10)}
    )
    # The same forward pass without dropout vs dropout 0: fusion rounding only (~1e-7).
    np.testing.assert_allclose(inter_0["logits"], no_dropout, rtol=1e-5, atol=1e-6)


def test_batch_stats_update_in_train_only(small_model_and_variables):
    model, variables = small_model_and_variables
    x = jax.random.normal(jax.random.key(4), (4, 32, 16, 1)) + 1.0
    _, updated = model.apply(
        variables, x, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.key(0)}
    )
    before = jax.tree.leaves(variables["batch_stats"])
    after = jax.tree.leaves(updated["batch_stats"])
    assert len(before) == len(after) > 0
    for old, new in zip(before, after):
        # A training step moves every statistic by O(0.1) of its value: far outside allclose.
        assert not np.allclose(old, new)

    _, unchanged = model.apply(variables, x, train=False, mutable=["batch_stats"])
    for old, new in zip(before, jax.tree.leaves(unchanged["batch_stats"])):
        np.testing.assert_array_equal(old, new)


def test_batchnorm_torch_semantics_against_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(4, 3, 5, 6)).astype(np.float32)
    bn = BatchNorm()
    variables = bn.init(jax.random.key(0), x, train=False)
    scale = rng.uniform(0.5, 1.5, 6).astype(np.float32)
    bias = rng.normal(size=6).astype(np.float32)
    variables = {
        "params": {"scale": scale, "bias": bias},
        "batch_stats": {"mean": np.full(6, 0.5, np.float32), "var": np.full(6, 2.0, np.float32)},
    }
    y, updated = bn.apply(variables, x, train=True, mutable=["batch_stats"])

    flat = x.reshape(-1, 6).astype(np.float64)
    mean = flat.mean(0)
    biased = flat.var(0)
    unbiased = flat.var(0, ddof=1)  # torch stores the unbiased variance
    np.testing.assert_allclose(updated["batch_stats"]["mean"], 0.9 * 0.5 + 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(updated["batch_stats"]["var"], 0.9 * 2.0 + 0.1 * unbiased, rtol=1e-5)
    # Normalisation itself uses the biased batch variance (as torch does).
    expected = (x - mean) / np.sqrt(biased + 1e-5) * scale + bias
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)

    # float32 (x - m) / sqrt(v + eps) vs float64: a few roundings of O(1) values (1e-5).
    y_eval = bn.apply(variables, x, train=False)
    expected_eval = (x - 0.5) / np.sqrt(2.0 + 1e-5) * scale + bias
    np.testing.assert_allclose(y_eval, expected_eval, rtol=1e-5, atol=1e-5)


def test_embedding_size_none_uses_logits_as_embedding():
    model = create_model("resnet18", num_classes=7, embedding_size=None, width=8)
    x = jax.random.normal(jax.random.key(5), (2, 32, 16, 3))
    variables = model.init(jax.random.key(0), x, train=False)
    assert "embedding" not in variables["params"]
    embedding, inter = model.apply(variables, x, train=False)
    assert embedding.shape == (2, 7)
    np.testing.assert_array_equal(embedding, inter["logits"])
    classifier = variables["params"]["classifier"]
    assert classifier["kernel"].shape == (64, 7)
    expected = np.asarray(inter["pooled"]) @ np.asarray(classifier["kernel"]) + np.asarray(
        classifier["bias"]
    )
    # A 64-term float32 dot product summed in another order than NumPy's: ~1e-6.
    np.testing.assert_allclose(embedding, expected, rtol=1e-5, atol=1e-6)


def test_no_classifier_for_pure_triplet():
    model = create_model("resnet18", num_classes=0, embedding_size=32, width=8)
    shapes = _abstract_variables(model, (2, 32, 16, 3))
    assert "classifier" not in shapes["params"]
    out = jax.eval_shape(lambda v: model.apply(v, jnp.zeros((2, 32, 16, 3)), train=False), shapes)
    embedding, inter = out
    assert embedding.shape == (2, 32)
    assert "logits" not in inter

    bad = create_model("resnet18", num_classes=0, embedding_size=None, width=8)
    with pytest.raises(ValueError, match="num_classes"):
        _abstract_variables(bad, (2, 32, 16, 3))


def test_head_param_names_and_init():
    model = create_model("resnet50", num_classes=11, embedding_size=128, width=8)
    params = _abstract_variables(model, (2, 32, 16, 3))["params"]
    assert set(params) == {"backbone", "embedding", "embedding_bn", "classifier"}
    assert params["embedding"]["kernel"].shape == (256, 128)
    assert params["classifier"]["kernel"].shape == (128, 11)


def test_registry_and_unknown_name():
    assert set(BACKBONES) == {"resnet18", "resnet34", "resnet50"}
    model = create_model("resnet34", num_classes=3, embedding_size=None, width=8)
    assert isinstance(model, ReIDNet)
    with pytest.raises(ValueError, match="resnet18, resnet34, resnet50"):
        create_model("resnet101", num_classes=3, embedding_size=128)


def test_bfloat16_compute_float32_params():
    model = create_model("resnet18", num_classes=4, embedding_size=16, width=8, dtype=jnp.bfloat16)
    shapes = _abstract_variables(model, (2, 32, 16, 3))
    assert {leaf.dtype for leaf in jax.tree.leaves(shapes)} == {jnp.dtype(jnp.float32)}
    embedding, inter = jax.eval_shape(
        lambda v: model.apply(v, jnp.zeros((2, 32, 16, 3)), train=False), shapes
    )
    assert inter["layer4"].dtype == jnp.bfloat16
    assert embedding.dtype == jnp.float32 and inter["logits"].dtype == jnp.float32


def test_kaiming_init_and_zero_init_residual():
    backbone = functools.partial(ResNet18, num_filters=16, zero_init_residual=True)
    variables = backbone().init(jax.random.key(0), jnp.zeros((1, 32, 16, 3)), train=False)
    params = variables["params"]
    # torchvision: kaiming_normal_(mode='fan_out', nonlinearity='relu'): std = sqrt(2 / fan_out).
    kernel = np.asarray(params["layer2_0"]["conv2"]["kernel"])  # 3x3, 32 -> 32
    np.testing.assert_allclose(kernel.std(), np.sqrt(2.0 / (3 * 3 * 32)), rtol=0.1)
    assert np.all(np.asarray(params["layer1_0"]["bn2"]["scale"]) == 0)
    assert np.all(np.asarray(params["layer1_0"]["bn1"]["scale"]) == 1)
    assert np.all(np.asarray(params["bn1"]["bias"]) == 0)
    default = ResNet18(num_filters=16).init(
        jax.random.key(0), jnp.zeros((1, 32, 16, 3)), train=False
    )
    assert np.all(np.asarray(default["params"]["layer1_0"]["bn2"]["scale"]) == 1)


def _numpy_max_pool_grad(x, g, window, stride, pad):
    """float64 loops: each output gradient to its window's first maximum (row-major), the
    rule of torch's MaxPool2d and XLA's select_and_scatter."""
    x = np.asarray(x, np.float64)
    n, h, w, c = x.shape
    xp = np.full((n, h + 2 * pad, w + 2 * pad, c), -np.inf)
    xp[:, pad : pad + h, pad : pad + w] = x
    out = np.zeros(g.shape)
    dxp = np.zeros_like(xp)
    for b, p, q, ch in np.ndindex(*g.shape):
        win = xp[b, stride * p : stride * p + window, stride * q : stride * q + window, ch]
        i, j = divmod(int(np.argmax(win)), window)  # argmax: the first maximum
        out[b, p, q, ch] = win[i, j]
        dxp[b, stride * p + i, stride * q + j, ch] += g[b, p, q, ch]
    return out, dxp[:, pad : pad + h, pad : pad + w]


@pytest.mark.parametrize("shape", [(2, 9, 7, 3), (1, 8, 6, 2)])
def test_stem_max_pool_value_and_first_max_gradient(shape):
    from jaxreid.models.pooling import max_pool

    rng = np.random.default_rng(0)
    # Small integers: many ties in each window, where the first-maximum rule matters.
    x = rng.integers(0, 3, size=shape).astype(np.float32)
    ho, wo = (shape[1] - 1) // 2 + 1, (shape[2] - 1) // 2 + 1
    g = rng.normal(size=(shape[0], ho, wo, shape[3])).astype(np.float32)
    out, vjp = jax.vjp(lambda v: max_pool(v, 3, 2, 1), jnp.asarray(x))
    want_out, want_dx = _numpy_max_pool_grad(x, g, 3, 2, 1)
    np.testing.assert_array_equal(np.asarray(out), want_out)  # a max is exact
    # An input that is the first maximum of up to 4 windows sums their gradients in another
    # order than the float64 loop: float32 rounding of <= 4 terms.
    np.testing.assert_allclose(np.asarray(vjp(jnp.asarray(g))[0]), want_dx, rtol=1e-6, atol=1e-6)
