"""A resumed run is the run that was saved.

One uninterrupted run and one run stopped (as SIGTERM stops it) and re-run, both in this
process on its 8 host devices, of the quick main job with the distance layer as its head, so
that the train state holds every kind of leaf: parameters, BatchNorm statistics, the
distance layer's EMA centres (model state, no gradient), the momentum trace and the
schedule's step count. The states the trainer hands to `Checkpoints.save` / `offer_best` are
copied to the host as they are saved; they are the reference every restore is compared with,
leaf by leaf and bit for bit.
"""

import jax
import numpy as np
import pytest

from jaxreid import config as config_lib
from jaxreid.data import pipeline
from jaxreid.training import checkpoints as checkpoints_lib
from jaxreid.data import loading
from jaxreid.training import loop, supervised
from jaxreid.training.engine import Engine

NUM_STEPS = 8
STOP_AFTER = 3  # Not a checkpoint step: the stop saves a checkpoint of its own.


def resume_config(data_dir):
    config = config_lib.load_config("configs/synthetic.py:quick")
    config.data.data_dir = data_dir
    config.model.head = "distance"  # EMA centres in model_state (Tekeli 2019 §3).
    config.num_train_steps = NUM_STEPS
    config.checkpoint_every_steps = 2
    config.eval_every_steps = 4
    config.log_every_steps = 4
    config.keep_checkpoints = NUM_STEPS // 2  # Every checkpoint stays, to be restored.
    return config


def host_copy(state) -> dict[str, np.ndarray]:
    """{leaf path: NumPy copy} of a train state (a copy: the next step donates the buffers)."""
    return {
        jax.tree_util.keystr(path): np.array(leaf, copy=True)
        for path, leaf in jax.tree_util.tree_flatten_with_path(jax.device_get(state))[0]
    }


def assert_same_state(actual: dict, expected: dict, what: str):
    assert actual.keys() == expected.keys(), what
    for name, value in expected.items():
        assert actual[name].dtype == value.dtype and actual[name].shape == value.shape, name
        # Bit for bit: a checkpoint stores the arrays, nothing is recomputed.
        np.testing.assert_array_equal(actual[name], value, err_msg=f"{what}: {name}")


class _StopAfter:
    """Stands in for `StopRequest`: reports a SIGTERM after step STOP_AFTER of a fresh run
    (the loop reads `signal_name` once after every step)."""

    def __init__(self):
        self.reads = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    @property
    def signal_name(self):
        self.reads += 1
        return "SIGTERM" if self.reads >= STOP_AFTER else None


class Recorder:
    """What one trainer call saved, restored and read, through patched methods."""

    def __init__(self, monkeypatch):
        self.saved, self.best, self.restored, self.batches = {}, {}, [], []
        save, offer = checkpoints_lib.Checkpoints.save, checkpoints_lib.Checkpoints.offer_best
        restore_latest = checkpoints_lib.Checkpoints.restore_latest
        train_batches = pipeline.train_batches

        def record_save(checkpoints, step, state):
            self.saved[step] = host_copy(state)
            return save(checkpoints, step, state)

        def record_offer(checkpoints, step, state, metrics):
            self.best[step] = host_copy(state)
            return offer(checkpoints, step, state, metrics)

        def record_restore(checkpoints, target):
            state = restore_latest(checkpoints, target)
            if state is not None:
                self.restored.append(host_copy(state))
            return state

        def record_batches(*args, **kwargs):
            for batch in train_batches(*args, **kwargs):
                self.batches.append({k: np.array(v, copy=True) for k, v in batch.items()})
                yield batch

        monkeypatch.setattr(checkpoints_lib.Checkpoints, "save", record_save)
        monkeypatch.setattr(checkpoints_lib.Checkpoints, "offer_best", record_offer)
        monkeypatch.setattr(checkpoints_lib.Checkpoints, "restore_latest", record_restore)
        monkeypatch.setattr(pipeline, "train_batches", record_batches)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synthetic_data_dir):
    """The uninterrupted run, and the run stopped after step STOP_AFTER and re-run."""
    config = resume_config(synthetic_data_dir)
    tmp = tmp_path_factory.mktemp("resume")
    out = {}
    with pytest.MonkeyPatch.context() as patch:
        whole = Recorder(patch)
        results = supervised.train_and_evaluate(config, str(tmp / "whole"))
    out["whole"] = (str(tmp / "whole"), whole, results)
    with pytest.MonkeyPatch.context() as patch:
        first = Recorder(patch)
        patch.setattr(loop, "StopRequest", _StopAfter)
        with pytest.raises(loop.Preempted) as stopped:
            supervised.train_and_evaluate(config, str(tmp / "stopped"))
        assert stopped.value.step == STOP_AFTER
    with pytest.MonkeyPatch.context() as patch:
        second = Recorder(patch)
        results = supervised.train_and_evaluate(config, str(tmp / "stopped"))
    out["stopped"] = (str(tmp / "stopped"), first, second, results)
    out["config"] = config
    return out


