"""Non-graph baselines on the study's split (no torch: scikit-learn on per-atom features)."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from jobs.common import Job, Seq
from jobs.evaluation import GraphInputs, evaluation_arrays, load, write_evaluation
from kernels.features import FEATURE_SETS, STUDY


@dataclass(frozen=True, kw_only=True)
class BaselineParams(GraphInputs):
    name: str
    kind: str                  # random | logistic | boosted_trees | score:<column> | score:-<column>
    train: Seq                 # specimens fitted on
    val: Seq                   # specimens the trees early-stop on
    test: Seq                  # specimens scored
    directions: Seq
    threshold_A2: float
    bootstrap: int             # resamples of the test metrics' intervals
    seed: int


class BaselineJob(Job):
    """A non-graph baseline on the same split and with the same data as the GAT's final models:
    random scores, logistic regression or gradient-boosted trees on the features of each atom
    (the columns of the task's feature set),
    fitted on the training specimens; the trees early-stop on the validation specimens (with the
    training class weights), as the GAT does; logistic regression has nothing to stop.

    Kind ``score:<column>`` scores each atom by that column of the feature set, as it is (higher:
    more likely in the first STZ). The trees also record the permutation importance of each feature
    on the test specimens (the drop of AP when it is shuffled).

    Params: ``BaselineParams``.
    """

    Params = BaselineParams

    def run(self) -> None:
        p = self.p
        if not self.rank0:
            return
        left_out = {}
        fit_graphs, left_out["train"] = load(self, p.train, p.directions, p.threshold_A2)
        val_graphs, left_out["validation"] = load(self, p.val, p.directions, p.threshold_A2)
        te_graphs, left_out["test"] = load(self, p.test, p.directions, p.threshold_A2)
        x = np.concatenate([g["x"] for g in fit_graphs])
        y = np.concatenate([g["y"] for g in fit_graphs])
        xv = np.concatenate([g["x"] for g in val_graphs])
        yv = np.concatenate([g["y"] for g in val_graphs])
        xt = np.concatenate([g["x"] for g in te_graphs])
        names = FEATURE_SETS[p.feature_set or STUDY]
        rng = np.random.default_rng(p.seed)
        t0 = time.time()
        extra = {}
        if p.kind.startswith("score:"):  # a column as it is, or negated ('-'): nothing fitted
            column = p.kind.removeprefix("score:")
            scores = xt[:, names.index(column.lstrip("-"))] * (-1.0 if column.startswith("-") else 1.0)
        elif p.kind == "random":
            scores = rng.random(len(xt))
        elif p.kind == "logistic":
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler
            clf = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000))
            scores = clf.fit(x, y).predict_proba(xt)[:, 1]
        else:
            from sklearn.ensemble import HistGradientBoostingClassifier
            clf = HistGradientBoostingClassifier(class_weight="balanced", random_state=p.seed, early_stopping=True,
                                                 scoring="loss", max_iter=500)
            balanced = len(y) / (2 * np.maximum(np.bincount(y, minlength=2), 1))
            scores = clf.fit(x, y, X_val=xv, y_val=yv, sample_weight_val=balanced[yv]).predict_proba(xt)[:, 1]
            extra["importance_ap"] = importance(clf, xt, np.concatenate([g["y"] for g in te_graphs]), names,
                                                p.seed)
        arrays = evaluation_arrays(te_graphs, scores, p.directions)
        write_evaluation(self, arrays, p.bootstrap, p.seed, left_out,
                         kind=p.kind, feature_set=p.feature_set or STUDY,
                         seconds=round(time.time() - t0, 3), **extra)


def importance(model, x: np.ndarray, y: np.ndarray, names, seed: int, repeats: int = 5) -> dict[str, float]:
    """{feature: mean drop of the average precision on (x, y) when its column is shuffled}
    (scikit-learn's ``permutation_importance``, ``repeats`` shuffles each)."""
    from sklearn.inspection import permutation_importance

    result = permutation_importance(model, x, y, scoring="average_precision", n_repeats=repeats, random_state=seed)
    return {name: round(float(v), 5) for name, v in zip(names, result.importances_mean)}
