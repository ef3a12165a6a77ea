"""prefetch_to_device: order, values, sharding and how far ahead it reads."""

import jax
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxreid.data.device_prefetch import prefetch_to_device


def _batches(n, consumed):
    for i in range(n):
        consumed.append(i)
        yield {"image": np.full((8, 2, 3), i, np.float32), "label": np.arange(8) + 10 * i}


def test_prefetch_keeps_order_values_and_shards_over_the_mesh():
    devices = np.array(jax.devices()[:4])  # conftest: 8 host CPU devices.
    sharding = NamedSharding(Mesh(devices, ("data",)), PartitionSpec("data"))
    consumed = []
    out = list(prefetch_to_device(_batches(5, consumed), 2, sharding))
    assert len(out) == 5
    for i, batch in enumerate(out):
        assert isinstance(batch["image"], jax.Array)
        np.testing.assert_array_equal(batch["image"], np.full((8, 2, 3), i))
        np.testing.assert_array_equal(batch["label"], np.arange(8) + 10 * i)
        assert batch["image"].sharding == sharding
        # Axis 0 split in 4 rows of 2 (one shard per device).
        assert {s.data.shape for s in batch["label"].addressable_shards} == {(2,)}


def test_prefetch_reads_size_batches_ahead_and_accepts_a_sharding_tree():
    sharding = jax.sharding.make_single_device_sharding(jax.devices()[0])
    consumed = []
    iterator = prefetch_to_device(_batches(6, consumed), 3, {"image": sharding, "label": sharding})
    first = next(iterator)
    np.testing.assert_array_equal(first["label"], np.arange(8))
    # Yielding batch 0 had put batches 0..2 on the device: exactly `size` ahead, not all.
    assert consumed == [0, 1, 2]
    next(iterator)
    assert consumed == [0, 1, 2, 3]
    assert len(list(iterator)) == 4


def test_prefetch_size_must_be_positive():
    with pytest.raises(ValueError, match="size must be >= 1, got 0"):
        next(prefetch_to_device(iter([]), 0, jax.sharding.make_single_device_sharding(jax.devices()[0])))
