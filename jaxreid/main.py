"""Command line: `python -m jaxreid.main --config=configs/synthetic.py --workdir=/tmp/run`.

Config values are overridden with `--config.<key>=<value>` (e.g. `--config.optim.learning_rate=
0.01`). Re-running the same command on the same workdir resumes the run where it stopped;
SIGTERM or Ctrl-C stop it after the current step with a checkpoint to resume from.
Multi-host: pass --multiprocess on every host (jax.distributed.initialize reads the
coordinator from the cluster environment, or from --coordinator/--num_processes/--process_id).

A user error (a wrong config value, a missing config file, a missing, corrupt or stale
dataset, a training batch larger than the data, an unwritable or incompatible work
directory, a run that diverged) prints one message without a traceback and
exits with status 2 (1 for a diverged run, 128 + the signal number after a stop on a signal).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter.

from absl import app, flags, logging  # noqa: E402

from jaxreid import log_filters  # noqa: E402

_CONFIG = flags.DEFINE_string(
    "config", None, "An experiment config file from configs/, e.g. configs/synthetic.py:quick."
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, summaries, results.")
_MULTIPROCESS = flags.DEFINE_bool("multiprocess", False, "Call jax.distributed.initialize().")
_COORDINATOR = flags.DEFINE_string("coordinator", None, "host:port of process 0 (multiprocess).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (multiprocess).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (multiprocess).")
flags.mark_flags_as_required(["config", "workdir"])

_OVERRIDES: dict = {}


def _fail(message: str, status: int = 2, *, at_once: bool = False):
    sys.stderr.write(f"Error: {message}\n")
    sys.stderr.flush()
    if at_once:
        # After a stop on a signal everything is on disk (checkpoint waited for, summaries
        # flushed): skip the interpreter's teardown of TensorFlow and XLA, which took 5-46 s
        # (measured 2026-12) on a loaded 2-core machine, longer than a scheduler's grace period.
        logging.flush()
        sys.stdout.flush()
        if _MULTIPROCESS.value:
            import jax

            jax.distributed.shutdown()  # A barrier: the processes leave the group together.
        os._exit(status)
    sys.exit(status)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    log_filters.install()
    from jaxreid import config as config_lib
    from jaxreid import host_memory
    from jaxreid import workdir as workdir_lib

    # Before XLA allocates: freed step buffers stay in the process (1.4x the main job's
    # step rate on a 2-core CPU; jaxreid.host_memory).
    host_memory.keep_freed_memory()
    try:
        config = config_lib.load_config(_CONFIG.value)
        config_lib.apply_overrides(config, _OVERRIDES)
        config_lib.validate(config)  # Everything but the device count: before JAX starts.
    except config_lib.ConfigError as e:
        _fail(str(e))

    import jax  # After flag parsing, so XLA flags given on the command line apply.

    from jaxreid.data.sources import DatasetError
    from jaxreid.datasets.manual_files import ManualDataError
    from jaxreid.training.loop import NonFiniteError
    from jaxreid.training.progress import Preempted

    if _MULTIPROCESS.value:
        jax.distributed.initialize(
            coordinator_address=_COORDINATOR.value,
            num_processes=_NUM_PROCESSES.value,
            process_id=_PROCESS_ID.value,
        )
    logging.info(
        "JAX process %d/%d, devices: %s", jax.process_index(), jax.process_count(), jax.devices()
    )
    from jaxreid import methods

    train_and_evaluate = methods.entry_point(config.method)  # Validated: a known method.
    try:
        train_and_evaluate(config, _WORKDIR.value)
    except (
        config_lib.ConfigError,
        workdir_lib.WorkdirError,
        DatasetError,  # missing, half-written, corrupt or stale prepared data (data.sources)
        ManualDataError,  # a manual folder the builder cannot read (datasets.manual_files)
    ) as e:
        _fail(str(e))
    except NonFiniteError as e:
        _fail(str(e), status=1)
    except Preempted as e:
        _fail(str(e), status=e.exit_code, at_once=True)


def run():
    from jaxreid import config as config_lib

    overrides, argv = config_lib.overrides_from_argv(sys.argv)
    _OVERRIDES.update(overrides)
    app.run(main, argv=argv)


if __name__ == "__main__":
    run()
