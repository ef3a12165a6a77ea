"""Cross-modal distillation (jaxreid.distill): freezing, BatchNorm modes, targets, loss, a run."""

import functools
import json
import logging
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from jaxreid import models
from jaxreid.training import distillation as distill
from jaxreid.training import distillation_targets as targets_lib
from jaxreid.training import freezing, optimizers, steps
from jaxreid.training.engine import Engine
from jaxreid.training.state import TrainState
from jaxreid.config import default_config, load_config
from jaxreid.data import preprocessing
from jaxreid.data.image_set import ImageSet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = (32, 16, 3)


def tiny_model(backbone="resnet18", dropout_rate=0.5, embedding_size=16):
    return models.create_model(
        backbone, num_classes=5, embedding_size=embedding_size, dropout_rate=dropout_rate, width=8
    )


def init_variables(model, seed=0):
    key = jax.random.key(seed)
    variables = model.init({"params": key, "dropout": key}, jnp.zeros((1, *IMAGE)), train=False)
    variables = dict(flax_unfreeze(variables))
    return variables.pop("params"), variables


def flax_unfreeze(x):
    import flax

    return flax.core.unfreeze(x)


def flat(tree):
    """{'a/b/c': np.ndarray} of a nested dict pytree."""
    return {
        "/".join(k.key for k in path): np.asarray(v)
        for path, v in jax.tree_util.tree_flatten_with_path(tree)[0]
    }


def sgd(learning_rate=0.1, weight_decay=5e-4):
    optim = default_config().optim
    optim.learning_rate, optim.weight_decay, optim.warmup_steps = learning_rate, weight_decay, 0
    optim.schedule = "constant"
    return optim


def frozen_mask(model, params, freeze_from, backbone="resnet18"):
    index = freezing.freeze_index(model, freeze_from, backbone)
    return freezing.frozen_mask(model, params, index, freeze_from)


def make_step(model, params, freeze_from, frozen_bn, reduction="sum", optim=None):
    index = freezing.freeze_index(model, freeze_from, "resnet18")
    mask = freezing.frozen_mask(model, params, index, freeze_from)
    schedule = optax.constant_schedule(0.1)
    tx = optimizers.masked_optimizer(optim or sgd(), schedule, mask)
    compiled = jax.jit(
        functools.partial(
            steps.distill_step,
            model=model,
            tx=tx,
            schedule=schedule,
            frozen=mask,
            frozen_from=index,
            frozen_bn=frozen_bn,
            reduction=reduction,
            dropout_key=jax.random.key(7),
        )
    )

    def step(state, batch):
        state, metrics, _ = compiled(state, batch, steps.healthy())
        return state, metrics

    return step, tx, mask


# --- freezing points ---------------------------------------------------------------------------


def test_auto_freeze_point_follows_the_authors_code():
    # resnet18: everything from layer3 on (layer3.0.conv1 is the first 256-channel parameter).
    params = jax.eval_shape(lambda: init_variables(tiny_model())[0])
    mask = flat(frozen_mask(tiny_model(), params, "auto"))
    frozen_prefixes = ("backbone/layer3", "backbone/layer4", "embedding", "classifier")
    for name, frozen in mask.items():
        assert bool(frozen) == name.startswith(frozen_prefixes), name
    # resnet50: from layer3_0/conv3 (the first 1024-channel parameter at width 64) on; the
    # block's conv1/bn1/conv2/bn2 stay trainable, its downsample (registered later) is frozen.
    params = jax.eval_shape(lambda: init_variables(tiny_model("resnet50"))[0])
    mask = flat(frozen_mask(tiny_model("resnet50"), params, "auto", "resnet50"))
    trainable_in_layer3_0 = {"conv1", "bn1", "conv2", "bn2"}
    for name, frozen in mask.items():
        parts = name.split("/")
        if name.startswith("backbone/layer3_0/"):
            expected = parts[2] not in trainable_in_layer3_0
        else:
            expected = name.startswith(frozen_prefixes)
        assert bool(frozen) == expected, name
    assert mask["backbone/layer3_0/downsample_conv/kernel"]


