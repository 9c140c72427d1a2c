"""Non-graph baselines on the study's split (no torch: scikit-learn on per-atom features)."""
from __future__ import annotations

import time

import numpy as np

from jobs.common import Job
from jobs.evaluation import evaluation_arrays, load, write_evaluation


class BaselineJob(Job):
    """A non-graph baseline on the same split: random scores, logistic regression or
    gradient-boosted trees on the 19 features of each atom.

    params: name, kind, train, val, test, directions, threshold_A2, bootstrap, seed, graphs.
    """

    def run(self) -> None:
        p = self.p
        if not self.rank0:
            return
        fit_graphs = load(self, p["train"] + p["val"], p["directions"], p["threshold_A2"])
        te_graphs = load(self, p["test"], p["directions"], p["threshold_A2"])
        x = np.concatenate([g["x"] for g in fit_graphs])
        y = np.concatenate([g["y"] for g in fit_graphs])
        xt = np.concatenate([g["x"] for g in te_graphs])
        rng = np.random.default_rng(p["seed"])
        t0 = time.time()
        if p["kind"] == "random":
            scores = rng.random(len(xt))
        elif p["kind"] == "logistic":
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler
            clf = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000))
            scores = clf.fit(x, y).predict_proba(xt)[:, 1]
        else:
            from sklearn.ensemble import HistGradientBoostingClassifier
            clf = HistGradientBoostingClassifier(class_weight="balanced", random_state=p["seed"])
            scores = clf.fit(x, y).predict_proba(xt)[:, 1]
        arrays = evaluation_arrays(te_graphs, scores, p["directions"])
        write_evaluation(self, arrays, p["bootstrap"], p["seed"],
                         kind=p["kind"], seconds=round(time.time() - t0, 3))
