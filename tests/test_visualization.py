"""Tests for jaxreid.visualization: guided ReLU rule, guided backprop, ranked lists, maps."""

import struct
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxreid import config as config_lib
from jaxreid import models
from jaxreid.models import BNNeckNet, ReIDNet, ResNet18, ResNet50
from jaxreid.visualization import (
    activation_map,
    guided_backprop,
    guided_relu,
    plot_activation_maps,
    plot_rank_list,
    plot_rank_lists,
    to_display_rgb,
)


def test_guided_relu_rule():
    x = jnp.array([-2.0, -0.5, 0.0, 0.5, 2.0, 3.0])
    g = jnp.array([1.0, 1.0, 1.0, -1.0, 1.0, 0.5])
    y, vjp = jax.vjp(guided_relu, x)
    np.testing.assert_array_equal(y, [0.0, 0.0, 0.0, 0.5, 2.0, 3.0])
    # passes only where the forward input > 0 and the incoming gradient > 0
    np.testing.assert_array_equal(vjp(g)[0], [0.0, 0.0, 0.0, 0.0, 1.0, 0.5])
    # the ordinary ReLU would also pass the negative gradient at x = 0.5
    np.testing.assert_array_equal(jax.vjp(nn.relu, x)[1](g)[0], [0.0, 0.0, 0.0, -1.0, 1.0, 0.5])


class TinyNet(nn.Module):
    """x [N, 2] -> act(W2 act(W1 x)) [N, 2]; weights are given as variables."""

    activation: Callable = nn.relu

    @nn.compact
    def __call__(self, x, train):
        w1 = self.param("w1", nn.initializers.zeros, (3, 2))
        w2 = self.param("w2", nn.initializers.zeros, (2, 3))
        return self.activation(self.activation(x @ w1.T) @ w2.T), {}


def test_guided_backprop_hand_worked_tiny_network():
    # Worked by hand:
    #   x = (1, 2); W1 rows (1, 0), (0, 1), (1, -1)  -> h_pre = (1, 2, -1), h = (1, 2, 0)
    #   W2 rows (1, -1, 2), (-1, 1, 1)              -> z_pre = (-1, 1),    z = (0, 1)
    #   target ||z|| = 1, d/dz = z / ||z|| = (0, 1)
    #   output ReLU (z_pre = (-1, 1)): (0, 1) both rules
    #   d/dh = W2^T (0, 1) = (-1, 1, 1)
    #   hidden ReLU (h_pre = (1, 2, -1)): plain keeps h_pre > 0 -> (-1, 1, 0);
    #                                     guided also needs g > 0 -> (0, 1, 0)
    #   d/dx = W1^T (.): plain (-1, 1), guided (0, 1)
    variables = {
        "params": {
            "w1": jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]]),
            "w2": jnp.array([[1.0, -1.0, 2.0], [-1.0, 1.0, 1.0]]),
        }
    }
    x = np.array([[1.0, 2.0]], np.float32)
    model = TinyNet()
    # Small-integer weights: the gradients are exact in float32 (atol only formal).
    np.testing.assert_allclose(guided_backprop(model, variables, x), [[0.0, 1.0]], atol=1e-6)
    np.testing.assert_allclose(guided_backprop(model, variables, x, target=1), [[0.0, 1.0]])
    # unit 0 is switched off (z_pre = -1): no gradient at all
    np.testing.assert_array_equal(guided_backprop(model, variables, x, target=0), [[0.0, 0.0]])

    def plain_norm(inp):
        z, _ = model.apply(variables, inp, train=False)
        return jnp.linalg.norm(z)

    # float32 gradient of a norm of small-integer activations: exact but for sqrt rounding.
    np.testing.assert_allclose(jax.grad(plain_norm)(jnp.asarray(x)), [[-1.0, 1.0]], atol=1e-6)
    with pytest.raises(ValueError, match="target unit 5 out of range"):
        guided_backprop(model, variables, x, target=5)
    with pytest.raises(TypeError, match="no `activation` field"):
        guided_backprop(nn.Dense(2), {}, x)


def _count_activations(model, shape):
    calls = []

    def counting_relu(x):
        calls.append(x.shape)
        return nn.relu(x)

    jax.eval_shape(
        lambda: model.clone(activation=counting_relu).init(
            jax.random.key(0), jnp.zeros(shape), train=False
        )
    )
    return len(calls)


