"""Tests for jaxreid.losses against NumPy references and hand-worked numbers."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxreid.losses import batch_hard_triplet, mse_distillation, softmax_cross_entropy


def brute_force_batch_hard(x, labels, margin, soft_margin):
    """Triple loop in float64: for each anchor, all positives, all negatives."""
    x = np.asarray(x, np.float64)
    n = len(x)
    losses = []
    for a in range(n):
        d_ap, d_an = None, None
        for p in range(n):
            if p != a and labels[p] == labels[a]:
                d = math.sqrt(sum((x[a, k] - x[p, k]) ** 2 for k in range(x.shape[1])))
                d_ap = d if d_ap is None else max(d_ap, d)
        for q in range(n):
            if labels[q] != labels[a]:
                d = math.sqrt(sum((x[a, k] - x[q, k]) ** 2 for k in range(x.shape[1])))
                d_an = d if d_an is None else min(d_an, d)
        if d_ap is None or d_an is None:
            continue
        if soft_margin:
            losses.append(math.log1p(math.exp(d_ap - d_an)))
        else:
            losses.append(max(d_ap - d_an + margin, 0.0))
    return sum(losses) / len(losses) if losses else 0.0


LABEL_LAYOUTS = {
    "pk_4x3": [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3],
    "shuffled_uneven": [5, 2, 5, 9, 2, 2, 9, 5, 7, 7, 2, 9],
    "with_singleton": [0, 0, 1, 1, 1, 2, 3, 3, 0, 4, 4, 1],  # label 2 has one sample
    "two_ids": [1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 1, 0],
}


@pytest.mark.parametrize("layout", sorted(LABEL_LAYOUTS))
@pytest.mark.parametrize("soft_margin", [False, True])
def test_batch_hard_matches_brute_force(layout, soft_margin):
    labels = np.array(LABEL_LAYOUTS[layout])
    rng = np.random.default_rng(sorted(LABEL_LAYOUTS).index(layout))
    for scale in (0.1, 1.0):  # small scale => many active hinges
        x = (rng.normal(size=(len(labels), 5)) * scale).astype(np.float32)
        got = float(
            batch_hard_triplet(
                jnp.asarray(x), jnp.asarray(labels), margin=0.5, soft_margin=soft_margin
            )
        )
        want = brute_force_batch_hard(x, labels, 0.5, soft_margin)
        # float32 loss vs float64 brute force over 6 x 6 distances: a few ulp (rtol 1e-5).
        assert got == pytest.approx(want, rel=1e-5, abs=1e-6)


def test_batch_hard_hand_worked_example():
    # 1-D embeddings 0, 1, 3, 7 with labels a, a, b, b and margin 0.5:
    #   anchor 0: d_ap = 1, d_an = min(3, 7) = 3 -> [1 - 3 + 0.5]_+ = 0
    #   anchor 1: d_ap = 1, d_an = min(2, 6) = 2 -> [1 - 2 + 0.5]_+ = 0
    #   anchor 3: d_ap = 4, d_an = min(3, 2) = 2 -> [4 - 2 + 0.5]_+ = 2.5
    #   anchor 7: d_ap = 4, d_an = min(7, 6) = 6 -> [4 - 6 + 0.5]_+ = 0
    #   mean = 2.5 / 4 = 0.625
    x = jnp.array([[0.0], [1.0], [3.0], [7.0]])
    labels = jnp.array([0, 0, 1, 1])
    assert float(batch_hard_triplet(x, labels, margin=0.5)) == pytest.approx(0.625)
    # Soft margin: log(1 + e^-2), log(1 + e^-1), log(1 + e^2), log(1 + e^-2)
    #   = 0.126928, 0.313262, 2.126928, 0.126928 -> mean 0.673511
    assert float(batch_hard_triplet(x, labels, soft_margin=True)) == pytest.approx(
        0.6735114, abs=1e-6
    )
    # Adding 10 with a label of its own: it has no positive, so it is not an anchor, but
    # it is a negative for the others (anchor 7 now has d_an = 3 -> 4 - 3 + 0.5 = 1.5):
    #   (0 + 0 + 2.5 + 1.5) / 4 = 1.0
    x5 = jnp.array([[0.0], [1.0], [3.0], [7.0], [10.0]])
    labels5 = jnp.array([0, 0, 1, 1, 2])
    assert float(batch_hard_triplet(x5, labels5, margin=0.5)) == pytest.approx(1.0)
    # Margin 2: anchor 0: 1 - 3 + 2 = 0; anchor 1: 1 - 2 + 2 = 1; anchor 3: 4 - 2 + 2 = 4;
    # anchor 7: [4 - 6 + 2]_+ = 0 -> 5 / 4 = 1.25.
    assert float(batch_hard_triplet(x, labels, margin=2.0)) == pytest.approx(1.25)


def test_batch_hard_no_valid_anchor_is_zero():
    x = jnp.arange(8.0).reshape(4, 2)
    assert float(batch_hard_triplet(x, jnp.array([0, 1, 2, 3]))) == 0.0  # no positives
    assert float(batch_hard_triplet(x, jnp.array([4, 4, 4, 4]))) == 0.0  # no negatives


def test_batch_hard_gradients_finite_when_embeddings_coincide():
    x = jnp.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [3.0, -1.0], [3.0, -1.0]])
    labels = jnp.array([0, 0, 1, 1, 2])  # coinciding positives and coinciding negatives
    for soft in (False, True):
        value, grad = jax.value_and_grad(lambda e: batch_hard_triplet(e, labels, soft_margin=soft))(
            x
        )
        assert np.isfinite(float(value))
        assert np.all(np.isfinite(np.asarray(grad)))
    all_same = jnp.ones((4, 3))
    grad = jax.grad(lambda e: batch_hard_triplet(e, jnp.array([0, 0, 1, 1])))(all_same)
    assert np.all(np.isfinite(np.asarray(grad)))
    # All embeddings at one point: d_ap = d_an = 0, loss = margin (Hafner 2018 §4.3.2).
    assert float(batch_hard_triplet(all_same, jnp.array([0, 0, 1, 1]))) == pytest.approx(0.5)


def test_batch_hard_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 3))
    labels = np.array([0, 0, 1, 1, 2, 2])
    grad = np.asarray(
        jax.grad(lambda e: batch_hard_triplet(e, jnp.asarray(labels)))(jnp.asarray(x, jnp.float32))
    )
    eps = 1e-4
    numeric = np.zeros_like(x)
    for i in range(x.shape[0]):
        for k in range(x.shape[1]):
            plus, minus = x.copy(), x.copy()
            plus[i, k] += eps
            minus[i, k] -= eps
            numeric[i, k] = (
                brute_force_batch_hard(plus, labels, 0.5, False)
                - brute_force_batch_hard(minus, labels, 0.5, False)
            ) / (2 * eps)
    # Central differences (eps 1e-4) of a float64 brute force vs float32 grads; a kink is O(1).
    np.testing.assert_allclose(grad, numeric, atol=1e-3)


def test_softmax_cross_entropy_matches_numpy():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(6, 4)) * 3
    labels = np.array([0, 3, 1, 1, 2, 0])
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    want = -np.mean(log_softmax[np.arange(6), labels])
    got = softmax_cross_entropy(jnp.asarray(logits, jnp.float32), jnp.asarray(labels))
    # float32 log-softmax of 4 logits vs float64: a few ulp (rtol 1e-5).
    assert float(got) == pytest.approx(want, rel=1e-5)
    # Hand-worked: uniform logits over 4 classes -> log 4 (float32: one rounding, rel 1e-6).
    assert float(softmax_cross_entropy(jnp.zeros((2, 4)), jnp.array([1, 2]))) == (
        pytest.approx(math.log(4))
    )


def test_mse_distillation_matches_numpy():
    rng = np.random.default_rng(2)
    student = rng.normal(size=(5, 8)).astype(np.float32)
    teacher = rng.normal(size=(5, 8)).astype(np.float32)
    squared = (student.astype(np.float64) - teacher) ** 2
    s, t = jnp.asarray(student), jnp.asarray(teacher)
    # float32 sums of 40 squares vs float64: sum order, ~1e-6 (rel 1e-5).
    assert float(mse_distillation(s, t)) == pytest.approx(squared.sum(), rel=1e-5)
    assert float(mse_distillation(s, t, reduction="sum")) == pytest.approx(squared.sum(), rel=1e-5)
    assert float(mse_distillation(s, t, reduction="per_sample")) == pytest.approx(
        squared.sum(axis=1).mean(), rel=1e-5
    )
    assert float(mse_distillation(s, t, reduction="mean")) == pytest.approx(
        squared.mean(), rel=1e-5
    )
    # Hand-worked: student [[1, 2], [0, 0]], teacher [[0, 0], [0, 1]]:
    # squared errors 1, 4, 0, 1 -> sum 6, per-sample (5 + 1) / 2 = 3, mean 6 / 4 = 1.5.
    a, b = jnp.array([[1.0, 2.0], [0.0, 0.0]]), jnp.array([[0.0, 0.0], [0.0, 1.0]])
    assert float(mse_distillation(a, b)) == 6.0
    assert float(mse_distillation(a, b, reduction="per_sample")) == 3.0
    assert float(mse_distillation(a, b, reduction="mean")) == 1.5
    # The teacher is a constant target: no gradient flows into it.
    grad_teacher = jax.grad(lambda t_: mse_distillation(a, t_))(b)
    np.testing.assert_array_equal(grad_teacher, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="reduction"):
        mse_distillation(a, b, reduction="avg")
    with pytest.raises(ValueError, match="shape"):
        mse_distillation(a, b[:1])


def test_triplet_losses_refuse_mismatched_shapes_by_name():
    from jaxreid.losses import weighted_regularized_triplet

    x, labels = jnp.zeros((4, 3)), jnp.array([0, 0, 1, 1])
    for loss in (batch_hard_triplet, weighted_regularized_triplet):
        with pytest.raises(
            ValueError,
            match=rf"{loss.__name__}: expected embeddings \[N, D\] and labels \[N\], got \(4, 3\) and \(3,\)",
        ):
            loss(x, labels[:3])
        with pytest.raises(ValueError, match=r"got \(4,\) and \(4,\)"):
            loss(x[:, 0], labels)
        with pytest.raises(ValueError, match="config.loss.mining='cross_modal' needs the modality"):
            loss(x, labels, mining="cross_modal")


@pytest.mark.parametrize("weight", [None, 0.0, 0.25, 3.0])
def test_compose_metric_weight_hand_worked(weight):
    """config.loss.metric_weight w: loss = softmax + w * triplet (w = 1 when absent)."""
    from types import SimpleNamespace

    from jaxreid.losses import compose

    loss_config = SimpleNamespace(
        name="softmax+triplet",
        triplet_margin=0.5,
        soft_margin=False,
        triplet_feature="",
        mining="batch",
        label_smoothing=0.0,
    )
    if weight is not None:
        loss_config.metric_weight = weight
    # Uniform logits over 2 classes: softmax loss log 2. 1-D embeddings 0, 1 | 3, 5 (labels
    # 0, 0 | 1, 1), margin 0.5: anchors' [d_ap - d_an + 0.5]_+ = [1-3+.5], [1-2+.5],
    # [2-2+.5], [2-4+.5] -> 0, 0, 0.5, 0; mean 0.125.
    embedding = jnp.array([[0.0], [1.0], [3.0], [5.0]])
    labels = jnp.array([0, 0, 1, 1])
    total, metrics = compose(loss_config, embedding, {"logits": jnp.zeros((4, 2))}, labels)
    w = 1.0 if weight is None else weight
    # float32 log 2 and sums of exact binary fractions: one rounding (rel 1e-6).
    assert float(total) == pytest.approx(math.log(2) + w * 0.125, rel=1e-6)
    assert float(metrics["loss"]) == float(total)
    assert float(metrics["triplet_loss"]) == pytest.approx(0.125, rel=1e-6)  # unweighted
    assert float(metrics["softmax_loss"]) == pytest.approx(math.log(2), rel=1e-6)


def test_metric_weight_validated():
    from jaxreid import config as config_lib

    config = config_lib.default_config()
    config.loss.metric_weight = -0.5
    with pytest.raises(config_lib.ConfigError, match="loss.metric_weight"):
        config_lib.validate(config)
