"""Guards of the evaluation protocol that only the golden keys used to pin (issue 24): each test fails
when its fix is reverted. The CV folds' specimen sets are disjoint and cover what they should; a CV
fold early-stops on its inner validation specimens (TrainFoldsJob passes them to fit); the baselines
are fitted on the training specimens only, not on train + validation."""
from dataclasses import asdict

import numpy as np
import pytest
from test_evaluation import graph_store
from test_memory_plan import OPTS, job, train

from jobs.baseline import BaselineJob
from jobs.common import Spec
from kernels.split import fold_sets, split_specimens

from conftest import OneRank


@pytest.mark.parametrize("n, folds, fractions", [(10, 4, [3, 1, 1]), (75, 4, [3, 1, 1]), (5, 2, [3, 1, 1]),
                                                 (8, 3, [2, 1, 1])])
def test_cv_folds_hold_out_fit_and_stop_on_disjoint_specimens_covering_train_and_validation(n, folds, fractions):
    total = sum(fractions)
    sizes = (round(n * fractions[0] / total), round(n * fractions[1] / total))
    train_, val, test = split_specimens(n, (*sizes, n - sum(sizes)), seed=0)
    pool = sorted(train_ + val)
    sets = fold_sets(pool, folds, fractions, seed=0)
    held = [set(h) for h, _, _ in sets]
    assert sorted(s for h in held for s in h) == pool  # every specimen held out exactly once
    for h, fit_on, stop_on in sets:
        assert fit_on and stop_on and not (set(h) & set(fit_on) or set(h) & set(stop_on) or set(fit_on) & set(stop_on))
        assert sorted(h + fit_on + stop_on) == pool  # the rest of train + validation, split in two
        assert not set(test) & set(h + fit_on + stop_on)  # the test specimens never enter the CV
        # early-stopped on the validation set's share of the fold's training specimens (at least one)
        rest = len(pool) - len(h)
        assert len(stop_on) == max(1, round(rest * fractions[1] / (fractions[0] + fractions[1])))
    assert sets == fold_sets(pool, folds, fractions, seed=0) != fold_sets(pool, folds, fractions, seed=1)


def test_a_cv_fold_early_stops_on_its_inner_validation_specimens(tmp_path):
    """Every fold's history has a validation loss per epoch and keeps its best epoch (the CV protocol of
    layout 2: scored at the epoch of lowest loss on stop_on, as the final models are)."""
    for _, history, _ in train(job(tmp_path, 2), 2):
        assert len(history["val_loss"]) == history["epochs"] == OPTS["epochs"]
        assert history["best_epoch"] == int(np.argmin(history["val_loss"]))


def test_the_baselines_are_fitted_on_the_training_specimens_only(tmp_path, monkeypatch):
    """Logistic regression sees the atoms of the training specimens' graphs, not the validation ones'."""
    from sklearn.pipeline import Pipeline

    steps = {(k, d): [3] for k in range(4) for d in ("xy", "yz")}
    store_job = graph_store(tmp_path, steps)
    fitted = []
    real_fit = Pipeline.fit
    monkeypatch.setattr(
        Pipeline, "fit", lambda self, x, y, **kw: (fitted.append(len(x)), real_fit(self, x, y, **kw))[1]
    )
    params = {**asdict(store_job.p), "name": "logistic", "kind": "logistic", "train": [0, 1], "val": [2], "test": [3],
              "directions": ["xy", "yz"], "threshold_A2": 0.1, "bootstrap": 0, "seed": 0}
    BaselineJob(Spec(stage="baseline", job="jobs.baseline:BaselineJob", key="b", store=store_job.spec.store,
                     code_version="test", params=params, path="baselines/b"), OneRank()).run()
    assert fitted == [2 * 2 * 10]  # 2 training specimens x 2 directions x 10 atoms