def test_the_trainer_resumes_from_the_state_it_saved(runs):
    _, first, second, _ = runs["stopped"]
    assert sorted(first.saved) == [2, STOP_AFTER] and first.restored == []
    assert len(second.restored) == 1
    assert_same_state(second.restored[0], first.saved[STOP_AFTER], "restored at resume")
    # The state holds every kind of leaf the comparison is meant to cover.
    names = "\n".join(first.saved[STOP_AFTER])
    for part in ("params", "batch_stats", "centers", "opt_state", "step"):
        assert part in names, part
    assert int(second.restored[0][".step"]) == STOP_AFTER


def test_a_stopped_and_resumed_run_ends_as_the_uninterrupted_one(runs):
    """Same batches from the stop on, same final state bit for bit, same test results."""
    _, whole, whole_results = runs["whole"]
    _, first, second, results = runs["stopped"]
    # The data iterator resumes at the step after the checkpoint: the batches of steps
    # STOP_AFTER+1.. are those the uninterrupted run trained on.
    assert len(whole.batches) == NUM_STEPS
    assert len(first.batches) >= STOP_AFTER and len(second.batches) == NUM_STEPS - STOP_AFTER
    for step, batch in enumerate(first.batches[:STOP_AFTER] + second.batches, start=1):
        for key, value in whole.batches[step - 1].items():
            np.testing.assert_array_equal(batch[key], value, err_msg=f"step {step} {key}")
    # Exact: the same compiled step on the same devices from the same state and batches is
    # deterministic on CPU (XLA's reductions have a fixed order for a given program).
    for step in (4, 6, NUM_STEPS):
        assert_same_state(second.saved[step], whole.saved[step], f"step {step}")
    assert sorted(second.best) == sorted(whole.best) == [4, NUM_STEPS]
    assert results["best_step"] == whole_results["best_step"]
    np.testing.assert_equal(results["test"], whole_results["test"])  # Exact; NaN == NaN.


@pytest.mark.parametrize("num_devices", [1, 8])
def test_checkpoints_restore_as_saved_on_any_device_count(runs, num_devices):
    """Every checkpoint in checkpoints/ and the one in best/, restored the trainer's way (an
    init state of the engine as the target) onto 1 or 8 devices."""
    workdir, whole, results = runs["whole"]
    config = runs["config"]
    devices = jax.devices()[:num_devices]
    engine = Engine(config, results["num_classes"], loading.image_shape(config), devices=devices)
    checkpoints = checkpoints_lib.Checkpoints(workdir, keep=config.keep_checkpoints)
    try:
        target = engine.init_state()
        steps = sorted(checkpoints.latest.all_steps())
        assert steps == [2, 4, 6, NUM_STEPS]
        for step in steps:
            state = checkpoints_lib.restore(checkpoints.latest, step, target)
            for leaf in jax.tree.leaves(state):
                assert leaf.sharding.is_equivalent_to(engine.mesh.replicated, leaf.ndim)
                assert leaf.sharding.device_set == set(devices)
            assert_same_state(host_copy(state), whole.saved[step], f"checkpoints/{step}")
        best_step = checkpoints.best_step()
        assert best_step == results["best_step"] and best_step in whole.best
        best = checkpoints.restore_best(target)
        assert_same_state(host_copy(best), whole.best[best_step], f"best/{best_step}")
    finally:
        checkpoints.close()