def test_freeze_points_by_name_and_errors():
    model = tiny_model()
    params = jax.eval_shape(lambda: init_variables(model)[0])
    none = flat(frozen_mask(model, params, "none"))
    assert not any(none.values())
    head = flat(frozen_mask(model, params, "embedding"))
    assert {n for n, f in head.items() if f} == {n for n in head if not n.startswith("backbone")}
    block = flat(frozen_mask(model, params, "layer2_1"))
    assert block["backbone/layer2_1/conv1/kernel"] and not block["backbone/layer2_0/conv2/kernel"]
    with pytest.raises(ValueError, match="layer3_0/conv3"):  # BasicBlocks have no conv3.
        frozen_mask(model, params, "layer3_0/conv3")
    with pytest.raises(ValueError, match="freeze_from='layer3_x'"):
        frozen_mask(model, params, "layer3_x")
    # A classification-layer embedding has no 'embedding' layer to freeze from.
    no_embedding = tiny_model(embedding_size=None)
    params = jax.eval_shape(lambda: init_variables(no_embedding)[0])
    with pytest.raises(ValueError, match="names no layer with parameters"):
        frozen_mask(no_embedding, params, "embedding")


def test_step1_trains_and_tests_the_source_modality_alone():
    config = default_config()
    config.data.modalities = ("rgb", "infrared")
    config.method = "distillation"
    config.distill.source_modality = "infrared"
    config.eval.val_pairs = (("rgb", "infrared"),)
    config.eval.test_protocol = "sysu"  # needs both modalities: Step I cannot use it
    step1 = distill.step1_config(config)
    assert tuple(step1.data.modalities) == ("infrared",)
    assert step1.eval.test_protocol == "pairs"
    assert tuple(step1.eval.val_pairs) == ()
    assert step1.method == "supervised"  # Step I is the supervised trainer's run.
    assert config.eval.test_protocol == "sysu"  # the caller's config is untouched


# --- the Step II update ------------------------------------------------------------------------


@pytest.mark.parametrize("frozen_bn", ["fixed", "update"])
def test_frozen_part_is_bit_identical_and_batchnorm_modes(frozen_bn):
    model = tiny_model()
    params, model_state = init_variables(model)
    step, tx, mask = make_step(model, params, "layer3", frozen_bn)
    rng = np.random.default_rng(0)
    state = TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        model_state=model_state,
        opt_state=tx.init(params),
    )
    before_params, before_stats = flat(params), flat(model_state["batch_stats"])
    for _ in range(2):
        batch = {
            "image": jnp.asarray(rng.normal(size=(8, *IMAGE)), jnp.float32),
            "teacher": jnp.asarray(rng.uniform(0, 2, size=(8, 16)), jnp.float32),
        }
        state, metrics = step(state, batch)
    assert np.isfinite(float(metrics["loss"]))
    after_params, after_stats = flat(state.params), flat(state.model_state["batch_stats"])
    frozen = flat(mask)
    for name, value in after_params.items():
        if frozen[name]:
            assert value.tobytes() == before_params[name].tobytes(), name
        else:
            assert not np.array_equal(value, before_params[name]), name
    frozen_stats = ("backbone/layer3", "backbone/layer4", "embedding_bn")
    for name, value in after_stats.items():
        if name.startswith(frozen_stats) and frozen_bn == "fixed":
            assert value.tobytes() == before_stats[name].tobytes(), name
        else:  # Trainable layers always, frozen ones in 'update' mode, track batch statistics.
            assert not np.array_equal(value, before_stats[name]), name


