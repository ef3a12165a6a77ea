"""The arithmetic of benchmarks/divergence.py (issue 24), on hand-worked sequences."""

import importlib.util
import math
import pathlib

import numpy as np
import pytest

_PATH = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "divergence.py"
_spec = importlib.util.spec_from_file_location("divergence_benchmark", _PATH)
divergence = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(divergence)


def test_relative_distance_is_the_norm_over_every_leaf():
    a = {"w": np.array([3.0, 0.0]), "b": np.array([[4.0]])}  # ||a|| = 5
    b = {"w": np.array([3.0, 1.0]), "b": np.array([[4.0 + 2.0]])}  # ||a - b|| = sqrt(1 + 4)
    assert divergence.relative_distance(a, b) == pytest.approx(math.sqrt(5) / 5, rel=1e-12)
    assert divergence.relative_distance(a, a) == 0.0


def test_doubling_steps_of_an_exponential():
    t = np.arange(1, 201)
    # Doubles every 5 steps from 1e-9; saturates at 0.1 (outside the fit range, ignored).
    distance = np.minimum(1e-9 * 2.0 ** (t / 5.0), 0.1)
    # Exact in float64 up to the least-squares fit's round-off.
    assert divergence.doubling_steps(distance) == pytest.approx(5.0, rel=1e-9)
    assert divergence.doubling_steps(np.full(50, 1e-5)) == math.inf  # No growth.
    assert math.isnan(divergence.doubling_steps(np.zeros(50)))  # Never in the fit range.


def test_largest_jump_finds_a_discrete_switch():
    distance = 1e-6 * 1.1 ** np.arange(40)
    distance[20:] *= 300.0  # One step multiplies the distance by 300 * 1.1.
    ratio, step = divergence.largest_jump(distance)
    assert ratio == pytest.approx(330.0, rel=1e-12)
    assert step == 21  # distance[20] is step 21's.
    smooth = np.concatenate([[0.0, 0.0], 1e-6 * 1.1 ** np.arange(40)])  # Zeros are skipped.
    assert divergence.largest_jump(smooth)[0] == pytest.approx(1.1, rel=1e-12)
