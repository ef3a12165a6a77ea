"""Test-wide settings: 8 host CPU devices and fast compilation.

XLA_FLAGS must be set before JAX is imported anywhere, so it is set here, at the top of
the first module pytest loads.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402

# Tests use tiny models; the time goes into compilation, not execution.
jax.config.update("jax_disable_most_optimizations", True)


# --- trained runs shared by the modules that only read them ------------------------------------
# Training is the slowest part of the suite; these are trained once per session (once per
# pytest-xdist worker that uses them). Tests that change a run directory (resume, delete
# checkpoints) train their own.
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory):
    """A TFDS data directory for the built-in synthetic set, shared by the session."""
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory, synthetic_data_dir):
    """(workdir, config, results) of `configs/synthetic.py:quick`, trained once; read only."""
    from jaxreid import train
    from jaxreid.config import load_config

    config = load_config("configs/synthetic.py:quick")
    config.data.data_dir = synthetic_data_dir
    workdir = str(tmp_path_factory.mktemp("quick_run"))
    return workdir, config, train.train_and_evaluate(config, workdir)


@pytest.fixture(scope="session")
def quick_distillation(tmp_path_factory, synthetic_data_dir):
    """(workdir, config, results) of a short `configs/synthetic_distill.py:quick` run (8 Step I
    + 8 Step II steps; F embeds depth, G RGB), trained once; read only."""
    from jaxreid.config import load_config
    from jaxreid.training import distillation

    config = load_config("configs/synthetic_distill.py:quick")
    config.data.data_dir = synthetic_data_dir
    config.num_train_steps = 8
    config.eval_every_steps = config.checkpoint_every_steps = 4
    config.distill.num_train_steps = 8
    config.distill.eval_every_steps = 4
    workdir = str(tmp_path_factory.mktemp("quick_distillation"))
    return workdir, config, distillation.train_and_evaluate(config, workdir)