def test_fixed_frozen_layers_compute_the_teachers_inference_function():
    """With everything frozen and BN fixed, G's training-mode output is F's inference output."""
    model = tiny_model(embedding_size=None)  # Classification-layer embedding, after dropout.
    params, model_state = init_variables(model)
    step, tx, _ = make_step(model, params, "stem", "fixed", reduction="per_sample")
    images = jnp.asarray(np.random.default_rng(1).normal(size=(6, *IMAGE)), jnp.float32)
    reference, _ = model.apply({"params": params, **model_state}, images, train=False)
    teacher = np.asarray(reference) + 1.0
    state = TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        model_state=model_state,
        opt_state=tx.init(params),
    )
    _, metrics = step(state, {"image": images, "teacher": jnp.asarray(teacher)})
    # ||(F(x) + 1) - F(x)||^2 = D per sample, exactly when G == F in inference mode.
    np.testing.assert_allclose(float(metrics["per_sample_loss"]), 5.0, rtol=1e-5)


def image_set(modality, images, person_ids, frame_ids):
    n = len(images)
    return ImageSet(
        modality=modality,
        images=images,
        person_ids=np.asarray(person_ids, np.int32),
        camera_ids=np.ones(n, np.int32),
        frame_ids=np.asarray(frame_ids, object),
        file_index=np.arange(1, n + 1, dtype=np.int32),
        filenames=np.asarray([f"{modality}/{i}.png" for i in range(n)], object),
    )


def test_step2_loss_equals_numpy_mse_on_paired_embeddings():
    rng = np.random.default_rng(3)
    ids = np.repeat([10, 11, 12], 4)
    source = image_set(
        "depth",
        rng.integers(0, 256, (12, *IMAGE[:2], 1), dtype=np.uint8),
        ids,
        [f"f{i}" for i in range(12)],
    )
    # Target frames in another order, one of them without a pair and one unpaired ('').
    order = rng.permutation(12)
    frames = [f"f{i}" for i in order]
    frames[2], frames[5] = "", "other"
    target = image_set(
        "rgb", rng.integers(0, 256, (12, *IMAGE), dtype=np.uint8), ids[order], frames
    )
    source_embeddings = rng.normal(size=(12, 16)).astype(np.float32)  # F's, any values.
    keep, targets = targets_lib.paired_targets(target, source, source_embeddings)

    expected_keep, expected = [], []  # Brute-force pairing.
    for i in range(12):
        for j in range(12):
            if target.frame_ids[i] and target.frame_ids[i] == source.frame_ids[j]:
                expected_keep.append(i)
                expected.append(source_embeddings[j])
    np.testing.assert_array_equal(keep, expected_keep)
    np.testing.assert_array_equal(targets, np.stack(expected))

    config = default_config()
    config.batch.num_identities, config.batch.images_per_identity = 2, 4
    config.data.random_flip, config.data.pad_crop = False, 0  # To find each image again.
    norm = preprocessing.fit_normalization(target.images, "shared", "dataset")
    kept = target.select(keep)
    batch = next(targets_lib.step2_batches(kept, targets, norm, config, start_step=0, num_steps=1))
    normalized = preprocessing.normalize(kept.images, norm, "shared")
    teacher = []
    for row in batch["image"]:
        (match,) = [i for i in range(len(kept)) if np.array_equal(normalized[i], row)]
        pair = [j for j in range(12) if source.frame_ids[j] == kept.frame_ids[match]]
        teacher.append(source_embeddings[pair[0]])
    teacher = np.stack(teacher)
    np.testing.assert_array_equal(batch["teacher"], teacher)

    model = tiny_model(dropout_rate=0.0)
    params, model_state = init_variables(model)
    step, tx, _ = make_step(model, params, "none", "fixed", reduction="sum")
    state = TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        model_state=model_state,
        opt_state=tx.init(params),
    )
    _, metrics = step(
        state, {"image": jnp.asarray(batch["image"]), "teacher": jnp.asarray(batch["teacher"])}
    )
    (student, _), _ = model.apply(
        {"params": params, **model_state}, batch["image"], train=True, mutable=["batch_stats"]
    )
    squared = (np.asarray(student, np.float64) - teacher) ** 2
    # float32 loss (sum of 2 x D squares) vs float64: sum order, ~1e-6 (rtol 1e-5).
    np.testing.assert_allclose(float(metrics["loss"]), squared.sum(), rtol=1e-5)
    np.testing.assert_allclose(float(metrics["per_sample_loss"]), squared.sum(1).mean(), rtol=1e-5)


