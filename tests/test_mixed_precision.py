"""Mixed precision: bfloat16 training tracks float32; dynamic loss scaling for float16."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxreid import losses, mixed_precision
from jaxreid.models import create_model

NUM_CLASSES = 8
BATCH = 16  # P = 8 identities x K = 2 images.
SHAPE = (BATCH, 64, 32, 3)


def _model(dtype):
    return create_model(
        "resnet18",
        num_classes=NUM_CLASSES,
        embedding_size=16,
        dropout_rate=0.0,  # No dropout noise, so both runs see the same function.
        width=8,
        dtype=dtype,
    )


def _data():
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.normal(size=SHAPE), jnp.float32)
    labels = jnp.asarray(np.arange(BATCH) // 2, jnp.int32)
    return images, labels


@functools.lru_cache(maxsize=None)
def _step_fn(dtype, triplet):
    """A jitted SGD step of softmax cross-entropy (+ batch-hard triplet if `triplet`), written
    here from the public pieces (models, losses, optax), not jaxreid.train."""
    model = _model(dtype)
    optimizer = optax.sgd(0.05, momentum=0.9)

    def loss_fn(params, batch_stats, images, labels):
        (_, inter), updates = model.apply(
            {"params": params, "batch_stats": batch_stats},
            images,
            train=True,
            mutable=["batch_stats"],
        )
        loss = losses.softmax_cross_entropy(inter["logits"], labels)
        if triplet:
            loss = loss + losses.batch_hard_triplet(inter["pooled"], labels, margin=0.5)
        return loss, (updates["batch_stats"], inter)

    @jax.jit
    def step(params, batch_stats, opt_state, images, labels):
        (loss, (batch_stats, inter)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, batch_stats, images, labels
        )
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), batch_stats, opt_state, loss, grads, inter

    return model, optimizer, step


def _train(dtype, images, steps=3, triplet=False):
    """`steps` SGD steps from one initialisation (key 0 for every dtype).

    Returns ((first loss, first grads, first intermediates), params, batch_stats, initial params).
    """
    model, optimizer, step = _step_fn(dtype, triplet)
    _, labels = _data()
    variables = model.init(jax.random.key(0), images, train=False)
    params, batch_stats = variables["params"], variables["batch_stats"]
    opt_state = optimizer.init(params)
    first = None
    for _ in range(steps):
        params, batch_stats, opt_state, loss, grads, inter = step(
            params, batch_stats, opt_state, images, labels
        )
        if first is None:
            first = (loss, grads, inter)
    return first, params, batch_stats, variables["params"]


def _flat(tree):
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])


def _relative(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.fixture(scope="module")
def runs():
    images, _ = _data()
    # The float32 network's own sensitivity to one bfloat16-sized rounding: every input
    # pixel multiplied by (1 +- 2^-8), bfloat16's relative spacing (8 significant bits).
    signs = np.random.default_rng(1).choice([-1.0, 1.0], size=images.shape)
    perturbed = images * jnp.asarray(1.0 + 2.0**-8 * signs, jnp.float32)
    return {
        "float32": _train("float32", images),
        "bfloat16": _train("bfloat16", images),
        "float32_perturbed": _train("float32", perturbed),
    }


def test_bfloat16_training_tracks_float32(runs):
    (loss32, grads32, inter32), params32, stats32, init = runs["float32"]
    (loss16, grads16, inter16), params16, stats16, _ = runs["bfloat16"]
    (_, grads_p, _), params_p, stats_p, _ = runs["float32_perturbed"]

    # Loss values: a mean over the batch of smooth functions of the logits; each bf16 op
    # adds relative error <= 2^-8, mostly averaging out; 2^-8 overall is generous (measured
    # ~1e-5). The batch-hard triplet loss is compared as a value only: its hardest
    # positive / negative can switch under a rounding, so its gradient is not comparable.
    assert abs(float(loss16) - float(loss32)) <= 2.0**-8 * abs(float(loss32))
    triplet = lambda inter: float(losses.batch_hard_triplet(inter["pooled"], _data()[1]))
    assert abs(triplet(inter16) - triplet(inter32)) <= 0.02 * triplet(inter32)

    # Gradients and the 3-step update. A first-order estimate (sqrt(40 ops on a forward +
    # backward path) * 2^-8 ~ 0.025) understates the error of this tiny network: BatchNorm
    # over 16 samples and the near-zero classifier init (N(0, 0.001^2)) make its backbone
    # gradient a difference of nearly equal terms. So the bound is calibrated on float32
    # itself: bf16 may differ from float32 by at most 3x as much as float32 differs from
    # itself when only its *input* is perturbed by one bf16 rounding (measured: bf16 0.088
    # gradient / 0.098 update, perturbed float32 0.070 / 0.095). Checked to fail: kernels
    # stored in bf16 (param_dtype). Not detectable here: BatchNorm statistics computed from
    # the bf16 activations without the float32 cast (jnp.mean accumulates in float32 anyway);
    # the dtype test below pins what must stay float32.
    flat32 = _flat(grads32)
    grad_noise = _relative(_flat(grads_p), flat32)
    assert _relative(_flat(grads16), flat32) < 3 * grad_noise
    update32 = _flat(params32) - _flat(init)
    update_noise = _relative(_flat(params_p) - _flat(init), update32)
    assert _relative(_flat(params16) - _flat(init), update32) < 3 * update_noise
    stats_noise = np.max(np.abs(_flat(stats_p) - _flat(stats32)))
    # Bound: 3x what a float32 run perturbed at rounding level moves the statistics.
    assert np.max(np.abs(_flat(stats16) - _flat(stats32))) < 3 * stats_noise


def test_bfloat16_keeps_parameters_statistics_and_outputs_float32(runs):
    (_, grads16, inter), params16, stats16, _ = runs["bfloat16"]
    for tree in (params16, stats16, grads16):
        assert {leaf.dtype for leaf in jax.tree.leaves(tree)} == {jnp.dtype(jnp.float32)}
    for key in ("embedding", "logits", "pooled"):
        assert inter[key].dtype == jnp.float32, key
    # ... while the convolutions really ran in bfloat16.
    assert inter["layer4"].dtype == jnp.bfloat16


@pytest.mark.parametrize("head", ["linear", "distance"])
def test_float16_outputs_are_float32(head):
    model = create_model(
        "resnet18", num_classes=NUM_CLASSES, embedding_size=16, width=4, dtype="float16", head=head
    )
    images, labels = _data()
    variables = model.init(jax.random.key(0), images, train=False)
    embedding, inter = model.apply(variables, images, train=False, labels=labels)
    assert embedding.dtype == jnp.float32 and inter["logits"].dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(inter["logits"])))
    assert inter["stem"].dtype == jnp.float16


def test_compute_dtype_names():
    assert mixed_precision.compute_dtype("bfloat16") == jnp.bfloat16
    assert mixed_precision.needs_loss_scaling("float16")
    assert not mixed_precision.needs_loss_scaling("bfloat16")
    with pytest.raises(ValueError, match="config.model.dtype='half'"):
        mixed_precision.compute_dtype("half")


def test_loss_scaling_recovers_gradients_that_underflow_in_float16():
    # d/dw sum(w * a * a) = a^2 = 9e-8: below float16's smallest normal (6.1e-5) and only
    # 1.5 times its smallest subnormal (6e-8), so the backward pass in float16 loses it.
    a = jnp.float16(3e-4)

    def loss(w):
        return jnp.sum((w.astype(jnp.float16) * a) * a).astype(jnp.float32)

    w = jnp.ones((3,), jnp.float32)
    true_grad = float(np.float32(np.float16(3e-4)) ** 2)
    plain = np.asarray(jax.grad(loss)(w))
    assert np.all(np.abs(plain - true_grad) > 0.2 * true_grad)

    grad_at = lambda scale: mixed_precision.unscale(
        jax.grad(lambda w: mixed_precision.scale_loss(loss(w), scale))(w), scale
    )
    # The default initial scale 2^16 overflows here: the cotangent 2^16 entering the float16
    # part exceeds float16's largest value 65504. That is the overflow dynamic scaling
    # detects (all_finite False) and answers by halving the scale.
    scale = mixed_precision.init_loss_scale()
    assert not bool(mixed_precision.all_finite(grad_at(scale)))
    scale = mixed_precision.adjust(scale, jnp.asarray(False))  # 2^15: a^2 * S = 2.9e-3.
    grad = grad_at(scale)
    assert bool(mixed_precision.all_finite(grad))
    assert grad.dtype == jnp.float32
    # float16 rounding of two products: relative error <= 2 * 2^-11.
    np.testing.assert_allclose(np.asarray(grad), true_grad, rtol=1e-3)


def test_dynamic_loss_scale_schedule_hand_worked():
    state = mixed_precision.init_loss_scale(8.0)
    adjust = lambda s, ok: mixed_precision.adjust(s, jnp.asarray(ok), growth_period=2)
    history = []
    for finite in (True, True, True, False, False, False, False, True):
        state = adjust(state, finite)
        history.append((float(state.scale), int(state.good_steps)))
    # Two finite steps double the scale (8 -> 16), each overflow halves it and resets the
    # count, never below min_scale = 1.
    assert history == [
        (8.0, 1),
        (16.0, 0),
        (16.0, 1),
        (8.0, 0),
        (4.0, 0),
        (2.0, 0),
        (1.0, 0),
        (1.0, 1),
    ]


def test_all_finite_and_select_tree():
    good = {"a": jnp.ones(2), "b": (jnp.zeros(3, jnp.float16),)}
    assert bool(mixed_precision.all_finite(good))
    assert not bool(mixed_precision.all_finite({"a": jnp.array([1.0, jnp.inf])}))
    assert not bool(mixed_precision.all_finite({"a": jnp.ones(1), "b": jnp.array([jnp.nan])}))
    assert bool(mixed_precision.all_finite({}))
    new, old = {"p": jnp.ones(2)}, {"p": jnp.zeros(2)}
    np.testing.assert_array_equal(mixed_precision.select_tree(jnp.asarray(False), new, old)["p"], 0)
    np.testing.assert_array_equal(mixed_precision.select_tree(jnp.asarray(True), new, old)["p"], 1)


# --- float16 in the train step (jaxreid.training.steps with dynamic_loss_scaling) -------------


def _float16_engine(dtype="float16"):
    from jaxreid import config as config_lib
    from jaxreid.training.engine import Engine

    config = config_lib.default_config()
    config.model.width = 8
    config.model.embedding_size = 16
    config.model.dropout_rate = 0.0
    config.model.dtype = dtype
    config.data.image_size = (32, 16)
    config.optim.learning_rate = 0.05
    config.optim.warmup_steps = 0
    config.num_train_steps = 100
    return Engine(config, num_classes=4, image_shape=(32, 16, 3), devices=jax.devices()[:1])


def _batch(images):
    return {
        "image": np.asarray(images, np.float32),
        "label": np.repeat(np.arange(4), 4).astype(np.int32),
        "modality": np.zeros(16, np.int32),
    }


def _with_scale(run, state, scale):
    loss_scale = mixed_precision.init_loss_scale(scale)
    opt_state = state.opt_state._replace(loss_scale=loss_scale)
    return jax.device_put(state.replace(opt_state=opt_state), run.mesh.replicated)


def _images(seed=0):
    return np.random.default_rng(seed).normal(size=(16, 32, 16, 3)).astype(np.float32)


def test_float16_step_skips_overflows_and_stops_only_at_scale_one():
    """NaN images overflow at every scale: scale 4 -> 2 -> 1 with the parameters, optimiser
    state and BatchNorm statistics untouched and `health` clean; at scale 1 the third step
    is a divergence: health names step 3 (loss, gradients and the NaN batch statistics) and
    the state stays at step 2."""
    from jaxreid.training import steps

    run = _float16_engine()
    start = _with_scale(run, run.init_state(), 4.0)
    assert float(mixed_precision.find_loss_scale(start.opt_state).scale) == 4.0
    bad = run.mesh.global_batch(_batch(np.full((16, 32, 16, 3), np.nan)))
    state, health = start, steps.healthy()
    start = jax.tree.map(np.array, start)  # the step donates its input state
    for expected_scale in (2.0, 1.0):
        state, metrics, health = run.train_step(state, bad, health)
        assert float(mixed_precision.find_loss_scale(state.opt_state).scale) == expected_scale
        assert steps.describe_health(health) is None
    assert int(state.step) == 2
    for a, b in zip(jax.tree.leaves(start.variables), jax.tree.leaves(state.variables)):
        np.testing.assert_array_equal(a, np.asarray(b))
    inner = lambda s: jax.tree.leaves(s.opt_state.inner_state)
    for a, b in zip(inner(start), inner(state)):
        np.testing.assert_array_equal(a, np.asarray(b))
    state, _, health = run.train_step(state, bad, health)
    what = "loss, gradients, model state (BatchNorm statistics)"  # NaN batch statistics too
    assert steps.describe_health(health) == (3, what)
    assert int(state.step) == 2


def test_float16_step_finds_a_scale_and_tracks_float32():
    """From scale 2^40 the float16 backward pass overflows; each overflow halves the scale
    and skips the step, until the first applied update. That update (float16 activations,
    float32 parameters) equals the float32 step's within 3x the float32 network's own change
    under a float16-sized rounding of its input (every pixel x (1 +- 2^-11), float16's
    relative spacing), as the bfloat16 test above."""
    from jaxreid.training import steps

    images = _images()
    signs = np.random.default_rng(1).choice([-1.0, 1.0], size=images.shape)
    updates = {}
    for name, dtype, x in [
        ("float32", "float32", images),
        ("perturbed", "float32", images * (1.0 + 2.0**-11 * signs)),
        ("float16", "float16", images),
    ]:
        run = _float16_engine(dtype)
        state = run.init_state()
        if dtype == "float16":
            state = _with_scale(run, state, 2.0**40)
        start = _flat(state.params)
        batch = run.mesh.global_batch(_batch(x))
        skipped = 0
        while True:
            state, metrics, health = run.train_step(state, batch, steps.healthy())
            assert steps.describe_health(health) is None
            change = _flat(state.params) - start
            if np.any(change != 0):
                break
            skipped += 1
            assert skipped < 40, "no finite float16 step from scale 2^40 down to 2^1"
        updates[name] = change
        if dtype == "float16":
            scale = float(mixed_precision.find_loss_scale(state.opt_state).scale)
            assert skipped > 0 and scale == 2.0 ** (40 - skipped)  # halved once per overflow
            assert float(metrics["loss_scale"]) == scale  # the scale the applied step used
            assert np.isfinite(float(metrics["loss"]))
        else:
            assert skipped == 0 and "loss_scale" not in metrics
    tolerance = 3 * _relative(updates["perturbed"], updates["float32"])
    assert _relative(updates["float16"], updates["float32"]) <= tolerance
