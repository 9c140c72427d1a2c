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
    rng = np.random.default_rng(seed)
    ids = np.unique(groups)
    if len(ids) < 2:
        return {}, {}
    members = [np.flatnonzero(groups == g) for g in ids]
    samples = {m: [] for m in METRICS}
    for _ in range(n):
        pick = np.concatenate([members[k] for k in rng.integers(0, len(ids), len(ids))])
        values = metrics(y_true[pick], score[pick], threshold)
        for m in METRICS:
            samples[m].append(values[m])
    undefined = {m: int(np.isnan(v).sum()) for m, v in samples.items()}
    filled = {m: [counted(m, x) for x in v] for m, v in samples.items()}
    return ({m: (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) for m, v in filled.items()},
            undefined)
