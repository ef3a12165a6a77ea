"""Command line: `python -m jaxreid.main --config=configs/synthetic.py --workdir=/tmp/run`.

Re-running the same command on the same workdir resumes the run where it stopped.
Multi-host: pass --multiprocess on every host (jax.distributed.initialize reads the
coordinator from the cluster environment, or from --coordinator/--num_processes/--process_id).
"""

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "An experiment config file from configs/, e.g. configs/synthetic.py:quick.",
    lock_config=True,
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, summaries, results.")
_MULTIPROCESS = flags.DEFINE_bool("multiprocess", False, "Call jax.distributed.initialize().")
_COORDINATOR = flags.DEFINE_string("coordinator", None, "host:port of process 0 (multiprocess).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (multiprocess).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (multiprocess).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  import jax  # After flag parsing, so XLA flags given on the command line apply.

  from jaxreid import config as config_lib

  config_lib.validate(_CONFIG.value)  # Fail on typos before anything is loaded or compiled.
  if _MULTIPROCESS.value:
    jax.distributed.initialize(
        coordinator_address=_COORDINATOR.value,
        num_processes=_NUM_PROCESSES.value,
        process_id=_PROCESS_ID.value,
    )
  logging.info("JAX process %d/%d, devices: %s", jax.process_index(), jax.process_count(),
               jax.devices())
  from jaxreid import train

  train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
