"""Padding rows to a fixed batch shape: one compiled call serves every batch, on any device count.

Every place that runs a compiled function over a variable number of rows (evaluation batches,
inference, distance blocks, gallery chunks, guided backpropagation) cuts the rows into
batches of one size, pads the last batch with zeros, calls the function and cuts the padding
off again. Padding rows are never dropped silently and never reach a result: outputs are
cut to the true rows before they are returned.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def round_up(n: int, multiple: int) -> int:
    """The smallest multiple of `multiple` that is >= n (n >= 0, multiple >= 1)."""
    if multiple < 1:
        raise ValueError(f"round_up: multiple must be >= 1, got {multiple}")
    return -(-int(n) // int(multiple)) * int(multiple)


def pad_rows(x: np.ndarray, rows: int) -> np.ndarray:
    """`x` [n, ...] zero-padded along axis 0 to [rows, ...] (returned unchanged if n == rows).

    Raises:
      ValueError: n > rows.
    """
    n = x.shape[0]
    if n > rows:
        raise ValueError(f"pad_rows: {n} rows do not fit in {rows}")
    if n == rows:
        return x
    return np.concatenate([x, np.zeros((rows - n, *x.shape[1:]), x.dtype)])


def batch_size_for(batch_size: int, num_devices: int) -> int:
    """`batch_size` rounded up to a multiple of the device count (at least one per device)."""
    return max(num_devices, round_up(max(int(batch_size), 1), num_devices))


def last_batch_rows(rows: int, batch_size: int, num_devices: int) -> int:
    """Rows of a final partial batch of `rows`: the next power-of-two multiple of the device
    count, at most `batch_size`, so that at most log2(batch_size) shapes are ever compiled."""
    per_device = -(-int(rows) // num_devices)
    return min(batch_size, num_devices * 2 ** max(per_device - 1, 0).bit_length())


def map_padded(
    fn: Callable[[np.ndarray], object],
    x: np.ndarray,
    *,
    batch_size: int,
    num_devices: int = 1,
) -> np.ndarray:
    """`fn` over batches of `x` [N, ...] of few padded shapes, outputs concatenated, cut to N.

    Args:
      fn: [B, ...] -> [B, ...] (a compiled function).
      batch_size: rows per call, rounded up to a multiple of `num_devices`. The last batch
        is padded to `last_batch_rows` (a power-of-two multiple of the device count), so a
        small input does not pay for a large batch and few shapes are compiled.
      num_devices: the device count the batch is sharded over.

    Returns:
      The concatenated outputs as NumPy, [N, ...]; for N = 0 `fn` is not called and None is
      returned (the caller knows the output's shape).
    """
    n = x.shape[0]
    if n == 0:
        return None
    batch = batch_size_for(batch_size, num_devices)
    outputs = []
    for start in range(0, n, batch):
        block = x[start : start + batch]
        rows = block.shape[0]
        padded = pad_rows(
            block, batch if rows == batch else last_batch_rows(rows, batch, num_devices)
        )
        outputs.append(np.asarray(fn(padded))[:rows])
    return np.concatenate(outputs)
