"""Quiet runs: the console of a run shows jaxreid's lines, not the libraries' noise.

The three noises of a first run (issue: "quiet runs"): JAX's INFO line that it found no TPU
library, TFDS's "Downloading and preparing dataset Unknown size" for data generated on this
machine, and TFDS's "Using custom data configuration" warning. Real warnings still pass.
"""

import logging
import os

from commands import run_module

from jaxreid import log_filters

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOISES = ("Unable to initialize backend 'tpu'", "Unknown size", "Using custom data configuration")


def _record(name, level, message, pathname="x.py"):
    return logging.LogRecord(name, level, pathname, 1, message, None, None)


def test_the_filter_drops_the_noise_and_keeps_real_warnings():
    quiet = log_filters.QuietLibraries()
    tpu = "Unable to initialize backend 'tpu': INTERNAL: Failed to open libtpu.so"
    assert not quiet.filter(_record("jax._src.xla_bridge", logging.INFO, tpu))
    # The same module's warnings, another backend's failure, and jaxreid's own lines pass.
    assert quiet.filter(_record("jax._src.xla_bridge", logging.WARNING, tpu))
    cuda = "Unable to initialize backend 'cuda'"
    assert quiet.filter(_record("jax._src.xla_bridge", logging.INFO, cuda))
    progress = "/x/jaxreid/training/progress.py"
    assert quiet.filter(_record("absl", logging.INFO, "Training step 5/20", progress))
    custom = log_filters._QuietCustomConfigs()  # pylint: disable=protected-access
    tfds_file = "/site-packages/tensorflow_datasets/core/dataset_builder.py"
    warning = "Using custom data configuration: rgb"
    assert not custom.filter(_record("absl", logging.WARNING, warning, tfds_file))
    assert custom.filter(_record("absl", logging.WARNING, "Some other TFDS warning", tfds_file))
    assert custom.filter(_record("absl", logging.WARNING, warning, "/x/mine.py"))


def test_a_first_quick_run_prints_none_of_the_noises(tmp_path):
    """`python -m jaxreid.main --config=configs/synthetic.py:quick` on an empty data folder
    (so the datasets are built), shortened to 4 steps: none of the noises, the useful lines
    (the build, the training, the results table) still there."""
    done = run_module(
        "jaxreid.main",
        "--config=configs/synthetic.py:quick",
        f"--workdir={tmp_path / 'run'}",
        f"--config.data.data_dir={tmp_path / 'tfds'}",
        "--config.num_train_steps=4",
        "--config.eval_every_steps=4",
        "--config.checkpoint_every_steps=4",
        cwd=ROOT,
        timeout=600,
    )
    console = done.stdout + done.stderr
    for noise in NOISES:
        assert noise not in console, noise
    assert "Building dataset synthetic_reid/rgb" in done.stderr
    assert "Training resnet18 on synthetic" in done.stderr
    assert "| Q:RGB, G:D |" in done.stdout


def test_a_python_api_build_prints_no_custom_config_warning(tmp_path, caplog):
    """The notebooks' way: no absl.app, no `log_filters.install()`; the builder's own hook
    keeps TFDS's warning out, and does not hide TFDS's other records."""
    from jaxreid.datasets.synthetic import SyntheticConfig, builder

    with caplog.at_level(logging.INFO):
        builder.builder("rgb", SyntheticConfig(seed=7, num_train_ids=2), tmp_path)
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if m.startswith("Using custom data configuration")]
