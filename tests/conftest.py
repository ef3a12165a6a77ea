"""Test-wide settings: 8 host CPU devices, fast compilation, one compilation cache.

XLA_FLAGS must be set before JAX is imported anywhere, so it is set here, at the top of
the first module pytest loads.

Compilation is most of the suite's time, and many tests (and the `python -m jaxreid.main`
processes they start) compile the same quick-config steps. JAX's persistent compilation
cache shares the executables: one directory per pytest run, made here in the first process
(the pytest-xdist controller), inherited through the environment by the workers and the
subprocesses, removed at exit. The cache keys hash the program, the compile options and the
devices, so a hit is the executable a compilation would have made. Set
JAX_COMPILATION_CACHE_DIR yourself to keep a cache between runs.
"""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache_dir = tempfile.mkdtemp(prefix="jaxreid-test-jax-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache_dir
    atexit.register(shutil.rmtree, _cache_dir, ignore_errors=True)
# Test compilations are short (see below); cache them all.
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

# Tests use tiny models; the time goes into compilation, not execution. Through the
# environment, so that the `python -m jaxreid.main` processes and notebook kernels the tests
# start compile the same way (measured: a multi-host worker process 46 -> 28 s of CPU time).
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

import jax
import pytest

jax.config.update("jax_disable_most_optimizations", True)  # also if a plugin imported JAX first


# --- slowest files first -------------------------------------------------------------------------
# pytest-xdist (--dist loadfile) hands out whole files in collection order; when a two-minute
# file comes last, one worker idles while the other finishes it. Longest first, by
# `pytest --durations` on the 2-core CI machine (2026-11-30; test_paper_grids.py, which runs
# every paper grid end to end since 2026-12-07, ~5 min of CPU time, first); the rest keep
# their order.
SLOWEST_FILES = (
    "test_paper_grids.py",
    "test_multihost.py",
    "test_training_robustness.py",
    "test_notebooks.py",
    "test_real_dataset_runs.py",
    "test_experiments.py",
    "test_end_to_end.py",
    "test_resume.py",
    "test_dataset_errors.py",
    "test_quiet_runs.py",
    "test_train_step.py",
    "test_distill.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable within a file
    for item in items:  # `-m "not slow"`: CI's lower-bound job (.ci/run)
        if item.path.name in rank:
            item.add_marker(pytest.mark.slow)


# --- trained runs shared by the modules that only read them ------------------------------------
# Training is the slowest part of the suite; these are trained once per session (once per
# pytest-xdist worker that uses them). Tests that change a run directory (resume, delete
# checkpoints) train their own.


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