def test_every_relu_is_replaced():
    # torchvision topology: ResNet18 = stem ReLU + 8 BasicBlocks x 2 ReLUs = 17;
    # ResNet50 = stem + 16 Bottlenecks x 3 = 49; ReIDNet adds the embedding ReLU.
    shape = (1, 32, 16, 3)
    assert _count_activations(ResNet18(num_filters=4), shape) == 17
    assert _count_activations(ResNet50(num_filters=4), shape) == 49
    head = ReIDNet(backbone=ResNet18, num_classes=3, embedding_size=8)
    assert _count_activations(head, shape) == 18
    # The BNNeck head (the main job's) has no ReLU of its own: the backbone's 17.
    assert _count_activations(BNNeckNet(backbone=ResNet18, num_classes=3), shape) == 17


def test_guided_backprop_sends_each_modality_through_its_own_stem():
    """A two-stream AGW network (modality-specific stems, BNNeck head): the map of modality 1
    does not depend on modality 0's stem, and does on its own."""
    config = config_lib.load_config("configs/agw.py:synthetic,quick")
    model = models.model_from_config(config, num_classes=4)
    images = np.random.default_rng(1).normal(size=(2, 32, 16, 3)).astype(np.float32)
    variables = model.init(jax.random.key(0), images, train=False, modality=0)

    def scaled_stem(stream, factor):
        """The variables with stream `stream`'s first convolution scaled by `factor`."""
        params = jax.tree_util.tree_map_with_path(
            lambda path, x: (
                x * factor if f"modality{stream}_conv1" in jax.tree_util.keystr(path) else x
            ),
            variables["params"],
        )
        return {**variables, "params": params}

    def maps(v, modality):
        return guided_backprop(model, v, images, modality=modality)

    own = maps(variables, 1)
    assert np.abs(own).max() > 0
    np.testing.assert_array_equal(maps(scaled_stem(0, 3.0), 1), own)
    # Scaling a stem by 3 changes the maps by O(1) of their values: far outside allclose.
    assert not np.allclose(maps(scaled_stem(1, 3.0), 1), own)
    assert not np.allclose(maps(variables, 0), own)


@pytest.fixture(scope="module")
def tiny_resnet():
    model = ResNet18(num_filters=4)
    rng = np.random.default_rng(0)
    images = rng.normal(size=(2, 32, 16, 3)).astype(np.float32)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 16, 3)), train=False)
    return model, variables, images


def test_guided_model_same_forward_and_guided_gradients(tiny_resnet):
    model, variables, images = tiny_resnet
    guided = model.clone(activation=guided_relu)
    out, inter = model.apply(variables, images, train=False)
    out_g, inter_g = guided.apply(variables, images, train=False)
    np.testing.assert_array_equal(out_g, out)
    np.testing.assert_array_equal(inter_g["layer2"], inter["layer2"])

    grads = guided_backprop(model, variables, images, batch_size=1)
    assert grads.shape == images.shape and grads.dtype == np.float32
    assert np.isfinite(grads).all() and np.abs(grads).max() > 0

    def plain_norm(x):
        pooled, _ = model.apply(variables, x, train=False)
        return jnp.sum(jnp.linalg.norm(pooled, axis=1))

    plain = np.asarray(jax.grad(plain_norm)(jnp.asarray(images)))
    assert np.isfinite(plain).all()
    assert np.abs(grads - plain).max() > 1e-3 * np.abs(plain).max()


def _png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])  # width, height


def _frame_colours(pixels):
    """Counts of clearly green and clearly red pixels in an [h, w, 3] uint8 region."""
    r, g, b = (pixels[..., i].astype(int) for i in range(3))
    green = int(((g > 140) & (r < 70) & (b < 70)).sum())
    red = int(((r > 160) & (g < 60) & (b < 60)).sum())
    return green, red


def _person(rng, depth=False):
    if depth:  # uint16 depth in mm with holes
        img = rng.integers(800, 4000, size=(64, 32, 1)).astype(np.uint16)
        img[:8] = 0
        return img
    grey = rng.integers(60, 200, size=(64, 32, 1)).astype(np.uint8)
    return np.repeat(grey, 3, axis=2)


