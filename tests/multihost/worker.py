"""One process of the multi-host test (tests/test_multihost.py).

  python tests/multihost/worker.py PROCESS_ID NUM_PROCESSES PORT WORKDIR DATA_DIR OUT_JSON \
      CONFIG_ARG STEPS [REFERENCE_WORKDIR]

Each process has the host devices XLA_FLAGS gives it; with NUM_PROCESSES=1 it is the
single-process reference. It trains `configs/synthetic.py:<CONFIG_ARG>` for STEPS steps
(a checkpoint and a validation every STEPS / 2), records the rows of every batch this
process loaded, restores the latest checkpoint again, and writes what it saw. Given
REFERENCE_WORKDIR (the single-process run), it also tests that run's tested checkpoint as
`jaxreid.evaluate` does, on this process group.
"""

import json
import os
import sys

process_id, num_processes, port = (int(a) for a in sys.argv[1:4])
workdir, data_dir, out_path, config_arg = sys.argv[4:8]
num_steps = int(sys.argv[8])
reference_workdir = sys.argv[9] if len(sys.argv) > 9 else ""

import jax  # noqa: E402

if num_processes > 1:
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}",
        num_processes=num_processes,
        process_id=process_id,
        # A loaded 2-core CI machine runs both processes slowly; wait for the slower one.
        initialization_timeout=900,
        shutdown_timeout_seconds=900,
    )

import numpy as np  # noqa: E402

from jaxreid import config as config_lib  # noqa: E402
from jaxreid import workdir as workdir_lib  # noqa: E402
from jaxreid.data import pipeline  # noqa: E402
from jaxreid.training import checkpoints as checkpoints_lib  # noqa: E402
from jaxreid.data import loading  # noqa: E402
from jaxreid.training import supervised  # noqa: E402
from jaxreid.training.engine import Engine  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
config = config_lib.load_config(os.path.join(ROOT, "configs", "synthetic.py") + ":" + config_arg)
config.data.data_dir = data_dir
config.num_train_steps = num_steps
config.optim.warmup_steps = min(config.optim.warmup_steps, num_steps - 1)
config.log_every_steps = 1
config.eval_every_steps = config.checkpoint_every_steps = num_steps // 2
config.model.dropout_rate = 0.0  # Dropout masks depend on the device layout.

# Record which rows of each global batch this process loaded.
seen = []
original = pipeline.train_batches


def recording(*args, **kwargs):
    for batch in original(*args, **kwargs):
        seen.append(
            {
                "labels": batch["label"].tolist(),
                "image_sums": np.round(batch["image"].sum(axis=(1, 2, 3)), 3).tolist(),
            }
        )
        yield batch


pipeline.train_batches = recording
results = supervised.train_and_evaluate(config, workdir)
print(f"process {process_id}: trained", flush=True)

# Every process restores the (once written) latest checkpoint.
engine = Engine(config, results["num_classes"], loading.image_shape(config))
checkpoints = checkpoints_lib.Checkpoints(workdir, keep=config.keep_checkpoints)
state = checkpoints.restore_latest(engine.init_state())
checkpoints.close()
print(f"process {process_id}: restored", flush=True)
reference_test = None
if reference_workdir:
    from jaxreid import evaluate  # noqa: E402

    reference_test = evaluate.evaluate_run(reference_workdir, "best")["test"]
    print(f"process {process_id}: tested the reference run", flush=True)
flat = jax.tree_util.tree_flatten_with_path(jax.device_get(state.params))[0]
with open(out_path, "w") as f:
    json.dump(
        workdir_lib.jsonable(
            {
                "process_index": jax.process_index(),
                "process_count": jax.process_count(),
                "local_devices": jax.local_device_count(),
                "restored_step": int(state.step),
                "params": {jax.tree_util.keystr(k): np.asarray(v).tolist() for k, v in flat},
                "batches": seen,
                "test": results["test"],
                "reference_test": reference_test,
            }
        ),
        f,
    )
print(f"process {process_id}: written", flush=True)
