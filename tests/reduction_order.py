"""Tolerances for results that differ only in the order of float32 sums (1 vs 8 devices).

On one device a batch reduction (a gradient, a BatchNorm statistic, a centre update) is one
sum; on eight devices it is eight partial sums added by a psum. Both are exact up to float32
round-off: any order of a sum of n terms is within gamma_n * sum|terms| of the exact sum,
gamma_n = n u / (1 - n u) ~ n u, u = 2**-24 (Higham, "Accuracy and Stability of Numerical
Algorithms", 2nd ed. 2002, §4.2, eq. 4.4), so two orders differ by at most 2 n u sum|terms|.
A wrong device reduction (a pmean of an already averaged loss scales gradients by 8,
per-device BatchNorm statistics over 2 images) is off by the order of the result itself.
"""

import collections

import jax
import numpy as np

U32 = 2.0**-24  # float32 unit round-off (half an ulp, relative)


def sum_rtol(n: int) -> float:
    """Bound on the difference between two orders of a float32 sum of n terms, relative to
    the sum of the terms' magnitudes."""
    return 2.0 * n * U32


def _leaves(tree):
    return [(path, np.asarray(leaf, np.float64)) for path, leaf in jax.tree.leaves_with_path(tree)]


def update_errors(before, one, eight, stored_roundings: int = 2) -> list[tuple[str, float]]:
    """Per leaf: max |one - eight| / tolerance scale, as (path, ratio); <= rtol passes.

    The scale of a leaf is the largest update `|one - before|` among the leaves of its module
    (kernel and bias, scale and bias, mean and var), because a bias's gradient sums the same
    per-example terms as its kernel's: a bias that BatchNorm follows has an exact gradient of
    zero, so its own update is round-off only. Each run also rounds the stored parameters once
    per step (at most u |p| each): `stored_roundings` x 2 runs x u |p| is subtracted first.
    """
    b, o, e = _leaves(before), _leaves(one), _leaves(eight)
    assert [p for p, _ in b] == [p for p, _ in o] == [p for p, _ in e]
    scale = collections.defaultdict(float)
    for (path, x0), (_, x1) in zip(b, o):
        module = jax.tree_util.keystr(path[:-1])
        scale[module] = max(scale[module], float(np.max(np.abs(x1 - x0), initial=0.0)))
    out = []
    for (path, _), (_, x1), (_, x8) in zip(b, o, e):
        excess = np.abs(x1 - x8) - 2 * stored_roundings * U32 * np.abs(x8)
        worst = float(np.max(excess, initial=0.0))
        s = scale[jax.tree_util.keystr(path[:-1])]
        out.append(
            (jax.tree_util.keystr(path), worst / s if s > 0 else (np.inf if worst > 0 else 0.0))
        )
    return out


def assert_same_update(before, one, eight, rtol: float, stored_roundings: int = 2) -> None:
    """`one` and `eight`, both reached from `before`, hold the same update up to `rtol`
    (relative to the update of each module; see `update_errors`)."""
    bad = [(p, r) for p, r in update_errors(before, one, eight, stored_roundings) if r > rtol]
    assert not bad, f"updates differ by more than {rtol:.3g} of the module's update: {bad[:5]}"
