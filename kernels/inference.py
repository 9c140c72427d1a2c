"""Intervals and tests over specimens that hold their level with the 5-15 specimens a campaign compares on.

The unit of replication is the specimen (its graphs share a glass, and in the comparison's outer CV a
model): a difference between two predictors is the per-specimen paired difference d_k of a metric, and
what is claimed is about its mean. A percentile bootstrap over n specimens is too narrow at such n (its
spread is short by about √((n−1)/n) and it takes normal quantiles): its 95% interval excluded a zero mean
in 13.5% of trials at n = 5 (tests/test_inference.py). Here:

- ``t_interval``: mean ± t_{0.975, n−1} · s / √n of the per-specimen values (Student's t);
- ``t_test``: its two-sided p-value for a mean of zero;
- ``holm``: Holm's step-down adjustment of a family of p-values (every paired difference of one table),
  so that the chance of any false claim in the table stays at 5%;
- ``spearman_within``: each specimen's own rank correlation of two per-graph quantities, the values a
  ``t_interval`` is taken over.

Measured (tests/test_inference.py, 4,000 trials of a zero mean): the t interval excludes zero in 5% of
trials for normal differences at n = 5 and 10, 6-7% for differences of skewness 1, but 12% at n = 5 for
skewness 2: with 5 specimens, read every interval as exploratory.
"""
from __future__ import annotations

import math

import numpy as np


def t_interval(values, level: float = 0.95) -> tuple[float, float]:
    """The ``level`` t interval of the mean of ``values`` (n ≥ 2, NaN dropped); (NaN, NaN) for fewer."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return math.nan, math.nan
    half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean() - half), float(v.mean() + half)


def t_test(values) -> float:
    """Two-sided p-value of Student's one-sample t test of a zero mean (n ≥ 2; NaN dropped; 1 for fewer).
    Values all equal: 0 if they are not zero, else 1."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return 1.0
    if np.all(v == v[0]):
        return 0.0 if v[0] != 0 else 1.0
    return float(stats.ttest_1samp(v, 0.0).pvalue)


def holm(pvalues: dict) -> dict:
    """Holm's adjusted p-values of a family {name: p}: the k-th smallest multiplied by (m − k + 1), made
    monotone and capped at 1. A claim is made where the adjusted value is below 0.05."""
    names = sorted(pvalues, key=lambda k: pvalues[k])
    m, running, out = len(names), 0.0, {}
    for k, name in enumerate(names):
        running = max(running, min(1.0, (m - k) * pvalues[name]))
        out[name] = running
    return out


def spearman_within(x, y, specimen, minimum: int = 3) -> list[float]:
    """Spearman's rank correlation of x and y (G,) over each specimen's own graphs (``specimen`` (G,)), for
    every specimen with at least ``minimum`` graphs (in ascending specimen order)."""
    from scipy.stats import spearmanr

    x, y, specimen = np.asarray(x), np.asarray(y), np.asarray(specimen)
    return [float(spearmanr(x[specimen == k], y[specimen == k]).statistic)
            for k in np.unique(specimen) if np.sum(specimen == k) >= minimum]