def test_class_mean_targets_are_per_identity_means():
    rng = np.random.default_rng(4)
    source_ids = np.array([1, 2, 1, 3, 2, 1, 3])
    source = image_set("infrared", np.zeros((7, 4, 2, 1), np.uint8), source_ids, [""] * 7)
    target_ids = np.array([3, 1, 4, 2, 1])  # Identity 4 has no source images.
    target = image_set("rgb", np.zeros((5, 4, 2, 3), np.uint8), target_ids, [""] * 5)
    embeddings = rng.normal(size=(7, 3)).astype(np.float32)
    assert targets_lib.resolve_targets("auto", target, source) == "class_mean"
    keep, targets = targets_lib.class_mean_targets(target, source, embeddings)
    np.testing.assert_array_equal(keep, [0, 1, 3, 4])
    for row, i in enumerate(keep):
        members = [j for j in range(7) if source_ids[j] == target_ids[i]]
        # float32 mean of <= 3 embeddings vs NumPy's float32 mean: sum order (rtol 1e-6).
        np.testing.assert_allclose(targets[row], np.mean(embeddings[members], axis=0), rtol=1e-6)
    with pytest.raises(ValueError, match="class_mean"):
        targets_lib.distillation_targets("paired", target, source, embeddings)


# --- end to end --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def quick_distill_config(data_dir, arg="quick"):
    config = load_config(f"configs/synthetic_distill.py:{arg}")
    config.data.data_dir = data_dir
    config.num_train_steps = 8
    config.eval_every_steps = config.checkpoint_every_steps = 4
    config.distill.num_train_steps = 8
    config.distill.eval_every_steps = 4
    config.distill.optim.learning_rate = 1e-3
    return config


def restore_raw(directory):
    manager = ocp.CheckpointManager(directory)
    step = max(manager.all_steps())
    state = manager.restore(step, args=ocp.args.StandardRestore())
    manager.close()
    return state


@pytest.fixture(scope="module")
def distilled(tmp_path_factory, data_dir):
    workdir = str(tmp_path_factory.mktemp("distill"))
    config = quick_distill_config(data_dir)
    return workdir, config, distill.train_and_evaluate(config, workdir)


def test_quick_distillation_writes_all_four_pairs(distilled, caplog):
    workdir, config, results = distilled
    pairs = {"Q:rgb G:depth", "Q:depth G:rgb", "Q:rgb G:rgb", "Q:depth G:depth"}
    for path in (
        os.path.join(workdir, "results.json"),
        os.path.join(workdir, "step2", "results.json"),
    ):
        with open(path) as f:
            on_disk = json.load(f)
        assert set(on_disk["test"]) == pairs
        for pair in pairs:
            r = on_disk["test"][pair]
            assert 0.0 <= r["mAP"] <= 1.0 and 0.0 <= r["rank1"] <= r["rank10"] <= 1.0
    with open(os.path.join(workdir, "results.md")) as f:
        table = f.read()
    for row in ("Q:RGB, G:D", "Q:D, G:RGB", "Q:RGB, G:RGB", "Q:D, G:D"):
        assert row in table
    assert results["targets"] == "paired" and results["source_modality"] == "depth"
    # Depth is embedded by F in both steps: the single-modal depth row is Step I's.
    with open(os.path.join(workdir, "step1", "results.json")) as f:
        step1 = json.load(f)
    assert set(step1["test"]) == {"Q:depth G:depth"}
    assert results["test"]["Q:depth G:depth"]["mAP"] == step1["test"]["Q:depth G:depth"]["mAP"]
    # G's tested checkpoint: frozen part (layer3 on, fixed BN) identical to F's.
    teacher = restore_raw(os.path.join(workdir, "step1", "best"))
    student = restore_raw(os.path.join(workdir, "step2", "best"))
    f_params, g_params = flat(teacher["params"]), flat(student["params"])
    f_stats = flat(teacher["model_state"]["batch_stats"])
    g_stats = flat(student["model_state"]["batch_stats"])
    frozen = ("backbone/layer3", "backbone/layer4", "embedding", "classifier")
    for name in f_params:
        same = np.array_equal(f_params[name], g_params[name])
        assert same == name.startswith(frozen), name
    for name in f_stats:
        assert np.array_equal(f_stats[name], g_stats[name]) == name.startswith(frozen), name
    # A second call finds both steps finished.
    again = distill.train_and_evaluate(config, workdir)
    assert again["test"]["Q:rgb G:depth"]["mAP"] == results["test"]["Q:rgb G:depth"]["mAP"]
    # Interrupt Step II after its step-4 checkpoint: it resumes there and reaches the same G.
    import shutil

    step2 = os.path.join(workdir, "step2")
    final = flat(restore_raw(os.path.join(step2, "checkpoints"))["params"])
    for path in (os.path.join(step2, "checkpoints", "8"), os.path.join(step2, "best", "8")):
        shutil.rmtree(path, ignore_errors=True)
    os.remove(os.path.join(step2, "results.json"))
    os.remove(os.path.join(workdir, "results.json"))
    with caplog.at_level(logging.INFO):
        resumed = distill.train_and_evaluate(config, workdir)
    assert "Resumed Step II from step 4" in caplog.text
    assert resumed["final_step"] == 8
    again = flat(restore_raw(os.path.join(step2, "checkpoints"))["params"])
    for name in final:
        np.testing.assert_array_equal(again[name], final[name], err_msg=name)


