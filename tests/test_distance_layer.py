"""Tests of the Tekeli & Can 2019 distance score layer (jaxreid/models/distance.py).

References are numbers worked out by hand (written below) or brute-force NumPy loops.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import flax.linen as nn
from jax.sharding import NamedSharding, PartitionSpec as P

from jaxreid.models.distance import (
    CENTERS_COLLECTION,
    DistanceNet,
    DistanceScores,
)
from reduction_order import U32, sum_rtol

# Small example for the metrics: 3 features, 3 centers in 2-D. x3 coincides with c3.
FEATURES = np.array([[1.0, 2.0], [0.0, -1.0], [1.0, 1.0]], np.float32)
CENTERS = np.array([[0.0, 0.0], [3.0, -2.0], [1.0, 1.0]], np.float32)
# Hand-worked distances d(x_n, c_i); rows n, columns i. Differences x - c:
#   x1: [1,2], [-2,4], [0,1]    x2: [0,-1], [-3,1], [-1,-2]    x3: [1,1], [-2,3], [0,0]
HAND_DISTANCES = {
    "l1": [[3, 6, 1], [1, 4, 3], [2, 5, 0]],
    "l2": [
        [math.sqrt(5), math.sqrt(20), 1],
        [1, math.sqrt(10), math.sqrt(5)],
        [math.sqrt(2), math.sqrt(13), 0],
    ],
    "sql2": [[5, 20, 1], [1, 10, 5], [2, 13, 0]],
    "linf": [[2, 4, 1], [1, 3, 2], [1, 3, 0]],
    # -x.c:  x1.c = 0, 3-4=-1, 1+2=3;  x2.c = 0, 0+2=2, 0-1=-1;  x3.c = 0, 3-2=1, 2
    "dot": [[0, 1, -3], [0, -2, 1], [0, -1, -2]],
}

# Update example: 4 classes in 2-D; batch with a class seen 3x (2), 2x (0), once (1),
# absent (3), and two masked samples with extreme values (classes 3 and 1).
UPDATE_CENTERS = np.array([[0, 0], [4, 4], [8, 0], [1, 2]], np.float32)
UPDATE_FEATURES = np.array(
    [[0, 8], [2, 2], [0, 0], [4, 4], [100, 100], [6, -2], [2, -4], [50, 50]], np.float32
)
UPDATE_LABELS = np.array([2, 0, 1, 2, 3, 0, 2, 1], np.int32)
UPDATE_MASK = np.array([1, 1, 1, 1, 0, 1, 1, 0], bool)
HAND_UPDATED = {
    # beta = 0.5, sequentially in batch order:
    #   c0: [0,0] -> .5[0,0]+.5[2,2] = [1,1] -> .5[1,1]+.5[6,-2] = [3.5,-0.5]
    #   c1: [4,4] -> .5[4,4]+.5[0,0] = [2,2]
    #   c2: [8,0] -> [4,4] -> [4,4] -> .5[4,4]+.5[2,-4] = [3,0]
    ("ema", 0.5): [[3.5, -0.5], [2, 2], [3, 0], [1, 2]],
    # beta = 0.7 (Tekeli Table 1):
    #   c0: .7(.7[0,0]+.3[2,2]) + .3[6,-2] = [.42+1.8, .42-.6] = [2.22,-0.18]
    #   c1: .7[4,4] = [2.8,2.8]
    #   c2: [8,0] -> [5.6,2.4] -> [3.92+1.2, 1.68+1.2] = [5.12,2.88]
    #       -> [3.584+.6, 2.016-1.2] = [4.184,0.816]
    ("ema", 0.7): [[2.22, -0.18], [2.8, 2.8], [4.184, 0.816], [1, 2]],
    # median: c0 of {[2,2],[6,-2]} = mean of the two middles = [4,0]; c1 = [0,0];
    #   c2 of {[0,8],[4,4],[2,-4]}: dim0 {0,2,4} -> 2, dim1 {-4,4,8} -> 4.
    ("median", None): [[4, 0], [0, 0], [2, 4], [1, 2]],
    # mid-range: c0 [(2+6)/2, (2-2)/2] = [4,0]; c1 = [0,0]; c2 [(0+4)/2, (8-4)/2] = [2,2].
    ("midrange", None): [[4, 0], [0, 0], [2, 2], [1, 2]],
}


def _apply_update(module, centers, features, labels, mask=None, train=True):
    scores, state = module.apply(
        {CENTERS_COLLECTION: {"centers": jnp.asarray(centers)}},
        jnp.asarray(features),
        jnp.asarray(labels),
        train=train,
        mask=None if mask is None else jnp.asarray(mask),
        mutable=[CENTERS_COLLECTION],
    )
    return scores, np.asarray(state[CENTERS_COLLECTION]["centers"])


# ---------------------------------------------------------------------------------- scores


@pytest.mark.parametrize("metric", sorted(HAND_DISTANCES))
def test_scores_match_hand_computed_distances(metric):
    expected = -np.array(HAND_DISTANCES[metric], np.float32)
    sgd = DistanceScores(num_classes=3, metric=metric, center_update="sgd")
    scores = sgd.apply({"params": {"centers": CENTERS}}, FEATURES, train=False)
    # float32 distances of 4-d features vs float32 hand values: a few roundings (1e-6).
    np.testing.assert_allclose(scores, expected, rtol=1e-6, atol=1e-6)
    # Same scores when the centers live in the 'centers' collection (pre-update centers).
    ema = DistanceScores(num_classes=3, metric=metric, center_update="ema")
    scores, _ = _apply_update(ema, CENTERS, FEATURES, np.array([0, 1, 2]))
    np.testing.assert_allclose(scores, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("metric", ["l2", "linf", "l1"])
def test_gradient_is_finite_where_feature_equals_center(metric):
    module = DistanceScores(num_classes=3, metric=metric, center_update="sgd")
    grads = jax.grad(
        lambda f: module.apply({"params": {"centers": CENTERS}}, f, train=False).sum()
    )(jnp.asarray(FEATURES))
    assert np.all(np.isfinite(grads))
    if metric == "l2":
        # d/dx of -sum_i ||x - c_i|| = -sum_i (x - c_i)/||x - c_i||, with 0 for the coincident
        # center. x1 = [1,2]: -([1,2]/sqrt5 + [-2,4]/sqrt20 + [0,1]/1)
        #                   = -([1,2]/sqrt5 + [-1,2]/sqrt5 + [0,1]) = [0, -(4/sqrt5 + 1)]
        np.testing.assert_allclose(grads[0], [0.0, -(4 / math.sqrt(5) + 1)], rtol=1e-5)
        # x3 = c3: -([1,1]/sqrt2 + [-2,3]/sqrt13 + 0)
        expected = -(np.array([1, 1]) / math.sqrt(2) + np.array([-2, 3]) / math.sqrt(13))
        np.testing.assert_allclose(grads[2], expected, rtol=1e-5)


def test_dot_scores_equal_bias_free_dense_layer():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(5, 4)).astype(np.float32)
    centers = rng.normal(size=(3, 4)).astype(np.float32)
    dense = nn.Dense(3, use_bias=False)
    expected = dense.apply({"params": {"kernel": centers.T}}, features)
    layer = DistanceScores(num_classes=3, metric="dot", center_update="sgd")
    scores = layer.apply({"params": {"centers": centers}}, features, train=True)
    # The same 4-term float32 dot products as nn.Dense, maybe in another order (1e-6).
    np.testing.assert_allclose(scores, expected, rtol=1e-6, atol=1e-6)
    # Independent check: x.c by hand-rolled loops.
    loops = [
        [sum(features[n, j] * centers[i, j] for j in range(4)) for i in range(3)] for n in range(5)
    ]
    # Python-float loops (float64 sums of float32 products) vs float32: ~1e-7 relative.
    np.testing.assert_allclose(scores, loops, rtol=1e-5, atol=1e-5)


def test_unknown_names_raise_with_the_valid_choices():
    with pytest.raises(ValueError, match="metric 'cosine'.*'l1'"):
        DistanceScores(num_classes=3, metric="cosine").init(
            jax.random.key(0), FEATURES, train=False
        )
    with pytest.raises(ValueError, match="center_update 'mean'.*'ema'"):
        DistanceScores(num_classes=3, center_update="mean").init(
            jax.random.key(0), FEATURES, train=False
        )


# ---------------------------------------------------------------------------------- updates


@pytest.mark.parametrize("mode,beta", sorted(HAND_UPDATED, key=str))
def test_center_updates_match_hand_computed(mode, beta):
    kwargs = {} if beta is None else {"momentum": beta}
    module = DistanceScores(num_classes=4, metric="l2", center_update=mode, **kwargs)
    _, new = _apply_update(module, UPDATE_CENTERS, UPDATE_FEATURES, UPDATE_LABELS, UPDATE_MASK)
    # float32 updates vs hand-worked decimals (rounded to ~6 digits): 1e-5.
    np.testing.assert_allclose(new, HAND_UPDATED[(mode, beta)], rtol=1e-5, atol=1e-5)


def test_default_momentum_is_tekeli_table_1():
    assert DistanceScores(num_classes=2).momentum == 0.7  # Tekeli 2019, Table 1


def _numpy_sequential_ema(centers, features, labels, valid, beta):
    centers = centers.astype(np.float64).copy()
    for x, y, ok in zip(features, labels, valid):
        if ok and 0 <= y < len(centers):
            centers[y] = beta * centers[y] + (1 - beta) * x  # Eq. 9, one sample at a time
    return centers


def _numpy_per_class(centers, features, labels, valid, statistic):
    out = centers.astype(np.float64).copy()
    for c in range(len(centers)):
        rows = features[(labels == c) & valid]
        if len(rows):
            out[c] = statistic(rows)
    return out


# Classes: 3 x5 (+1 masked), 0 x4 (even), 1 x2, 5 x2, 2 x1, 4 absent; -1 and 6 out of range.
REF_LABELS = np.array([3, 0, 3, 1, 3, 0, 5, 3, 2, 0, 0, 5, 1, 3, -1, 6], np.int32)
REF_MASK = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1], bool)


def _reference(mode, centers, features, labels, mask, beta=0.7):
    if mode == "ema":
        return _numpy_sequential_ema(centers, features, labels, mask, beta)
    if mode == "median":
        return _numpy_per_class(centers, features, labels, mask, lambda r: np.median(r, 0))
    return _numpy_per_class(centers, features, labels, mask, lambda r: (r.max(0) + r.min(0)) / 2)


@pytest.mark.parametrize("mode", ["ema", "median", "midrange"])
def test_updates_equal_brute_force_numpy(mode):
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(6, 5)).astype(np.float32)
    features = rng.normal(size=(16, 5)).astype(np.float32)
    module = DistanceScores(num_classes=6, metric="l2", center_update=mode)
    _, new = _apply_update(module, centers, features, REF_LABELS, REF_MASK)
    expected = _reference(mode, centers, features, REF_LABELS, REF_MASK)
    np.testing.assert_allclose(new, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(new[4], centers[4])  # absent class keeps its center


def test_ema_closed_form_with_many_repeats_and_beta_edge_cases():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, size=40).astype(np.int32)
    features = rng.normal(size=(40, 3)).astype(np.float32)
    centers = rng.normal(size=(3, 3)).astype(np.float32)
    for beta in (0.0, 0.3, 0.9, 1.0):
        module = DistanceScores(num_classes=3, center_update="ema", momentum=beta)
        _, new = _apply_update(module, centers, features, labels)
        expected = _numpy_sequential_ema(centers, features, labels, np.ones(40, bool), beta)
        # float32 EMA over up to 40 sequential updates vs NumPy float64: ~1e-6 (rtol 1e-5).
        np.testing.assert_allclose(new, expected, rtol=1e-5, atol=1e-6, err_msg=f"beta={beta}")


@pytest.mark.parametrize("mode", ["ema", "median", "midrange"])
def test_update_on_8_devices_equals_update_on_1_device(mode):
    assert len(jax.devices()) >= 8, "tests/conftest.py should provide 8 host devices"
    rng = np.random.default_rng(3)
    centers = rng.normal(size=(6, 4)).astype(np.float32)
    features = rng.normal(size=(16, 4)).astype(np.float32)
    # 2 examples per device: class 3 is on devices 0-3 (and masked on 6), class 0 on 0, 2, 4, 5.
    module = DistanceScores(num_classes=6, metric="l2", center_update=mode)

    @jax.jit
    def step(variables, x, y, m):
        return module.apply(variables, x, y, train=True, mask=m, mutable=[CENTERS_COLLECTION])

    variables = {CENTERS_COLLECTION: {"centers": centers}}
    one = jax.devices()[0]
    single = step(
        jax.device_put(variables, one),
        *(jax.device_put(a, one) for a in (features, REF_LABELS, REF_MASK)),
    )

    mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    batch = NamedSharding(mesh, P("data"))
    x, y, m = (jax.device_put(a, batch) for a in (features, REF_LABELS, REF_MASK))
    assert len(x.sharding.device_set) == 8
    sharded = step(jax.device_put(variables, NamedSharding(mesh, P())), x, y, m)

    new_sharded = np.asarray(sharded[1][CENTERS_COLLECTION]["centers"])
    new_single = np.asarray(single[1][CENTERS_COLLECTION]["centers"])
    # 1 and 8 devices differ only in the order of float32 sums (reduction_order.py).
    # Scores are -sqrt(||x||^2 - 2 x.c + ||c||^2): the squares are sums of D + 2 terms, each
    # run rounds the sqrt and the square once more (u relative each).
    x = features.astype(np.float64)
    magnitudes = max(
        np.max((x * x).sum(1)[:, None] + 2 * np.abs(x @ c.T) + (c * c).sum(1)[None, :])
        for c in (centers.astype(np.float64), new_single.astype(np.float64))
    )
    np.testing.assert_allclose(
        np.square(np.asarray(sharded[0], np.float64)),
        np.square(np.asarray(single[0], np.float64)),
        rtol=4 * U32,
        atol=sum_rtol(x.shape[1] + 2) * magnitudes,
    )
    # New centres: beta^k c + sum of k <= 16 weighted features whose weights and beta^k sum
    # to 1, so the terms' magnitudes sum to at most max(|c|, |x|); stored once per run.
    np.testing.assert_allclose(
        new_sharded,
        new_single,
        rtol=2 * U32,
        atol=sum_rtol(len(features) + 1) * max(np.abs(centers).max(), np.abs(features).max()),
    )
    # And both equal the global brute-force reference.
    expected = _reference(mode, centers, features, REF_LABELS, REF_MASK)
    np.testing.assert_allclose(new_sharded, expected, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------- gradients, modes


def _loss(scores, labels):
    return optax.softmax_cross_entropy_with_integer_labels(scores, labels).mean()


def test_gradients_reach_centers_in_sgd_mode():
    labels = jnp.array([0, 1, 2])
    module = DistanceScores(num_classes=3, metric="l2", center_update="sgd")
    variables = module.init(jax.random.key(0), FEATURES, train=False)
    assert set(variables) == {"params"}
    assert variables["params"]["centers"].shape == (3, 2)

    def loss(params, features):
        return _loss(module.apply({"params": params}, features, labels, train=True), labels)

    grad_params, grad_features = jax.grad(loss, argnums=(0, 1))(variables["params"], FEATURES)
    assert np.abs(grad_params["centers"]).sum() > 1e-3
    assert np.abs(grad_features).sum() > 1e-3


@pytest.mark.parametrize("mode", ["ema", "median", "midrange"])
def test_no_gradient_to_centers_outside_sgd_mode(mode):
    labels = jnp.array([0, 1, 2])
    module = DistanceScores(num_classes=3, metric="l2", center_update=mode)
    variables = module.init(jax.random.key(0), FEATURES, train=False)
    assert "params" not in variables or not variables["params"]
    assert variables[CENTERS_COLLECTION]["centers"].shape == (3, 2)

    def loss(features):
        scores, _ = module.apply(
            variables, features, labels, train=True, mutable=[CENTERS_COLLECTION]
        )
        return _loss(scores, labels)

    assert np.abs(jax.grad(loss)(FEATURES)).sum() > 1e-3  # features still learn

    def updated_centers_sum(features):
        _, state = module.apply(
            variables, features, labels, train=True, mutable=[CENTERS_COLLECTION]
        )
        return state[CENTERS_COLLECTION]["centers"].sum()

    # The update itself is not differentiated (stop_gradient on its features) ...
    np.testing.assert_array_equal(jax.grad(updated_centers_sum)(FEATURES), 0.0)
    # ... although it does change the centers.
    assert updated_centers_sum(FEATURES) != variables[CENTERS_COLLECTION]["centers"].sum()


@pytest.mark.parametrize("mode", ["ema", "median", "midrange"])
def test_eval_mode_and_immutable_collection_leave_centers_unchanged(mode):
    module = DistanceScores(num_classes=4, metric="l2", center_update=mode)
    variables = {CENTERS_COLLECTION: {"centers": jnp.asarray(UPDATE_CENTERS)}}
    _, state = module.apply(
        variables, UPDATE_FEATURES, UPDATE_LABELS, train=False, mutable=[CENTERS_COLLECTION]
    )
    np.testing.assert_array_equal(state[CENTERS_COLLECTION]["centers"], UPDATE_CENTERS)
    # Eval needs no labels; train=True with an immutable collection just scores.
    scores_eval = module.apply(variables, UPDATE_FEATURES, train=False)
    scores_train = module.apply(variables, UPDATE_FEATURES, UPDATE_LABELS, train=True)
    np.testing.assert_array_equal(scores_eval, scores_train)


def test_training_update_without_labels_raises():
    module = DistanceScores(num_classes=4, center_update="ema")
    variables = {CENTERS_COLLECTION: {"centers": jnp.asarray(UPDATE_CENTERS)}}
    with pytest.raises(ValueError, match="needs labels"):
        module.apply(variables, UPDATE_FEATURES, None, train=True, mutable=[CENTERS_COLLECTION])


def test_init_draws_random_centers_and_does_not_update_them():
    module = DistanceScores(num_classes=300, center_update="ema")
    features = jnp.ones((4, 64))
    variables = module.init(jax.random.key(0), features, jnp.zeros(4, jnp.int32), train=True)
    centers = np.asarray(variables[CENTERS_COLLECTION]["centers"])
    assert centers.shape == (300, 64)
    # LeCun normal over fan-in D = 64: stddev 1/8 (truncated normal, so about 0.125).
    assert 0.1 < centers.std() < 0.15 and abs(centers.mean()) < 0.01
    # init(train=True, labels) must not apply an update to the random draw.
    same_key = module.init(jax.random.key(0), features, train=False)
    np.testing.assert_array_equal(same_key[CENTERS_COLLECTION]["centers"], centers)
    other = module.init(jax.random.key(1), features, train=False)
    # Different keys draw different centres: any tolerance, all entries differ by O(0.1).
    assert not np.allclose(other[CENTERS_COLLECTION]["centers"], centers)


# --------------------------------------------------------------------------- DistanceNet


class _ToyEncoder(nn.Module):
    """(x, train) -> (output, intermediates) like ResNet / ReIDNet."""

    @nn.compact
    def __call__(self, x, train: bool):
        pooled = nn.relu(nn.Dense(5)(x))
        return pooled, {"pooled": pooled}


def test_distance_net_wraps_an_encoder_like_reidnet():
    x = jnp.asarray(np.random.default_rng(4).normal(size=(6, 3)), jnp.float32)
    labels = jnp.array([0, 1, 1, 2, 0, 3])
    net = DistanceNet(
        backbone=_ToyEncoder, num_classes=4, metric="l2", center_update="ema", feature_key="pooled"
    )
    variables = net.init(jax.random.key(0), x, train=False)
    assert set(variables["params"]) == {"backbone"}
    centers = np.asarray(variables[CENTERS_COLLECTION]["distance_scores"]["centers"])

    (features, inter), state = net.apply(
        variables, x, labels, train=True, mutable=[CENTERS_COLLECTION]
    )
    features = np.asarray(features, np.float64)
    brute = np.sqrt(((features[:, None, :] - centers[None]) ** 2).sum(-1))
    # float32 distances of 8-d features vs float64 brute force: ~1e-6 (rtol 1e-5).
    np.testing.assert_allclose(inter["logits"], -brute, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(inter["features"], features.astype(np.float32))
    expected = _numpy_sequential_ema(centers, features, np.asarray(labels), np.ones(6, bool), 0.7)
    # float32 EMA of 6 features vs float64 sequential NumPy: ~1e-7, rtol 1e-5.
    np.testing.assert_allclose(
        state[CENTERS_COLLECTION]["distance_scores"]["centers"], expected, rtol=1e-5, atol=1e-6
    )

    with pytest.raises(KeyError, match="'embedding' not among"):
        DistanceNet(backbone=_ToyEncoder, num_classes=4, feature_key="embedding").init(
            jax.random.key(0), x, train=False
        )
