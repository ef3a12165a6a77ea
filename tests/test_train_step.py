"""The data-parallel train step: 8 devices give the same update as 1 device."""

import jax
import ml_collections
import numpy as np
import pytest

from jaxreid import config as config_lib
from jaxreid import losses
from jaxreid.evaluation import experiment
from jaxreid.training import optimizers, steps
from jaxreid.training.engine import Engine
from reduction_order import assert_same_update, sum_rtol


def tiny_config(loss="softmax", optim="sgd"):
    config = config_lib.default_config()
    config.model.width = 8
    config.model.embedding_size = 16
    config.data.image_size = (32, 16)
    config.loss.name = loss
    config.optim.name = optim
    config.optim.learning_rate = 0.01
    config.optim.warmup_steps = 0
    config.num_train_steps = 10
    return config


def train_step(run, state, local_batch):
    """One step of `run` (an Engine) from a healthy start: (state, metrics)."""
    state, metrics, _ = run.train_step(state, run.mesh.global_batch(local_batch), steps.healthy())
    return state, metrics


def batch(seed, n=16, classes=4):
    rng = np.random.default_rng(seed)
    return {
        "image": rng.normal(size=(n, 32, 16, 3)).astype(np.float32),
        "label": np.repeat(np.arange(classes), n // classes).astype(np.int32),
        "modality": np.zeros(n, np.int32),
    }


# The longest float32 sums of a step on `batch()`: conv1's kernel gradient and bn1's batch
# statistics, over 16 images x 16 x 8 output positions (reduction_order.py: two orders of a
# sum differ by at most sum_rtol(n) of the sum of its terms' magnitudes).
LONGEST_SUM = 16 * 16 * 8
# After two momentum steps the update holds (1 + momentum) x the first gradient plus the
# second (2.9 x one gradient's round-off); x5 because the second gradient is also taken at
# parameters that already differ by the first step's round-off, which the triplet loss's
# distances amplify. Measured worst leaf (2026-11-29, CPU): 1.7e-4 for triplet-momentum,
# 6e-6 for softmax-sgd, against 5 * sum_rtol(2048) = 1.2e-3.
TWO_STEPS_RTOL = 5 * sum_rtol(LONGEST_SUM)


# Adam divides by the root of the squared gradient, which turns float round-off in
# near-zero gradients into full-size steps, so the comparison uses SGD for every loss.
@pytest.mark.parametrize("loss,optim", [("softmax", "sgd"), ("triplet", "momentum")])
def test_eight_devices_equal_one_device(loss, optim):
    assert jax.device_count() == 8, "tests/conftest.py should provide 8 host devices"
    config = tiny_config(loss, optim)
    results = []
    for devices in (jax.devices()[:1], jax.devices()):
        run = Engine(config, num_classes=4, image_shape=(32, 16, 3), devices=devices)
        state = run.init_state()
        for step in range(2):
            state, metrics = train_step(run, state, batch(step))
        results.append((jax.device_get(state), jax.device_get(metrics)))
    (one, m1), (eight, m8) = results
    fresh = jax.device_get(
        Engine(
            config, num_classes=4, image_shape=(32, 16, 3), devices=jax.devices()[:1]
        ).init_state()
    )
    # The second step's loss is a mean over the batch at parameters that differ by the first
    # step's round-off: the same bound, relative to the loss.
    np.testing.assert_allclose(m1["loss"], m8["loss"], rtol=TWO_STEPS_RTOL)
    assert_same_update(
        {"p": fresh.params, "s": fresh.model_state},
        {"p": one.params, "s": one.model_state},
        {"p": eight.params, "s": eight.model_state},
        rtol=TWO_STEPS_RTOL,
    )
    # The step really changed the parameters and the BN statistics.
    assert not np.allclose(
        fresh.model_state["batch_stats"]["backbone"]["bn1"]["mean"],
        one.model_state["batch_stats"]["backbone"]["bn1"]["mean"],
    )


def test_batchnorm_uses_global_batch_statistics():
    """A batch whose halves differ: per-device statistics would differ from global ones."""
    config = tiny_config()
    images = batch(0)["image"]
    images[8:] += 5.0  # Devices 4..7 see shifted images only.
    b = {**batch(0), "image": images}
    run = Engine(config, num_classes=4, image_shape=(32, 16, 3), devices=jax.devices())
    state, _ = train_step(run, run.init_state(), b)
    run1 = Engine(config, num_classes=4, image_shape=(32, 16, 3), devices=jax.devices()[:1])
    state1, _ = train_step(run1, run1.init_state(), b)
    np.testing.assert_allclose(
        jax.device_get(state.model_state["batch_stats"]["backbone"]["bn1"]["var"]),
        jax.device_get(state1.model_state["batch_stats"]["backbone"]["bn1"]["var"]),
        # A two-pass variance sums non-negative terms: round-off relative to the variance.
        rtol=sum_rtol(LONGEST_SUM),
    )


def test_learning_rate_schedule_warmup_then_cosine():
    optim = config_lib.default_config().optim
    optim.learning_rate, optim.warmup_steps, optim.schedule = 0.1, 10, "cosine"
    schedule = optimizers.learning_rate_schedule(optim, 110)
    assert float(schedule(0)) == 0.0
    # float32 learning rates vs decimal ones (0.05 is not exact in float32): rtol 1e-6.
    np.testing.assert_allclose(float(schedule(5)), 0.05, rtol=1e-6)
    np.testing.assert_allclose(float(schedule(10)), 0.1, rtol=1e-6)
    # Half-way through the 100 cosine steps: 0.1 * (1 + cos(pi/2)) / 2.
    np.testing.assert_allclose(float(schedule(60)), 0.05, rtol=1e-5)
    np.testing.assert_allclose(float(schedule(110)), 0.0, atol=1e-8)


def test_weight_decay_only_on_kernels():
    optim = ml_collections.ConfigDict(config_lib.default_config().optim.to_dict())
    optim.name, optim.momentum, optim.weight_decay = "momentum", 0.0, 0.5
    tx = optimizers.create_optimizer(optim, lambda step: 1.0)
    params = {"kernel": np.ones((2, 2), np.float32), "bias": np.ones((2,), np.float32)}
    zeros = jax.tree.map(np.zeros_like, params)
    updates, _ = tx.update(zeros, tx.init(params), params)
    # SGD with lr 1: update = -(grad + wd * w) for kernels, -grad for biases.
    np.testing.assert_allclose(updates["kernel"], -0.5 * np.ones((2, 2)))
    np.testing.assert_allclose(updates["bias"], np.zeros(2))


@pytest.mark.parametrize("update", ["ema", "sgd"])
def test_distance_head_trains_centres_on_eight_devices_as_on_one(update):
    """Tekeli & Can's distance head: EMA centres (a mutable collection) or SGD centres."""
    config = tiny_config()
    config.model.head = "distance"
    config.model.distance.center_update = update
    results = []
    for devices in (jax.devices()[:1], jax.devices()):
        run = Engine(config, num_classes=4, image_shape=(32, 16, 3), devices=devices)
        state = run.init_state()
        before = jax.device_get(state)
        state, metrics = train_step(run, state, batch(0))
        results.append((before, jax.device_get(state)))
    (before, one), (_, eight) = results

    def centres(state):
        if update == "ema":  # A mutable collection, updated by the forward pass.
            return state.model_state["centers"]["distance_scores"]["centers"]
        return state.params["distance_scores"]["centers"]  # Parameters, updated by SGD.

    assert not np.allclose(centres(before), centres(one))
    # One step: the centres' update sums features whose BatchNorm statistics sum 2048 terms.
    assert_same_update(
        centres(before), centres(one), centres(eight), sum_rtol(LONGEST_SUM), stored_roundings=1
    )


@pytest.mark.parametrize("feature", ["", "pooled"])
def test_softmax_plus_triplet_on_the_configured_features(feature):
    """losses.compose = NumPy cross-entropy on the logits + brute-force batch-hard triplet on
    the embedding ('') or on the pooled features (config.loss.triplet_feature)."""
    from test_losses import brute_force_batch_hard

    rng = np.random.default_rng(3)
    labels = np.array([0, 0, 1, 1, 2, 2, 0, 1], np.int32)
    embedding = rng.normal(size=(8, 5)).astype(np.float32)
    intermediates = {
        "pooled": rng.normal(size=(8, 7)).astype(np.float32),
        "logits": rng.normal(size=(8, 3)).astype(np.float32),
    }
    config = tiny_config("softmax+triplet").loss
    config.triplet_feature = feature
    total, metrics = losses.compose(config, embedding, intermediates, labels)
    logits = intermediates["logits"].astype(np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    ce = -log_probs[np.arange(8), labels].mean()
    x = intermediates["pooled"] if feature else embedding
    trip = brute_force_batch_hard(x, labels, margin=0.5, soft_margin=False)
    # float32 losses vs float64 on the same logits / features: sum order (rtol 1e-5).
    np.testing.assert_allclose(float(metrics["softmax_loss"]), ce, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["triplet_loss"]), trip, rtol=1e-5)
    np.testing.assert_allclose(float(total), ce + trip, rtol=1e-5)


def test_unknown_triplet_feature_names_the_key():
    config = tiny_config("triplet").loss
    config.triplet_feature = "poold"
    with pytest.raises(ValueError, match="config.loss.triplet_feature='poold'"):
        losses.compose(config, np.zeros((4, 2), np.float32), {"pooled": None}, np.zeros(4))


def test_validation_score_is_zero_for_a_collapsed_embedding():
    config = config_lib.default_config()  # RGB + depth: the two cross-modal pairs count.
    results = {
        "Q:rgb G:depth": {"mAP": 0.2, "collapsed": False},
        "Q:depth G:rgb": {"mAP": 0.4, "collapsed": False},
        "Q:rgb G:rgb": {"mAP": 0.9, "collapsed": False},
    }
    assert experiment.validation_score(config, results) == pytest.approx(0.3)
    results["Q:depth G:rgb"] = {"mAP": 0.09, "collapsed": True}  # chance by tie-breaking
    assert experiment.validation_score(config, results) == 0.0
