"""TensorBoard summaries of a run: hyper-parameters once, scalars as the loop goes.

Scalars are written as scalars (`Summary.Value.simple_value`, the event format that
`tensorboard.backend.event_processing.event_accumulator.EventAccumulator.Scalars` and every
TensorBoard version read), not as the TF2 tensor summaries of `tf.summary.scalar` (clu's
writer), which readers of scalars do not see. The hyper-parameters go to the hparams plugin.
Written with TensorBoard's own event-file writer: no TensorFlow graph or eager op is involved.

Scalars are not echoed to the log (the loop prints its own short lines).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import jax
import ml_collections

from jaxreid import workdir as workdir_lib


class SummaryWriter:
    """One TensorBoard event file in `directory` (created if needed).

    Methods: write_scalars(step, {tag: float}), write_hparams({name: value}), flush(),
    close(). Values reach the file on `flush` (the loop's `finally` calls it) or every two
    minutes.
    """

    def __init__(self, directory: str):
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._events = EventFileWriter(directory)

    def _add(self, step: int, summary) -> None:
        from tensorboard.compat.proto import event_pb2

        self._events.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        """Writes each value as a float32 scalar of `tag` at `step` (NaN stays NaN)."""
        from tensorboard.compat.proto import summary_pb2

        values = [
            summary_pb2.Summary.Value(tag=tag, simple_value=float(value))
            for tag, value in scalars.items()
        ]
        self._add(int(step), summary_pb2.Summary(value=values))

    def write_hparams(self, hparams: Mapping[str, Any]) -> None:
        """The run's hyper-parameters for TensorBoard's HParams tab; values other than bool,
        int, float and str are written as their str()."""
        from tensorboard.plugins.hparams import summary_v2

        plain = {
            k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in hparams.items()
        }
        self._add(0, summary_v2.hparams_pb(plain))

    def flush(self) -> None:
        self._events.flush()

    def close(self) -> None:
        self._events.close()


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
    writer = SummaryWriter(directory)
    writer.write_hparams(workdir_lib.flatten_config(config))
    return writer
