"""Welch's t-test (jaxreid.significance) and the runner's significance tables."""

import json
import os

import numpy as np
import pytest
from scipy import stats

from jaxreid import experiments, significance
from jaxreid.config import default_config


def test_welch_t_test_hand_worked():
    # a = 1, 2, 3 and b = 4, 5, 6: means 2 and 5, sample variances 1 and 1, so
    # t = -3 / sqrt(1/3 + 1/3) = -3.6742, Welch-Satterthwaite dof = (2/3)^2 / (2 (1/3)^2 / 2) = 4,
    # p = 2 P(T_4 > 3.6742) = 0.02131 (Student's t table).
    t, p = significance.welch_t_test([1, 2, 3], [4, 5, 6])
    assert t == pytest.approx(-3.674235, rel=1e-6)
    assert p == pytest.approx(0.021311, abs=1e-6)


def test_welch_t_test_equals_scipy_on_unequal_variances():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.normal(0.3, 0.01, size=rng.integers(2, 6))
        b = rng.normal(0.32, 0.05, size=rng.integers(2, 6))
        want = stats.ttest_ind(a, b, equal_var=False)
        t, p = significance.welch_t_test(a, b)
        # float64 Welch's t and p by the same formulas as SciPy, other operation order.
        assert t == pytest.approx(want.statistic, rel=1e-9)
        assert p == pytest.approx(want.pvalue, rel=1e-9)
    assert significance.welch_t_test([0.5, 0.5], [0.5, 0.5]) == (0.0, 1.0)
    with pytest.raises(ValueError, match="needs >= 2 values"):
        significance.welch_t_test([0.1], [0.2, 0.3])


def test_against_best_marks_only_significant_gaps():
    rows = {
        "A": [0.40, 0.41, 0.42],  # best
        "B": [0.20, 0.21, 0.22],  # far below: p ~ 1e-5
        "C": [0.30, 0.50, 0.38],  # lower mean, large spread: not significant
    }
    out = significance.against_best(rows)
    assert out["A"][1] is None and not out["A"][2]
    assert out["B"][2] and out["B"][1] < 1e-3
    assert not out["C"][2] and out["C"][1] > 0.05


def _results(maps):
    test = {
        pair: {"rank1": m / 2, "rank5": m, "rank10": m, "rank20": m, "mAP": m, "mINP": m / 3}
        for pair, m in maps.items()
    }
    return {"test": test, "config": default_config().to_dict()}


def test_runner_writes_significance_beside_its_tables(tmp_path):
    maps = {"distillation": [0.40, 0.41, 0.42], "one-stream": [0.20, 0.21, 0.22]}
    runs = [(m, fold) for m in maps for fold in range(3)]
    grid = experiments.Grid(
        name="fake",
        description="Results written by the test.",
        experiments=[
            experiments.Experiment(f"{m}/fold{f}", default_config(), {"method": m, "fold": f})
            for m, f in runs
        ],
        tables=[experiments.Table("methods", "Methods", rows=("method",))],
    )
    for m, fold in runs:
        os.makedirs(tmp_path / m / f"fold{fold}")
        value = maps[m][fold]
        with open(tmp_path / m / f"fold{fold}" / "results.json", "w") as f:
            json.dump(_results({"Q:rgb G:depth": value, "Q:depth G:rgb": 1.0 - value}), f)
    summary = experiments.write_summary(grid, str(tmp_path))
    text = (tmp_path / "methods_significance.md").read_text()
    assert text in summary
    lines = {
        line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")
    }
    p = stats.ttest_ind(maps["distillation"], maps["one-stream"], equal_var=False).pvalue
    # Q:rgb G:depth: distillation best, one-stream significantly below; the other column the
    # reverse (1 - mAP).
    assert p < 0.0005  # printed as a bound
    assert "**41.00**" in lines["distillation"] and "21.00 (p < 0.001) *" in lines["one-stream"]
    assert "**79.00**" in lines["one-stream"] and "59.00 (p < 0.001) *" in lines["distillation"]


def test_tiny_p_values_print_as_a_bound():
    # Means 50 vs 10 with spread 0.01 (percent): Welch's t ~ 4900, p far below 0.001.
    rows = {"a": {"x": [0.5, 0.5001, 0.4999]}, "b": {"x": [0.1, 0.1001, 0.0999]}}
    line = next(ln for ln in significance.markdown(rows).splitlines() if ln.startswith("| b "))
    assert "10.00 (p < 0.001) *" in line
    assert significance.format_p(0.0213) == "p = 0.021"
    assert significance.format_p(0.0004) == "p < 0.001"
