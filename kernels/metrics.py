"""The study's six metrics for an imbalanced binary classification, and the confusion matrix.

recall = TP/(TP+FN), precision = TP/(TP+FP), F1 = 2TP/(2TP+FP+FN),
MCC = (TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)). The study prints
MCC's numerator as TP·FN − FP·TN, a sign slip: with it a perfect classifier
would score 0. ROC-AUC and average precision (AP, the step-wise area under
the precision-recall curve) come from scikit-learn. An undefined value
(e.g. precision with no predicted positive) is NaN, never a silent 0; where values
are compared or pooled (model selection, bootstrap intervals) an undefined value
counts as :data:`IF_UNDEFINED`, and how many were undefined is reported.
"""
from __future__ import annotations

import math

import numpy as np

METRICS = ("recall", "precision", "f1", "mcc", "auc", "ap")
# What an undefined value counts as when models are ranked or resamples pooled: a model that found
# nothing. Precision, F1 and MCC are undefined when nothing is predicted positive; such a model scores
# the least a precision, recall or F1 can be, and no better than chance by MCC (0; a model can do
# worse, -1, by predicting wrongly). ROC-AUC and AP are undefined only when a fold has one class, which
# every model of the grid shares, so their value here does not change a ranking.
IF_UNDEFINED = {"recall": 0.0, "precision": 0.0, "f1": 0.0, "mcc": 0.0, "auc": 0.0, "ap": 0.0}


def counted(metric: str, value) -> float:
    """``value`` of ``metric``, or IF_UNDEFINED[metric] if it is undefined (None or NaN)."""
    return IF_UNDEFINED[metric] if value is None or value != value else float(value)


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, int]:
    """TP, FP, FN, TN of binary labels (N,) and predictions (N,)."""
    t = np.asarray(y_true).astype(bool)
    p = np.asarray(y_pred).astype(bool)
    return {"tp": int((t & p).sum()), "fp": int((~t & p).sum()), "fn": int((t & ~p).sum()),
            "tn": int((~t & ~p).sum())}


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


def from_confusion(c: dict[str, int]) -> dict[str, float]:
    """recall, precision, f1, mcc of a confusion matrix."""
    tp, fp, fn, tn = (float(c[k]) for k in ("tp", "fp", "fn", "tn"))
    den = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    return {"recall": _ratio(tp, tp + fn), "precision": _ratio(tp, tp + fp), "f1": _ratio(2 * tp, 2 * tp + fp + fn),
            "mcc": (tp * tn - fp * fn) / math.sqrt(den) if den > 0 else math.nan}


