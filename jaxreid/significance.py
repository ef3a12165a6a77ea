"""Which differences between the rows of a results table are significant.

With a few folds (seeds) per row, two methods' mean mAPs differ by chance alone; a row is
marked as below the best row of its column only when Welch's unequal-variances t-test
(Welch 1947, "The generalization of 'Student's' problem when several different population
variances are involved", Biometrika 34) rejects equal means at the 5 % level, two-sided.
Welch's test, not Student's, because methods differ in their spread over seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

ALPHA = 0.05  # two-sided significance level


def welch_t_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """(t, two-sided p) of Welch's t-test for equal means of samples `a` and `b`.

    t = (mean(a) - mean(b)) / sqrt(var(a)/n_a + var(b)/n_b), sample variances (ddof 1),
    with the Welch-Satterthwaite degrees of freedom; p from Student's t distribution,
    computed by `scipy.stats.ttest_ind(a, b, equal_var=False)` (two constant samples, where
    SciPy gives nan, are answered here).

    Raises:
      ValueError: fewer than 2 values in `a` or `b` (no variance to estimate).
    """
    from scipy import stats  # SciPy: only where tables are summarised.

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"Welch's t-test needs >= 2 values per sample; got {len(a)} and {len(b)}.")
    if a.var() + b.var() == 0:  # two constant samples (SciPy gives nan): equal or not
        if a.mean() == b.mean():
            return 0.0, 1.0
        return float(np.copysign(np.inf, a.mean() - b.mean())), 0.0
    result = stats.ttest_ind(a, b, equal_var=False)
    return float(result.statistic), float(result.pvalue)


def against_best(
    rows: Mapping[str, Sequence[float]], alpha: float = ALPHA
) -> dict[str, tuple[float, float | None, bool]]:
    """Each row against the row with the highest mean.

    Args:
      rows: {row label: per-fold values}.

    Returns:
      {row: (mean, p of Welch's test against the best row (None for the best row itself or
      a row with < 2 folds), True if significantly below the best at `alpha`)}.
    """
    means = {row: float(np.mean(v)) for row, v in rows.items()}
    best = max(means, key=means.get)
    out = {}
    for row, values in rows.items():
        p = None
        if row != best and len(values) >= 2 and len(rows[best]) >= 2:
            p = welch_t_test(rows[best], values)[1]
        out[row] = (means[row], p, p is not None and p < alpha)
    return out


def format_p(p: float) -> str:
    """'p = 0.021', or 'p < 0.001' where three decimals would print a misleading 0.000."""
    return "p < 0.001" if p < 0.0005 else f"p = {p:.3f}"


def markdown(
    rows: Mapping[str, Mapping[str, Sequence[float]]], metric: str = "mAP", alpha: float = ALPHA
) -> str:
    """A table: one line per row label, one column per pair: 'mean (p = ...)' in percent,
    '**best**' for the best row of the column and a trailing '*' where that row is
    significantly below the best (Welch's t-test, two-sided, `alpha`).

    Args:
      rows: {row label: {pair: per-fold values of `metric` in [0, 1]}}.
    """
    pairs = list(next(iter(rows.values())))
    by_pair = {pair: against_best({r: v[pair] for r, v in rows.items()}, alpha) for pair in pairs}
    lines = [
        f"| Row | {' | '.join(pairs)} |",
        "|---|" + "---:|" * len(pairs),
    ]
    best = {pair: max(result, key=lambda r: result[r][0]) for pair, result in by_pair.items()}
    for row in rows:
        cells = []
        for pair in pairs:
            mean, p, below = by_pair[pair][row]
            if row == best[pair]:
                cells.append(f"**{100 * mean:.2f}**")
            elif p is None:  # fewer than 2 folds: no test
                cells.append(f"{100 * mean:.2f}")
            else:
                cells.append(f"{100 * mean:.2f} ({format_p(p)}){' *' if below else ''}")
        lines.append(f"| {row} | {' | '.join(cells)} |")
    note = (
        f"\n{metric} in %, mean over folds; best row of each column in bold; p: Welch's t-test "
        f"against the best row (two-sided); * = significantly below it at {100 * alpha:.0f} %.\n"
    )
    return "\n".join(lines) + "\n" + note