def test_step2_from_a_given_teacher_without_weight_copy(distilled, tmp_path):
    teacher_dir, config, _ = distilled
    config = quick_distill_config(config.data.data_dir, "quick,no_copy")
    config.distill.teacher_workdir = os.path.join(teacher_dir, "step1")
    config.distill.num_train_steps = 0  # G is tested as initialised.
    results = distill.train_and_evaluate(config, str(tmp_path))
    assert not os.path.exists(tmp_path / "step1")
    assert results["step1"]["workdir"] == config.distill.teacher_workdir
    assert results["final_step"] == 0 and set(results["test"]) == {
        "Q:rgb G:depth",
        "Q:depth G:rgb",
        "Q:rgb G:rgb",
        "Q:depth G:depth",
    }


def test_student_initialisation_copy_or_own(distilled):
    workdir, config, _ = distilled
    teacher = distill.load_teacher(os.path.join(workdir, "step1"))
    cfg = distill.step2_config(config, teacher.config)
    engine = Engine(cfg, teacher.num_classes, teacher.image_shape)
    copied, _ = distill.init_student(engine, teacher, copy_weights=True)
    own, own_state = distill.init_student(engine, teacher, copy_weights=False)
    f_params, copied, own = flat(teacher.variables["params"]), flat(copied), flat(own)
    assert all(np.array_equal(copied[k], f_params[k]) for k in f_params)
    # Own initialisation: ReIDNet.init with the key jax.random.fold_in(key(seed), 1).
    model = models.create_model(
        "resnet18",
        num_classes=teacher.num_classes,
        embedding_size=config.model.embedding_size,
        dropout_rate=config.model.dropout_rate,
        width=config.model.width,
    )
    key = jax.random.fold_in(jax.random.key(config.seed), 1)
    expected = model.init(
        {"params": key, "dropout": key}, jnp.zeros((1, *teacher.image_shape)), train=False
    )
    expected = flat(expected["params"])
    for name in f_params:
        # The same float32 initialisation on two code paths: equal up to XLA fusion rounding.
        np.testing.assert_allclose(own[name], expected[name], rtol=1e-5, atol=1e-7)
    assert not np.array_equal(own["backbone/conv1/kernel"], f_params["backbone/conv1/kernel"])
    assert all(
        np.all(v == 1.0) for k, v in flat(own_state["batch_stats"]).items() if k.endswith("var")
    )