def metrics(y_true: np.ndarray, score: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """All six metrics and the confusion matrix of scores (N,) in [0, 1] against labels (N,).

    An atom is predicted positive when its score is >= threshold (the study: softmax >= 0.5).
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    y_true = np.asarray(y_true).astype(bool)
    score = np.asarray(score, dtype=float)
    c = confusion(y_true, score >= threshold)
    out = from_confusion(c)
    both = 0 < y_true.sum() < len(y_true)
    out["auc"] = float(roc_auc_score(y_true, score)) if both else math.nan
    out["ap"] = float(average_precision_score(y_true, score)) if both else math.nan
    out.update(c)
    out["class_ratio"] = _ratio(c["tp"] + c["fn"], c["fp"] + c["tn"])
    return out


def bootstrap(y_true: np.ndarray, score: np.ndarray, groups: np.ndarray, n: int = 1000, seed: int = 0,
              threshold: float = 0.5) -> tuple[dict[str, tuple[float, float]], dict[str, int]]:
    """95% intervals of the six metrics, resampling whole groups (test specimens) with replacement,
    and how many of the ``n`` resamples left each metric undefined (counted as IF_UNDEFINED, not
    dropped: dropping them would favour models that rarely predict an STZ).

    Empty with fewer than two groups: one specimen gives no interval."""
    if len(np.unique(groups)) < 2:
        return {}, {}
    samples: dict[str, list[float]] = {m: [] for m in METRICS}
    for pick in resamples(groups, n, seed):
        values = metrics(y_true[pick], score[pick], threshold)
        for m in METRICS:
            samples[m].append(values[m])
    undefined = {m: int(np.isnan(v).sum()) for m, v in samples.items()}
    return {m: interval95([counted(m, x) for x in v]) for m, v in samples.items()}, undefined


def resamples(groups: np.ndarray, n: int, seed: int):
    """``n`` bootstrap resamples of whole groups: each the indices (of ``groups``' entries) of as many
    groups as there are, drawn with replacement."""
    rng = np.random.default_rng(seed)
    ids = np.unique(groups)
    members = [np.flatnonzero(groups == g) for g in ids]
    for _ in range(n):
        yield np.concatenate([members[k] for k in rng.integers(0, len(ids), len(ids))])


# --- comparing models on the same atoms: per-graph tables, resampled by specimen ----------------

def graph_table(y_true: np.ndarray, score: np.ndarray, graph: np.ndarray, threshold: float = 0.5) -> dict:
    """Per graph (the sorted ids of ``graph`` (N,)): confusion counts tp, fp, fn, tn (G,) of scores (N,)
    at ``threshold``, and the ROC-AUC and AP of the graph's own atoms (G,), NaN for a graph of one class."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y_true, score = np.asarray(y_true).astype(bool), np.asarray(score, dtype=float)
    table: dict = {k: [] for k in ("tp", "fp", "fn", "tn", "auc", "ap")}
    for g in np.unique(graph):
        sel = graph == g
        y, s = y_true[sel], score[sel]
        for k, v in confusion(y, s >= threshold).items():
            table[k].append(v)
        both = 0 < y.sum() < len(y)
        table["auc"].append(roc_auc_score(y, s) if both else math.nan)
        table["ap"].append(average_precision_score(y, s) if both else math.nan)
    return {k: np.asarray(v, dtype=float) for k, v in table.items()}


def from_table(table: dict, pick: np.ndarray | None = None) -> dict[str, float]:
    """The six metrics of the graphs ``pick`` of a :func:`graph_table` (indices, repeats allowed; None:
    all): recall, precision, F1 and MCC of their summed confusion counts; ROC-AUC and AP the mean of
    the graphs' own (how well a model ranks the atoms of one glass; NaN where no graph has both classes)."""
    pick = np.arange(len(table["tp"])) if pick is None else pick
    out = from_confusion({k: table[k][pick].sum() for k in ("tp", "fp", "fn", "tn")})
    for m in ("auc", "ap"):
        values = table[m][pick]
        out[m] = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
    return out


def by_group(table: dict, groups: np.ndarray) -> dict[str, np.ndarray]:
    """Each group's six metrics from the graphs of a :func:`graph_table` (``groups`` (G,) per graph, e.g.
    its specimen), an undefined value counted as IF_UNDEFINED: {metric: (number of groups,) array}, in
    the order of the sorted group ids. What per-specimen intervals and paired tests are taken over."""
    picks = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    values = [from_table(table, pick) for pick in picks]
    return {m: np.array([counted(m, v[m]) for v in values]) for m in METRICS}


def bootstrap_draws(tables: dict[str, dict], groups: np.ndarray, n: int = 1000, seed: int = 0) -> dict:
    """Every row's six metrics on the same ``n`` resamples of whole groups (specimens; ``groups`` (G,)
    per graph, the graphs of every table in one order): {row: {metric: (n,) array}}, an undefined value
    counted as IF_UNDEFINED, as in model selection. Subtracting two rows' draws pairs them: both are
    scored on the same resampled specimens, so what the specimens share cancels."""
    draws: dict[str, dict[str, list[float]]] = {row: {m: [] for m in METRICS} for row in tables}
    for pick in resamples(groups, n, seed):
        for row, table in tables.items():
            values = from_table(table, pick)
            for m in METRICS:
                draws[row][m].append(counted(m, values[m]))
    return {row: {m: np.array(v) for m, v in d.items()} for row, d in draws.items()}


def paired_bootstrap(tables: dict[str, dict], groups: np.ndarray, reference: str, n: int = 1000,
                     seed: int = 0) -> tuple[dict, dict]:
    """95% intervals of every row's six metrics, and of each row's paired difference from
    ``reference`` (:func:`bootstrap_draws`): ({row: {metric: (lo, hi)}}, {row: {metric: (lo, hi)}})."""
    draws = bootstrap_draws(tables, groups, n, seed)
    interval = {row: {m: interval95(v) for m, v in d.items()} for row, d in draws.items()}
    difference = {row: {m: interval95(v - draws[reference][m]) for m, v in d.items()}
                  for row, d in draws.items() if row != reference}
    return interval, difference


def interval95(values) -> tuple[float, float]:
    """The 2.5th and 97.5th percentiles of draws."""
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))
