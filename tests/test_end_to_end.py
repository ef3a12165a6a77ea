"""`train_and_evaluate` and `python -m jaxreid.main` on the quick synthetic config."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

from jaxreid.config import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "configs", "synthetic.py")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def quick_config(data_dir):
    config = load_config("configs/synthetic.py:quick")
    config.data.data_dir = data_dir
    return config


def test_train_and_evaluate_writes_results_for_every_modality_pair(tmp_path, data_dir):
    from jaxreid import train

    config = quick_config(data_dir)
    results = train.train_and_evaluate(config, str(tmp_path))
    pairs = {"Q:rgb G:depth", "Q:depth G:rgb", "Q:rgb G:rgb", "Q:depth G:depth"}
    assert set(results["test"]) == pairs
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert set(on_disk["test"]) == pairs
    for pair in pairs:
        r = on_disk["test"][pair]
        assert 0.0 <= r["mAP"] <= 1.0 and 0.0 <= r["rank1"] <= r["rank5"] <= r["rank10"] <= 1.0
    table = (tmp_path / "results.md").read_text()
    for row in ("Q:RGB, G:D", "Q:D, G:RGB", "Q:RGB, G:RGB", "Q:D, G:D"):
        assert row in table
    assert os.listdir(tmp_path / "best") and os.listdir(tmp_path / "checkpoints")
    # TensorBoard: every logged value is a scalar, at the steps the config logs it.
    events = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={"scalars": 0})
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert {"train/loss", "train/accuracy", "val/mAP"} <= set(scalars), scalars
    logged = range(config.log_every_steps, config.num_train_steps + 1, config.log_every_steps)
    assert [e.step for e in events.Scalars("train/loss")] == list(logged)
    validated = range(config.eval_every_steps, config.num_train_steps + 1, config.eval_every_steps)
    assert [e.step for e in events.Scalars("val/mAP")] == list(validated)
    # Re-running a finished run resumes at its last step and trains no further.
    again = train.train_and_evaluate(config, str(tmp_path))
    assert again["final_step"] == results["final_step"] == config.num_train_steps
    # The same checkpoint, data and settings in the same process: the same figures exactly.
    np.testing.assert_equal(again["test"], results["test"])


def test_killed_run_resumes_to_the_same_final_step(tmp_path, data_dir):
    """Kill the command (SIGKILL) after its first checkpoint; the same command then finishes
    the run. That the resumed run is the saved one, bit for bit, is tests/test_resume.py's."""
    workdir = str(tmp_path / "run")
    command = [
        sys.executable,
        "-m",
        "jaxreid.main",
        f"--config={CONFIG}:quick",
        f"--workdir={workdir}",
        f"--config.data.data_dir={data_dir}",
        "--config.num_train_steps=40",
        "--config.checkpoint_every_steps=10",
        "--config.eval_every_steps=20",
    ]
    env = {**os.environ, "XLA_FLAGS": ""}
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = os.path.join(workdir, "checkpoints")
    deadline = time.time() + 300
    while time.time() < deadline and first.poll() is None:
        if os.path.isdir(checkpoints) and any(d.isdigit() for d in os.listdir(checkpoints)):
            break
        time.sleep(0.2)
    assert first.poll() is None, "the run ended before it could be killed"
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not os.path.exists(os.path.join(workdir, "results.json"))
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Resumed from step" in second.stderr
    results = json.loads(open(os.path.join(workdir, "results.json")).read())
    steps = sorted(int(d) for d in os.listdir(checkpoints) if d.isdigit())
    assert steps[-1] == 40
    assert results["final_step"] == 40 and results["best_step"] in (20, 40)


def test_mistyped_key_fails_before_compilation(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "jaxreid.main",
            f"--config={CONFIG}:quick",
            f"--workdir={tmp_path}",
            "--config.optim.lerning_rate=0.1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0
    assert "lerning_rate" in out.stderr
    assert not os.listdir(tmp_path)  # Nothing was written.