def test_rank_list_png_frames(tmp_path):
    rng = np.random.default_rng(0)
    query = _person(rng)
    gallery = [_person(rng, depth=j % 2 == 1) for j in range(5)]
    is_match = [True, False, False, True, True]
    path = plot_rank_list(
        query,
        gallery,
        is_match,
        tmp_path / "rank.png",
        k=5,
        gallery_labels=[f"id {j}" for j in range(5)],
        dpi=60,
    )
    # 6 panels of 1 x 2 inches at 60 dpi
    assert _png_size(path) == (360, 120)
    pixels = np.asarray(Image.open(path).convert("RGB"))
    slots = np.array_split(pixels, 6, axis=1)
    green, red = _frame_colours(slots[0])
    assert green == 0 and red == 0  # the query is not framed
    for slot, match in zip(slots[1:], is_match):
        green, red = _frame_colours(slot)
        if match:
            assert green > 100 and red == 0
        else:
            assert red > 100 and green == 0


def test_rank_lists_grid(tmp_path):
    rng = np.random.default_rng(1)
    queries = [_person(rng), _person(rng, depth=True)]
    galleries = [[_person(rng, depth=True) for _ in range(4)], [_person(rng) for _ in range(2)]]
    matches = [[False, True, False, False], [True, False]]
    path = plot_rank_lists(
        queries, galleries, matches, tmp_path / "grid.png", k=3, dpi=50, title="RGB -> depth"
    )
    # 4 columns x 2 rows of 1 x 2 inch panels + 0.4 inch title, at 50 dpi
    assert _png_size(path) == (200, 220)
    pixels = np.asarray(Image.open(path).convert("RGB"))[20:]  # below the title
    rows = np.array_split(pixels, 2, axis=0)
    expected = [["-", "R", "G", "R"], ["-", "G", "R", "-"]]  # row 2 has only 2 images
    for row, want in zip(rows, expected):
        for slot, colour in zip(np.array_split(row, 4, axis=1), want):
            green, red = _frame_colours(slot)
            got = "G" if green > 50 else "R" if red > 50 else "-"
            assert got == colour and min(green, red) == 0
    with pytest.raises(ValueError, match="query 1 has 2 gallery images but 1 match flags"):
        plot_rank_lists(queries, galleries, [matches[0], [True]], tmp_path / "x.png", k=3)


def test_to_display_rgb_depth_holes_and_normalisation():
    depth = np.array([[0, 1000], [2000, 3000]], np.uint16)[..., None]
    rgb = to_display_rgb(depth)  # uint16 -> viridis, per-image normalised
    np.testing.assert_array_equal(rgb[0, 0], [0.0, 0.0, 0.0])  # hole
    # viridis end points: #440154 and #fde725
    # matplotlib's 256-entry viridis table vs its hex end points: within 1/255 < 0.01.
    np.testing.assert_allclose(rgb[0, 1], [0x44 / 255, 0x01 / 255, 0x54 / 255], atol=0.01)
    np.testing.assert_allclose(rgb[1, 1], [0xFD / 255, 0xE7 / 255, 0x25 / 255], atol=0.01)
    grey = to_display_rgb(np.array([[10, 20, 30]], np.uint8), cmap="gray")
    # The gray colormap's 256-entry lookup: 0.5 is 127/255 or 128/255, within 0.01.
    np.testing.assert_allclose(grey[0, :, 0], [0.0, 0.5, 1.0], atol=0.01)
    np.testing.assert_array_equal(to_display_rgb(np.full((2, 2, 3), 255, np.uint8)), 1.0)


def test_activation_map_and_png(tmp_path, tiny_resnet):
    grads = np.zeros((1, 2, 2, 3), np.float32)
    grads[0, 0, 0] = [0.5, -2.0, 1.0]
    grads[0, 1, 1] = [1.0, 0.0, 0.0]
    # Small exact values (max |g| / global max): exact in float32 (default rtol 1e-7).
    np.testing.assert_allclose(activation_map(grads), [[[1.0, 0.0], [0.0, 0.5]]])

    model, variables, images = tiny_resnet
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 255, size=(2, 32, 16, 3)).astype(np.uint8)
    depth = rng.integers(0, 4000, size=(2, 32, 16, 1)).astype(np.uint16)
    rgb_maps = guided_backprop(model, variables, images)
    depth_maps = rng.normal(size=(2, 32, 16, 1)).astype(np.float32)
    path = plot_activation_maps(rgb, depth, rgb_maps, depth_maps, tmp_path / "maps.png", dpi=40)
    assert _png_size(path) == (160, 160)  # 4 columns x 2 rows of 1 x 2 inch panels
    # several networks as adjacent columns (Hafner 2018, Figure 38), depth only
    path = plot_activation_maps(
        None,
        depth,
        None,
        {"single": depth_maps, "cross": -depth_maps},
        tmp_path / "maps3.png",
        dpi=40,
    )
    assert _png_size(path) == (120, 160)
