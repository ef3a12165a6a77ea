"""TensorBoard summaries of a run: hyper-parameters once, scalars as the loop goes.

Scalars are not echoed to the log (the loop prints its own short lines). Imports clu's
writers, and through them TensorFlow, only when a writer is opened.
"""

from __future__ import annotations

import jax
import ml_collections

from jaxreid import workdir as workdir_lib


class _NoWriter:
    """Processes other than 0 write no summaries."""

    def write_scalars(self, step, scalars):
        pass

    def write_hparams(self, hparams):
        pass

    def flush(self):
        pass

    def close(self):
        pass


def open_writer(directory: str, config: ml_collections.ConfigDict):
    """A TensorBoard writer in `directory` with the config as hyper-parameters (process 0)."""
    if jax.process_index() > 0:
        return _NoWriter()
    from clu import metric_writers  # TensorFlow: only when a run really starts.

    writer = metric_writers.SummaryWriter(directory)
    writer.write_hparams(
        {
            k: str(v) if isinstance(v, list) else v
            for k, v in workdir_lib.flatten_config(config).items()
        }
    )
    return writer
