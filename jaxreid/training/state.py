"""The train state and the device mesh it is replicated over.

Data parallel over every device of every process: the batch is sharded over the 1-D mesh
axis 'data' and the state replicated, so XLA computes global-batch BatchNorm statistics,
batch-hard triplets over the global batch, and the gradient mean across devices by itself
(no pmap, no hand-written collectives).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax
import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P


@flax.struct.dataclass
class TrainState:
    """Everything a train step changes (the checkpoint format: one Orbax PyTree of these).

    Attributes:
      step: [] int32, the number of steps taken.
      params: the trained parameters.
      model_state: every other mutable collection of the model ('batch_stats', and the
        distance layer's 'centers'), updated by the forward pass rather than by gradients.
      opt_state: the optax state (None for a network that is only embedded).
    """

    step: jax.Array
    params: Any
    model_state: Any
    opt_state: Any

    @property
    def variables(self) -> dict:
        """{'params': ..., **model_state}: what `model.apply` takes."""
        return {"params": self.params, **self.model_state}


class Mesh:
    """A 1-D data-parallel mesh over `devices` and its two shardings.

    Attributes:
      mesh: the jax Mesh, axis 'data'.
      data: NamedSharding splitting axis 0 over the devices (batches).
      replicated: NamedSharding replicating over the devices (state).
      size: the number of devices.
    """

    def __init__(self, devices: Sequence[jax.Device] | None = None):
        devices = jax.devices() if devices is None else list(devices)
        # Auto axis types: the default Explicit mesh rejects some batch contractions.
        self.mesh = jax.make_mesh(
            (len(devices),), ("data",), axis_types=(jax.sharding.AxisType.Auto,), devices=devices
        )
        self.data = NamedSharding(self.mesh, P("data"))
        self.replicated = NamedSharding(self.mesh, P())
        self.size = len(devices)

    def global_batch(self, local: dict[str, Any]) -> dict[str, jax.Array]:
        """This process's rows of a batch -> arrays sharded over every device of every process."""
        return {k: jax.make_array_from_process_local_data(self.data, v) for k, v in local.items()}


def abstract(tree):
    """Shapes, dtypes and shardings of `tree`'s arrays (an Orbax restore target)."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)
