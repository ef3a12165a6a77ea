"""The visible-infrared components of the AGW baseline (Ye et al. 2021): GeM pooling,
non-local blocks, BNNeck, the partially shared two-stream ResNet, the weighted regularised
triplet loss, cross-modal mining, label smoothing, loss composition, the AGW schedule and the
flip test, each against an independent NumPy / hand-worked reference."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxreid import losses, models, schedules
from jaxreid.models import pretrained
from jaxreid.models.flip import flip_embed
from jaxreid.models.non_local import NonLocal
from jaxreid.models.pooling import GlobalPool, gem

SHAPE = (4, 32, 16, 3)  # tiny images, as every test of this file
Tiny18 = functools.partial(models.ResNet18, num_filters=8)


def _images(seed=0, shape=SHAPE):
    return jax.random.normal(jax.random.key(seed), shape, jnp.float32)


# --- GeM pooling ---------------------------------------------------------------------------


def test_gem_with_exponent_one_is_average_pooling():
    x = np.random.default_rng(0).uniform(0.01, 2.0, size=(3, 5, 4, 6)).astype(np.float32)
    # float32 power / root of a mean of 20 values: a few ulp.
    np.testing.assert_allclose(gem(x, 1.0), x.mean(axis=(1, 2)), rtol=1e-6)
    pooled = GlobalPool("gem", gem_p=1.0).apply({}, x)
    np.testing.assert_allclose(pooled, x.mean(axis=(1, 2)), rtol=1e-6)


def test_gem_approaches_max_pooling_for_large_exponents():
    x = np.random.default_rng(1).uniform(0.1, 1.0, size=(3, 4, 4, 5)).astype(np.float32)
    top = x.max(axis=(1, 2))
    positions = 16
    errors = []
    for p in (4.0, 16.0, 64.0):
        out = np.asarray(gem(x, p), np.float64)
        # (1/P sum x^p)^(1/p) lies in [max * P^(-1/p), max] (one term is max^p, all <= max).
        assert np.all(out <= top * (1 + 1e-5)) and np.all(out >= top * positions ** (-1 / p) - 1e-6)
        errors.append(np.max(top - out))
    assert errors[0] > errors[1] > errors[2]
    # Max is exact; the mean of 16 float32 values is off by at most a few ulp (rtol 1e-6).
    np.testing.assert_allclose(GlobalPool("max").apply({}, x), top)
    np.testing.assert_allclose(GlobalPool("avg").apply({}, x), x.mean(axis=(1, 2)), rtol=1e-6)


def test_gem_value_and_gradient_against_numpy_without_overflow():
    """(mean x^p)^(1/p) and its gradient (1/P) x^(p-1) GeM^(1-p), in float64, for features
    of ordinary size and of size 1e13, whose cube (1e39) overflows float32."""
    rng = np.random.default_rng(3)
    for magnitude in (1.0, 1e13):
        x = (magnitude * rng.uniform(0.1, 2.0, size=(2, 3, 4, 5))).astype(np.float32)
        x64 = x.astype(np.float64)
        want = np.mean(x64**3, axis=(1, 2)) ** (1 / 3)
        got = np.asarray(gem(x, 3.0))
        # float32 cubes, a mean of 12 and a cube root: a few ulp relative.
        np.testing.assert_allclose(got, want, rtol=1e-5)
        grad = np.asarray(jax.grad(lambda v: jnp.sum(gem(v, 3.0)))(x), np.float64)
        # The gradient chains float32 x^2 and a float32 cube root: ~10 ulp, 1e-4 bounds it.
        want_grad = x64**2 / 12 * want[:, None, None, :] ** -2
        np.testing.assert_allclose(grad, want_grad, rtol=1e-4)


def test_learnable_gem_exponent_is_a_parameter_with_a_gradient():
    x = np.random.default_rng(2).uniform(0.0, 1.0, size=(2, 3, 3, 4)).astype(np.float32)
    pool = GlobalPool("gem", gem_p=3.0, gem_learnable=True)
    variables = pool.init(jax.random.key(0), x)
    assert float(variables["params"]["p"]) == 3.0
    grad = jax.grad(lambda v: jnp.sum(pool.apply(v, x)))(variables)["params"]["p"]
    assert np.isfinite(grad) and grad != 0.0


# --- non-local block -----------------------------------------------------------------------


def _non_local_numpy(x, params, stats, eps=1e-5):
    """Wang et al. 2018 §3.2 ("dot product", normalised by the positions), inference BN."""
    n, h, w, c = x.shape
    flat = x.reshape(n, h * w, c).astype(np.float64)
    conv = lambda name, v: v @ params[name]["kernel"][0, 0] + params[name]["bias"]
    theta, phi, g = conv("theta", flat), conv("phi", flat), conv("g", flat)
    y = (theta @ phi.transpose(0, 2, 1) / (h * w)) @ g
    y = conv("out", y)
    bn, st = params["out_bn"], stats["out_bn"]
    y = (y - st["mean"]) / np.sqrt(st["var"] + eps) * bn["scale"] + bn["bias"]
    return (y + flat).reshape(n, h, w, c)


def test_non_local_block_matches_numpy():
    x = np.asarray(_images(3, (2, 4, 3, 8)))
    block = NonLocal()
    variables = jax.tree.map(np.asarray, block.init(jax.random.key(0), x, train=False))
    # Zero-initialised output BN would hide the attention path: give it random values.
    rng = np.random.default_rng(0)
    params = jax.tree.map(
        lambda a: rng.normal(size=a.shape).astype(np.float32), variables["params"]
    )
    stats = {"out_bn": {"mean": rng.normal(size=8), "var": rng.uniform(0.5, 2.0, size=8)}}
    stats = jax.tree.map(lambda a: a.astype(np.float32), stats)
    assert params["theta"]["kernel"].shape == (1, 1, 8, 4)  # C' = C / 2
    out = block.apply({"params": params, "batch_stats": stats}, x, train=False)
    # float32 sums of 12 positions x 8 channels against float64: relative 1e-5.
    np.testing.assert_allclose(out, _non_local_numpy(x, params, stats), rtol=1e-4, atol=1e-4)


def test_zero_initialised_non_local_block_is_the_identity():
    x = _images(4, (2, 4, 3, 8))
    block = NonLocal()
    variables = block.init(jax.random.key(0), x, train=False)
    for train in (False, True):
        out, _ = block.apply(variables, x, train=train, mutable=["batch_stats"])
        np.testing.assert_array_equal(out, x)


def test_non_local_blocks_sit_after_the_last_blocks_and_start_as_identity():
    params = jax.eval_shape(
        lambda: models.ResNet50(num_filters=8, non_local=(0, 2, 3, 0)).init(
            jax.random.key(0), jnp.zeros((1, 64, 32, 3)), train=False
        )
    )["params"]
    assert sorted(k for k in params if k.startswith("non_local")) == [
        "non_local2_0",
        "non_local2_1",
        "non_local3_0",
        "non_local3_1",
        "non_local3_2",
    ]
    # A network with zero-initialised non-local blocks computes what the same network
    # without them computes (same remaining parameters).
    x = _images(5)
    with_nl = Tiny18(non_local=(0, 1, 2, 0))
    variables = with_nl.init(jax.random.key(0), x, train=False)
    plain = {
        col: {k: v for k, v in tree.items() if not k.startswith("non_local")}
        for col, tree in variables.items()
    }
    for train in (False, True):
        (a, _), _ = with_nl.apply(variables, x, train=train, mutable=["batch_stats"])
        (b, _), _ = Tiny18().apply(plain, x, train=train, mutable=["batch_stats"])
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="layer3 has 2 blocks"):
        Tiny18(non_local=(0, 0, 3, 0)).init(jax.random.key(0), x, train=False)


# --- BNNeck ------------------------------------------------------------------------------


def test_bnneck_head_normalises_without_shift_and_classifies_without_bias():
    x = _images(6)
    model = models.create_model(
        "resnet18", num_classes=5, embedding_size=None, width=8, head="bnneck", dropout_rate=0.0
    )
    variables = model.init(jax.random.key(0), x, train=False)
    assert set(variables["params"]["bnneck_bn"]) == {"scale"}
    assert set(variables["params"]["classifier"]) == {"kernel"}
    rng = np.random.default_rng(0)
    variables = jax.tree.map(np.asarray, variables)
    variables["params"]["bnneck_bn"]["scale"] = rng.uniform(0.5, 2, 64).astype(np.float32)
    stats = variables["batch_stats"]["bnneck_bn"]
    stats["mean"] = rng.normal(size=64).astype(np.float32)
    stats["var"] = rng.uniform(0.5, 2, 64).astype(np.float32)
    emb, inter = model.apply(variables, x, train=False)
    pooled = np.asarray(inter["pooled"], np.float64)
    expected = (pooled - stats["mean"]) / np.sqrt(stats["var"] + 1e-5)
    expected *= variables["params"]["bnneck_bn"]["scale"]
    np.testing.assert_allclose(emb, expected, rtol=1e-5, atol=1e-5)  # float32 vs float64
    np.testing.assert_array_equal(inter["bnneck"], emb)
    # Logits: a 64-term float32 dot product of the float32 embedding (sum order, ~1e-5).
    np.testing.assert_allclose(
        inter["logits"],
        expected @ variables["params"]["classifier"]["kernel"],
        rtol=1e-4,
        atol=1e-6,
    )
    labels = models.param_group_labels(variables["params"])
    assert set(jax.tree.leaves(labels["backbone"])) == {"backbone"}
    assert jax.tree.leaves(labels["bnneck_bn"]) == ["head"]
    assert jax.tree.leaves(labels["classifier"]) == ["head"]


# --- partially shared two-stream backbone --------------------------------------------------


def _two_stream(shared_from="layer1", head="linear"):
    return models.create_model(
        "resnet18",
        num_classes=3,
        embedding_size=16,
        width=8,
        head=head,
        dropout_rate=0.0,
        backbone_options=dict(streams=2, shared_from=shared_from, pooling="gem"),
    )


@pytest.mark.parametrize("shared_from", ["layer1", "layer2"])
def test_modality_specific_layers_get_gradients_only_from_their_modality(shared_from):
    model = _two_stream(shared_from)
    x = _images(7)
    modality = jnp.array([0, 1, 0, 1], jnp.int32)
    variables = model.init(jax.random.key(0), x, train=False)
    params = variables["params"]
    names = set(params["backbone"])
    assert {"modality0_conv1", "modality1_conv1", "modality0_bn1", "modality1_bn1"} <= names
    assert "conv1" not in names and "layer3_0" in names
    assert ("modality0_layer1_0" in names) == (shared_from == "layer2")

    last_specific = "stem" if shared_from == "layer1" else "layer1"

    def grads(images, modality_arg, train, output):
        def loss(p):
            (emb, inter), _ = model.apply(
                {"params": p, "batch_stats": variables["batch_stats"]},
                images,
                train=train,
                modality=modality_arg,
                mutable=["batch_stats"],
            )
            return jnp.sum((emb if output == "embedding" else inter[output]) ** 2)

        return jax.grad(loss)(params)["backbone"]

    # The gradient of a loss over the whole mixed batch, for stream m's parameters, is the
    # gradient from the images of modality m alone (a batch of their own): in training for
    # the modality-specific output (each copy's BatchNorm statistics come from its own
    # rows), in inference mode also through the shared layers. (In training the shared
    # layers' BatchNorm statistics mix both modalities, so there every image influences
    # every other one, as in any BatchNorm network and in AGW's code.)
    for train, output in ((True, last_specific), (False, "embedding")):
        mixed = grads(x, modality, train, output)
        for m in (0, 1):
            rows = np.asarray(modality) == m
            alone = grads(x[rows], m, train, output)
            for name in mixed:
                if name.startswith(f"modality{m}_"):
                    for a, b in zip(jax.tree.leaves(mixed[name]), jax.tree.leaves(alone[name])):
                        assert float(jnp.sum(jnp.abs(b))) > 0.0, (name, train)
                        # float32 sums over the same rows in another order: errors of
                        # about 1e-6 of the largest terms (entries near 0 cancel).
                        scale = float(jnp.max(jnp.abs(b)))
                        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * scale, err_msg=name)
                elif name.startswith(f"modality{1 - m}_"):
                    for b in jax.tree.leaves(alone[name]):
                        assert float(jnp.sum(jnp.abs(b))) == 0.0, (name, train)


def test_two_stream_rows_use_their_own_stream_and_batch_statistics():
    model = _two_stream()
    x = _images(8)
    modality = jnp.array([1, 0, 0, 1], jnp.int32)
    variables = model.init(jax.random.key(0), x, train=False)
    # Give the two stems different weights so that mixing them up would show.
    params = jax.tree.map(np.asarray, variables["params"])
    params["backbone"]["modality1_conv1"]["kernel"] = -params["backbone"]["modality0_conv1"][
        "kernel"
    ]
    variables = {"params": params, "batch_stats": variables["batch_stats"]}
    mixed, _ = model.apply(variables, x, train=False, modality=modality)
    for m in (0, 1):
        alone, _ = model.apply(variables, x, train=False, modality=m)  # one int: whole batch
        rows = np.asarray(modality) == m
        np.testing.assert_array_equal(mixed[rows], alone[rows])
    # Training: stream m's BatchNorm statistics come from its own rows only, as if the
    # rows of modality m had been a batch of their own.
    _, new_stats = model.apply(variables, x, train=True, modality=modality, mutable=["batch_stats"])
    rows1 = np.array([0, 3])
    _, stats1 = model.apply(variables, x[rows1], train=True, modality=1, mutable=["batch_stats"])
    np.testing.assert_allclose(
        new_stats["batch_stats"]["backbone"]["modality1_bn1"]["mean"],
        stats1["batch_stats"]["backbone"]["modality1_bn1"]["mean"],
        rtol=1e-5,
        atol=1e-6,  # float32 sums over 2 x 16 x 8 positions in another order
    )
    with pytest.raises(ValueError, match="needs `modality`"):
        model.apply(variables, x, train=False)


def test_one_stream_ignores_modality():
    model = models.create_model("resnet18", num_classes=3, embedding_size=16, width=8)
    x = _images(9)
    variables = model.init(jax.random.key(0), x, train=False)
    a, _ = model.apply(variables, x, train=False)
    b, _ = model.apply(variables, x, train=False, modality=jnp.array([0, 1, 1, 0]))
    np.testing.assert_array_equal(a, b)


def test_pretrained_weights_fill_both_streams_and_leave_new_layers():
    source = jax.tree.map(
        np.asarray, Tiny18().init(jax.random.key(1), _images(), train=False)
    )  # stands in for converted torchvision weights (same names)
    model = _two_stream()
    model = models.create_model(
        "resnet18",
        num_classes=3,
        embedding_size=16,
        width=8,
        backbone_options=dict(streams=2, non_local=(0, 1, 1, 0)),
    )
    variables = model.init(jax.random.key(0), _images(), train=False)
    merged = pretrained.merge_into(variables, source)
    backbone = merged["params"]["backbone"]
    for m in (0, 1):
        np.testing.assert_array_equal(
            backbone[f"modality{m}_conv1"]["kernel"], source["params"]["conv1"]["kernel"]
        )
        np.testing.assert_array_equal(
            merged["batch_stats"]["backbone"][f"modality{m}_bn1"]["var"],
            source["batch_stats"]["bn1"]["var"],
        )
    np.testing.assert_array_equal(
        backbone["layer2_1"]["conv1"]["kernel"], source["params"]["layer2_1"]["conv1"]["kernel"]
    )
    np.testing.assert_array_equal(
        backbone["non_local2_0"]["theta"]["kernel"],
        variables["params"]["backbone"]["non_local2_0"]["theta"]["kernel"],
    )


# --- losses --------------------------------------------------------------------------------


def _distance(a, b):
    return math.sqrt(sum((p - q) ** 2 for p, q in zip(a, b)))


def brute_force_wrt(x, labels, modalities=None):
    """Ye et al. 2021 Eq. 5 with loops in float64 (cross-modal if modalities are given)."""
    x = np.asarray(x, np.float64)
    n, out = len(x), []
    for i in range(n):
        usable = [j for j in range(n) if modalities is None or modalities[j] != modalities[i]]
        pos = [_distance(x[i], x[j]) for j in usable if j != i and labels[j] == labels[i]]
        neg = [_distance(x[i], x[j]) for j in usable if labels[j] != labels[i]]
        if not pos or not neg:
            continue
        wp = [math.exp(d) for d in pos]
        wn = [math.exp(-d) for d in neg]
        d_ap = sum(w * d for w, d in zip(wp, pos)) / sum(wp)
        d_an = sum(w * d for w, d in zip(wn, neg)) / sum(wn)
        out.append(math.log1p(math.exp(d_ap - d_an)))
    return sum(out) / len(out) if out else 0.0


def brute_force_cross_modal_batch_hard(x, labels, modalities, margin):
    x = np.asarray(x, np.float64)
    n, out = len(x), []
    for i in range(n):
        other = [j for j in range(n) if modalities[j] != modalities[i]]
        pos = [_distance(x[i], x[j]) for j in other if labels[j] == labels[i]]
        neg = [_distance(x[i], x[j]) for j in other if labels[j] != labels[i]]
        if pos and neg:
            out.append(max(max(pos) - min(neg) + margin, 0.0))
    return sum(out) / len(out) if out else 0.0


LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3])
MODALITIES = np.array([0, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 0])  # id 2: one modality only


@pytest.mark.parametrize("scale", [0.3, 3.0])  # small and large distances (softmax weights)
def test_wrt_matches_brute_force(scale):
    x = np.random.default_rng(3).normal(size=(12, 5)).astype(np.float32) * scale
    got = losses.weighted_regularized_triplet(jnp.asarray(x), jnp.asarray(LABELS))
    # float32 distances and softmax against float64 loops.
    np.testing.assert_allclose(got, brute_force_wrt(x, LABELS), rtol=1e-5, atol=1e-6)
    got = losses.weighted_regularized_triplet(
        jnp.asarray(x),
        jnp.asarray(LABELS),
        modalities=jnp.asarray(MODALITIES),
        mining="cross_modal",
    )
    # float32 loss vs float64 brute force over 12 x 12 pairs: a few ulp (rtol 1e-5).
    np.testing.assert_allclose(got, brute_force_wrt(x, LABELS, MODALITIES), rtol=1e-5, atol=1e-6)
    grads = jax.grad(lambda e: losses.weighted_regularized_triplet(e, jnp.asarray(LABELS)))(
        jnp.asarray(np.concatenate([x[:1], x[:11]]))
    )  # a duplicated embedding: d = 0
    assert np.all(np.isfinite(grads))


def test_cross_modal_batch_hard_matches_brute_force():
    x = np.random.default_rng(4).normal(size=(12, 5)).astype(np.float32)
    got = losses.batch_hard_triplet(
        jnp.asarray(x),
        jnp.asarray(LABELS),
        margin=0.5,
        modalities=jnp.asarray(MODALITIES),
        mining="cross_modal",
    )
    expected = brute_force_cross_modal_batch_hard(x, LABELS, MODALITIES, 0.5)
    # float32 vs float64 brute force, a max / min over 12 x 12 distances: a few ulp.
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="needs the modality"):
        losses.batch_hard_triplet(jnp.asarray(x), jnp.asarray(LABELS), mining="cross_modal")


def test_label_smoothing_matches_the_smoothed_target():
    logits = np.random.default_rng(5).normal(size=(4, 6)).astype(np.float32)
    labels = np.array([0, 5, 2, 2])
    eps = 0.1
    log_p = logits - np.log(np.exp(logits.astype(np.float64)).sum(1, keepdims=True))
    target = np.full((4, 6), eps / 6) + (1 - eps) * np.eye(6)[labels]
    expected = -np.mean(np.sum(target * log_p, axis=1))
    got = losses.softmax_cross_entropy(
        jnp.asarray(logits), jnp.asarray(labels), label_smoothing=eps
    )
    # float32 log-softmax of 6 logits vs float64: a few ulp (rtol 1e-6).
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def _loss_config(**overrides):
    from jaxreid.config import default_config

    config = default_config().loss
    for key, value in overrides.items():
        config[key] = value
    return config


def test_compose_sums_its_parts():
    rng = np.random.default_rng(6)
    emb = jnp.asarray(rng.normal(size=(12, 8)).astype(np.float32))
    pooled = jnp.asarray(rng.normal(size=(12, 8)).astype(np.float32))
    logits = jnp.asarray(rng.normal(size=(12, 4)).astype(np.float32))
    inter = {"logits": logits, "pooled": pooled}
    labels, mods = jnp.asarray(LABELS), jnp.asarray(MODALITIES)
    config = _loss_config(
        name="softmax+wrt", triplet_feature="pooled", label_smoothing=0.1, mining="cross_modal"
    )
    total, metrics = losses.compose(config, emb, inter, labels, mods)
    ce = losses.softmax_cross_entropy(logits, labels, label_smoothing=0.1)
    # float32 losses vs float64 brute force; their sum rounds once more (rtol 1e-6).
    np.testing.assert_allclose(
        metrics["wrt_loss"], brute_force_wrt(pooled, LABELS, MODALITIES), rtol=1e-5
    )
    np.testing.assert_allclose(total, ce + metrics["wrt_loss"], rtol=1e-6)
    config = _loss_config(name="softmax+triplet", triplet_margin=0.3)
    total, metrics = losses.compose(config, emb, inter, labels)
    np.testing.assert_allclose(
        metrics["triplet_loss"],
        brute_force_cross_modal_batch_hard(emb, LABELS, np.arange(12), 0.3),  # all "other"
        rtol=1e-5,
    )
    assert [losses.loss_parts(name) for name in losses.LOSS_NAMES]  # every listed name parses
    for bad in ("softmax+center", "triplet+wrt", "softmax+softmax"):
        with pytest.raises(ValueError, match="config.loss.name"):
            losses.compose(_loss_config(name=bad), emb, inter, labels)


# --- schedule, flip test -------------------------------------------------------------------


def test_agw_schedule_follows_the_published_epochs():
    schedule = schedules.agw_schedule(0.1, steps_per_epoch=3)
    # AGW code adjust_learning_rate: epoch e < 10 -> 0.1 (e + 1) / 10; 10-19 -> 0.1;
    # 20-49 -> 0.01; >= 50 -> 0.001.
    expected = {0: 0.01, 2: 0.01, 3: 0.02, 29: 0.1, 30: 0.1, 59: 0.1, 60: 0.01, 149: 0.01}
    expected.update({150: 0.001, 240: 0.001})
    for step, lr in expected.items():
        # float32 learning rates vs decimal ones (0.01 is 2e-8 off in float32): rtol 1e-6.
        np.testing.assert_allclose(float(schedule(step)), lr, rtol=1e-6)
    np.testing.assert_allclose(jax.jit(schedule)(jnp.int32(61)), 0.01, rtol=1e-6)


def test_flip_embed_is_the_mean_of_the_image_and_its_mirror():
    images = np.random.default_rng(7).normal(size=(3, 4, 5, 2)).astype(np.float32)
    weights = np.random.default_rng(8).normal(size=(40, 6)).astype(np.float32)
    # A linear embedding that is not invariant to mirroring.
    embed = lambda x: jnp.asarray(x).reshape(len(x), -1) @ weights
    mirrored = np.flip(images, axis=2)
    expected = (images.reshape(3, -1) @ weights + mirrored.reshape(3, -1) @ weights) / 2
    # float32 40-term dot products summed in other orders: ~1e-6; a wrong mirror is O(1).
    np.testing.assert_allclose(flip_embed(embed, images), expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(flip_embed(embed, images), embed(images), atol=1e-3)


def test_config_builds_every_component():
    from jaxreid.config import default_config

    config = default_config()
    config.data.modalities = ("rgb", "infrared")
    config.model.head = "bnneck"
    config.model.pooling = "gem"
    config.model.non_local = (0, 1, 1, 0)
    config.model.shared_from = "layer1"
    config.model.last_stride = 1
    config.model.width = 8
    config.loss.name = "softmax+wrt"
    model = models.model_from_config(config, num_classes=5)
    x = _images(10)
    variables = model.init(jax.random.key(0), x, train=False)
    emb, inter = model.apply(variables, x, train=False, modality=jnp.array([0, 1, 0, 1]))
    assert emb.shape == (4, 64) and inter["logits"].shape == (4, 5)
    # last_stride 1: layer4 keeps layer3's 2 x 1 map of a 32 x 16 image.
    assert inter["layer4"].shape[1:3] == inter["layer3"].shape[1:3]
    config.loss.name = "wrt"
    assert (
        "classifier"
        not in models.model_from_config(config, 5).init(jax.random.key(0), x, train=False)["params"]
    )


def _load_config(name, arg):
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "configs", name)
    spec = importlib.util.spec_from_file_location(name[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def test_agw_configs_carry_the_published_settings():
    sysu = _load_config("agw.py", "")
    assert tuple(sysu.data.image_size) == (288, 144)
    assert (sysu.batch.num_identities, sysu.batch.images_per_identity) == (8, 8)
    assert (sysu.optim.learning_rate, sysu.optim.weight_decay) == (0.1, 5e-4)
    assert sysu.optim.backbone_lr_factor == 0.1 and tuple(sysu.model.non_local) == (0, 2, 3, 0)
    assert _load_config("agw.py", "regdb,trial=3").data.train_split == "train_3"
    ca = _load_config("agw_ca.py", "synthetic")
    assert ca.data.augment.channel_exchange == 0.5 and ca.eval.flip_test
    assert ca.model.head == "bnneck" and ca.data.name == "synthetic"


def test_agw_quick_config_takes_a_training_step_with_param_groups():
    """The hooks as the engine will wire them: modality into the model, losses.compose,
    param_group_labels with backbone_lr_factor, agw_schedule."""
    import optax

    config = _load_config("agw.py", "synthetic,quick")
    model = models.model_from_config(config, num_classes=4)
    x = _images(11, (8, 32, 16, 3))
    labels = jnp.array([0, 0, 1, 1, 2, 2, 3, 3])
    modality = jnp.array([0, 1] * 4, jnp.int32)
    variables = model.init(jax.random.key(0), x, train=False)
    schedule = schedules.agw_schedule(
        config.optim.learning_rate,
        config.optim.steps_per_epoch,
        config.optim.warmup_epochs,
        config.optim.milestone_epochs,
    )
    factor = config.optim.backbone_lr_factor
    tx = optax.multi_transform(
        {
            "backbone": optax.sgd(lambda s: factor * schedule(s), momentum=0.9, nesterov=True),
            "head": optax.sgd(schedule, momentum=0.9, nesterov=True),
        },
        models.param_group_labels,
    )
    params, stats = variables["params"], {"batch_stats": variables["batch_stats"]}
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state):
        def loss_fn(p):
            (emb, inter), new_stats = model.apply(
                {"params": p, **stats}, x, train=True, modality=modality, mutable=["batch_stats"]
            )
            return losses.compose(config.loss, emb, inter, labels, modality)

        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return grads, updates, metrics

    grads, updates, metrics = step(params, opt_state)
    assert set(metrics) == {"loss", "softmax_loss", "accuracy", "wrt_loss"}
    assert np.isfinite(float(metrics["loss"]))
    # Step 0 is in warm-up epoch 0: lr = base / warmup_epochs for the head and a tenth of it
    # for the backbone; Nesterov SGD's first update is -lr * (1 + momentum) * grad.
    lr = config.optim.learning_rate / config.optim.warmup_epochs
    for path, rate in ((("classifier", "kernel"), lr), (("backbone", "layer4_1"), factor * lr)):
        g, u = grads, updates
        for key in path:
            g, u = g[key], u[key]
        for g_leaf, u_leaf in zip(jax.tree.leaves(g), jax.tree.leaves(u)):
            # float32 products of the same numbers: a few ulp.
            np.testing.assert_allclose(u_leaf, -rate * 1.9 * g_leaf, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("head", ["bnneck", "linear"])
def test_layer_order_lists_every_new_layer(head):
    """Freezing (jaxreid.training.freezing, distillation) addresses layers by the model's
    layer_order(): the modality copies, non-local blocks, GeM exponent and BNNeck are listed,
    in forward order."""
    from jaxreid.training import freezing

    model = models.create_model(
        "resnet18",
        num_classes=3,
        embedding_size=16,
        width=8,
        head=head,
        backbone_options=dict(
            streams=2,
            shared_from="layer2",
            non_local=(1, 1, 0, 0),
            pooling="gem",
            gem_learnable=True,
        ),
    )
    params = jax.eval_shape(lambda: model.init(jax.random.key(0), _images(), train=False))["params"]
    mask = freezing.frozen_mask(model, params, None)  # raises for a layer not listed
    assert not any(jax.tree.leaves(mask))
    order = model.layer_order()
    position = {path: i for i, path in enumerate(order)}
    nl = ("backbone", "modality1_non_local1_0", "theta")
    assert position[("backbone", "modality1_layer1_1", "bn2")] < position[nl]
    assert position[nl] < position[("backbone", "layer2_0", "conv1")]
    assert order[-1] == ("classifier",)
