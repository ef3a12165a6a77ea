"""Command line: `python -m jaxreid.main --config=configs/synthetic.py --workdir=/tmp/run`.

Re-running the same command on the same workdir resumes the run where it stopped.
Multi-host: pass --multiprocess on every host (jax.distributed.initialize reads the
coordinator from the cluster environment, or from --coordinator/--num_processes/--process_id).
"""

import logging as pylogging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter.

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config",
    None,
    "An experiment config file from configs/, e.g. configs/synthetic.py:quick.",
    lock_config=True,
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, summaries, results.")
_MULTIPROCESS = flags.DEFINE_bool("multiprocess", False, "Call jax.distributed.initialize().")
_COORDINATOR = flags.DEFINE_string("coordinator", None, "host:port of process 0 (multiprocess).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (multiprocess).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (multiprocess).")
flags.mark_flags_as_required(["config", "workdir"])


class _QuietOrbax(pylogging.Filter):
    """Orbax logs every file it writes at INFO; keep its warnings and errors only."""

    def filter(self, record):
        return record.levelno >= pylogging.WARNING or "orbax" not in record.pathname


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.get_absl_handler().addFilter(_QuietOrbax())
    import jax  # After flag parsing, so XLA flags given on the command line apply.

    from jaxreid import config as config_lib

    config_lib.validate(_CONFIG.value)  # Fail on typos before anything is loaded or compiled.
    if _MULTIPROCESS.value:
        jax.distributed.initialize(
            coordinator_address=_COORDINATOR.value,
            num_processes=_NUM_PROCESSES.value,
            process_id=_PROCESS_ID.value,
        )
    logging.info(
        "JAX process %d/%d, devices: %s", jax.process_index(), jax.process_count(), jax.devices()
    )
    if _CONFIG.value.distill.enabled:  # Two steps: jaxreid.distill (Hafner 2018, §3.3).
        from jaxreid import distill as method
    else:
        from jaxreid import train as method

    method.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


def run():
    import sys

    from jaxreid import config as config_lib

    try:
        config_lib.check_override_flags(sys.argv[1:])
    except ValueError as e:
        sys.exit(f"Error: {e}")
    app.run(main)


if __name__ == "__main__":
    run()
