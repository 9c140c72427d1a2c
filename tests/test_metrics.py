"""Metrics against hand-computed values and scikit-learn."""
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from kernels.metrics import bootstrap, confusion, from_confusion, metrics


def test_hand_computed_confusion():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    p = np.array([1, 1, 0, 1, 0, 0, 0, 0])
    c = confusion(y, p)
    assert c == {"tp": 2, "fp": 1, "fn": 1, "tn": 4}
    m = from_confusion(c)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(4 / 6)
    assert m["mcc"] == pytest.approx((2 * 4 - 1 * 1) / math.sqrt(3 * 3 * 5 * 5))


def test_the_studys_numbers():
    """Lee & Ryu's confusion matrix (TP 1,134, FP 126,180, FN 486, TN 772,200) and their printed metrics."""
    m = from_confusion({"tp": 1134, "fp": 126180, "fn": 486, "tn": 772200})
    assert m["recall"] == pytest.approx(0.7000, abs=5e-4)
    assert m["precision"] == pytest.approx(0.0089, abs=5e-4)
    assert m["mcc"] == pytest.approx(0.0681, abs=1e-4)  # the study prints 0.066 (its numerator's sign slip)


def test_against_sklearn_on_random_scores():
    rng = np.random.default_rng(0)
    y = rng.random(5000) < 0.02
    s = np.clip(rng.random(5000) * 0.8 + 0.3 * y, 0, 1)
    m = metrics(y, s)
    pred = s >= 0.5
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))
    assert m["auc"] == pytest.approx(skm.roc_auc_score(y, s))
    assert m["ap"] == pytest.approx(skm.average_precision_score(y, s))
    assert m["class_ratio"] == pytest.approx(y.sum() / (~y).sum())


def test_perfect_and_inverted_classifiers():
    y = np.array([0, 0, 0, 1, 1, 0, 0, 1])
    perfect = metrics(y, y.astype(float))
    inverted = metrics(y, 1.0 - y)
    assert perfect["mcc"] == pytest.approx(1.0) and perfect["auc"] == 1.0 and perfect["ap"] == 1.0
    assert inverted["mcc"] == pytest.approx(-1.0) and inverted["auc"] == 0.0
    assert inverted["recall"] == 0.0 and inverted["precision"] == 0.0


def test_undefined_values_are_nan():
    y = np.array([0, 0, 1])
    m = metrics(y, np.zeros(3))  # nothing predicted positive
    assert math.isnan(m["precision"]) and m["recall"] == 0.0
    m = metrics(np.zeros(4), np.linspace(0, 1, 4))  # no positives at all
    assert math.isnan(m["auc"]) and math.isnan(m["recall"])


def test_bootstrap_interval_brackets_the_estimate():
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(10), 200)
    y = rng.random(2000) < 0.05
    s = np.clip(rng.random(2000) * 0.7 + 0.4 * y, 0, 1)
    ci, undefined = bootstrap(y, s, groups, n=200, seed=0)
    assert undefined == dict.fromkeys(undefined, 0)
    m = metrics(y, s)
    for k in ("recall", "auc", "mcc"):
        lo, hi = ci[k]
        assert lo <= m[k] <= hi and hi - lo > 0


def test_undefined_resamples_count_as_zero_and_are_counted():
    """Two specimens, one with no predicted positive: a quarter of the resamples (that one twice)
    has no precision; they count as 0, so the interval reaches down to 0."""
    y = np.array([1, 0, 0, 0] * 2)
    s = np.array([0.9, 0.8, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])  # specimen 0: one TP one FP; specimen 1: none
    groups = np.repeat([0, 1], 4)
    ci, undefined = bootstrap(y, s, groups, n=400, seed=3)
    assert 0.15 * 400 < undefined["precision"] < 0.35 * 400
    assert ci["precision"][0] == 0.0 and ci["precision"][1] == 0.5


def _graphs(rng, n_graphs=12, atoms=200, signal=1.0):
    """Labels (N,), graph ids (N,) and a score whose separation of the classes grows with ``signal``."""
    y = rng.random(n_graphs * atoms) < 0.05
    graph = np.repeat(np.arange(n_graphs), atoms)
    return y, graph, rng.standard_normal(len(y)) + signal * y


def test_a_graph_table_gives_the_pooled_confusion_and_the_mean_of_per_graph_rankings():
    from kernels.metrics import from_table, graph_table

    rng = np.random.default_rng(0)
    y, graph, score = _graphs(rng)
    table = graph_table(y, score, graph, threshold=0.5)
    got = from_table(table)
    pooled = metrics(y, score, threshold=0.5)
    for m in ("recall", "precision", "f1", "mcc"):
        assert got[m] == pytest.approx(pooled[m])
    per_graph = [skm.roc_auc_score(y[graph == g], score[graph == g]) for g in range(12)]
    assert got["auc"] == pytest.approx(np.mean(per_graph))
    assert from_table(table, np.array([3, 3]))["ap"] == pytest.approx(
        skm.average_precision_score(y[graph == 3], score[graph == 3]))


def test_a_paired_difference_tells_apart_what_separate_intervals_do_not():
    """Two scores share most of their noise: their intervals overlap, the paired difference's excludes 0."""
    from kernels.metrics import graph_table, paired_bootstrap

    rng = np.random.default_rng(1)
    y, graph, common = _graphs(rng, n_graphs=12, signal=0.0)
    hardness = np.repeat(rng.normal(0, 1.5, 12), 200)  # how well a glass can be read at all: shared
    base = common + (1.0 + hardness) * y
    better = base + 0.3 * y
    tables = {"base": graph_table(y, base, graph), "better": graph_table(y, better, graph),
              "same": graph_table(y, base.copy(), graph)}
    groups = np.arange(12) // 2  # two graphs per specimen
    interval, difference = paired_bootstrap(tables, groups, "base", n=300, seed=0)
    assert interval["better"]["auc"][0] < interval["base"]["auc"][1]  # the intervals overlap
    assert difference["better"]["auc"][0] > 0  # the paired difference does not reach zero
    assert difference["same"]["auc"] == (0.0, 0.0) and "base" not in difference
