"""Prefetch host batches to the devices, so that input transfer overlaps the train step.

`jax.device_put` / `jax.make_array_from_process_local_data` return as soon as the copy is
enqueued; keeping `size` batches in flight means batch t+1 (and t+2, ...) is copied while the
step of batch t runs, which is what "prefetch to device" means in the Flax ImageNet example.
`flax.jax_utils.prefetch_to_device` does the same for pmap (it splits the leading axis over
local devices); this version takes a `jax.sharding.Sharding`, so it fits `jax.jit` with a
NamedSharding mesh and multi-process runs (each process passes its own share of the global
batch; `jax.make_array_from_process_local_data` assembles the global array).

NumPy + JAX only (no TensorFlow).
"""

from __future__ import annotations

import collections
import itertools
from typing import Any, Iterable, Iterator

import jax


def _to_global(leaf: Any, sharding: jax.sharding.Sharding) -> jax.Array:
    """A host array of this process's rows -> a global jax.Array sharded by `sharding`."""
    if jax.process_count() == 1:
        return jax.device_put(leaf, sharding)
    return jax.make_array_from_process_local_data(sharding, leaf)


def prefetch_to_device(
    iterator: Iterable[Any], size: int, sharding: jax.sharding.Sharding | Any
) -> Iterator[Any]:
    """Yields the items of `iterator` as device arrays, `size` items ahead of the consumer.

    Args:
      iterator: host batches, each a pytree of NumPy arrays (e.g. the dicts of
        `jaxreid.data.pipeline.train_batches`); in multi-process runs each process's share of
        the global batch along axis 0.
      size: batches in flight on the devices (>= 1; 2 is enough to overlap one transfer
        with one step; each costs one batch of device memory).
      sharding: a `jax.sharding.Sharding` for every leaf (e.g.
        NamedSharding(mesh, PartitionSpec('data')) to split axis 0 over the mesh's data
        axis), or a pytree of shardings with the batch's structure.

    Yields:
      The same pytrees with jax.Array leaves (global shapes), in the original order.

    Raises:
      ValueError: size < 1.
    """
    if size < 1:
        raise ValueError(f"prefetch_to_device: size must be >= 1, got {size}.")
    tree_sharding = not isinstance(sharding, jax.sharding.Sharding)

    def put(batch):
        if tree_sharding:
            return jax.tree_util.tree_map(_to_global, batch, sharding)
        return jax.tree_util.tree_map(lambda leaf: _to_global(leaf, sharding), batch)

    queue = collections.deque()
    iterator = iter(iterator)
    for batch in itertools.islice(iterator, size):
        queue.append(put(batch))
    while queue:
        yield queue.popleft()
        for batch in itertools.islice(iterator, 1):
            queue.append(put(batch))


__all__ = ["prefetch_to_device"]
