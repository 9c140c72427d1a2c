"""The training step's memory model (kernels.memory) against what autograd saves, and the training
job's stacks: as many folds as the model predicts fit, smaller stacks after an out-of-memory error,
a finished stack kept when the job is killed before the next one ends."""
import numpy as np
import pytest
import torch

from jobs.common import Spec
from jobs.learn import Checkpoint, TrainFoldsJob
from kernels import memory
from kernels.saved import SavedBytes
from kernels.training import Prepared, TrainOptions, fit

from conftest import OneRank

OPTS = {"epochs": 3, "patience": 2, "learning_rate": 1e-2, "batch_graphs": 2, "loss": "weighted_ce",
        "sampling": "none", "focal_gamma": 2.0, "sampling_ratio": 1.0, "seed": 0, "steps_per_epoch": 2}
POINT = (2, 3, 2)  # layers, width, heads


def options(**more) -> TrainOptions:
    return TrainOptions(**{**OPTS, **more})


# the rest of a TrainFoldsJob's params (jobs.learn.TrainFoldsParams), for jobs whose stacks the tests train directly
JOB_PARAMS = {"graphs": [], "feature_set": None, "responses": None, "softenings": None, "lys": None,
              "directions": ["xy"], "threshold_A2": 0.1, "early_stop_loss": "training", "gpu_memory_GiB": 0.0,
              "held_out": [], "fit_on": [], "stop_on": [], "conv": None, "fold": 0, "fold_keys": [],
              "fold_paths": {}, "fold_described": {}}


def ring_graph(n: int, rng) -> dict:
    """n nodes, each linked both ways to its 3 next neighbours on a ring: 6 edges per node."""
    i = np.repeat(np.arange(n), 3)
    j = (i + np.tile([1, 2, 3], n)) % n
    return {"x": rng.standard_normal((n, 19)).astype(np.float32),
            "edge_index": np.stack([np.r_[i, j], np.r_[j, i]]).astype(np.int64), "y": rng.integers(0, 2, n)}


def sets(folds: int, graphs: int, n: int = 12, seed: int = 0, device="cpu") -> list[Prepared]:
    rng = np.random.default_rng(seed)
    zero, one = np.zeros(19, np.float32), np.ones(19, np.float32)
    return [Prepared([ring_graph(n, rng) for _ in range(graphs)], zero, one, device) for _ in range(folds)]


@pytest.mark.parametrize("point", [(1, 4, 3), (3, 5, 2)])
def test_the_model_counts_exactly_what_a_step_saves_per_node(point):
    """What one step saves grows with the nodes exactly as kernels.memory.saved_bytes says (counted at two
    sizes: the difference is per node; weights saved by the products do not grow)."""
    counted = {}
    for n in (40, 80):
        saved = SavedBytes()
        with saved:
            fit(sets(2, 2, n), [torch.tensor([1.0, 5.0])] * 2, *point, options(epochs=1, steps_per_epoch=1))
        counted[n] = saved.bytes
    nodes = 2 * 2 * 40  # folds x batch x the extra nodes per graph
    assert counted[80] - counted[40] == memory.saved_bytes(*point, nodes=nodes)


def test_the_plan_stacks_as_many_folds_as_fit_the_budget():
    def step(folds):
        return memory.step_bytes(12, 40, 15, nodes=folds * 8 * 10_000, folds=folds)

    assert memory.plan(12, 40, 15, 10_000, 8, 4, budget=step(2)) == [2, 2]
    assert memory.plan(12, 40, 15, 10_000, 8, 4, budget=step(2) - 1) == [1, 1, 1, 1]
    assert memory.plan(12, 40, 15, 10_000, 8, 7, budget=step(3)) == [3, 2, 2]
    assert memory.plan(12, 40, 15, 10_000, 8, 4, budget=step(1) / 2) == [1, 1, 1, 1]  # tried; the fallback is next
    assert memory.plan(12, 40, 15, 10_000, 8, 4, budget=memory.budget_bytes(0, None)) == [4]  # the CPU: no limit
    assert memory.budget_bytes(40, None) == memory.budget_bytes(40, 80 * 10**9) == 40 * 2**30  # as configured
    # the paper grid's largest point, 4 folds of 10,000-atom graphs x 8, fits an 80 GB GPU with its margin
    assert memory.plan(12, 40, 15, 10_000, 8, 4, memory.budget_bytes(0, 80 * 10**9)) == [4]


def job(tmp_path, folds: int, **params) -> TrainFoldsJob:
    layers, width, heads = POINT
    params = {**OPTS, **JOB_PARAMS, "layers": layers, "width": width, "heads": heads, "folds": list(range(folds)),
              "device": "cpu", "checkpoint_epochs": 1, **params}
    return TrainFoldsJob(Spec(stage="train", job="jobs.learn:TrainFoldsJob", key="k", store=str(tmp_path / "s.zarr"),
                              code_version="test", params=params), OneRank())


CPU = torch.device("cpu")


def train(j: TrainFoldsJob, folds: int, device: torch.device = CPU):
    """j's folds trained on 4 graphs each, early-stopped on 2: [(model, history, record fields)] per fold."""
    def prepared(graphs, seed):
        return [Prepared([ring_graph(12, np.random.default_rng([seed, f, g])) for g in range(graphs)],
                         np.zeros(19, np.float32), np.ones(19, np.float32), device) for f in range(folds)]

    return j.train_in_stacks(prepared(4, 0), [torch.tensor([1.0, 3.0])] * folds, prepared(2, 1),
                             [100 + f for f in range(folds)], device)


def assert_same_models(a, b):
    for (ma, ha, _), (mb, hb, _) in zip(a, b):
        assert ha["val_loss"] == pytest.approx(hb["val_loss"], rel=1e-5)
        for pa, pb in zip(ma.parameters(), mb.parameters()):
            torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)


def test_folds_that_do_not_fit_together_train_in_smaller_stacks_to_the_same_models(tmp_path):
    whole = train(job(tmp_path / "whole", 4), 4)
    assert [f["stacked"] for _, _, f in whole] == [4] * 4
    two = memory.step_bytes(*POINT, nodes=2 * OPTS["batch_graphs"] * 12, folds=2, edges_per_node=7.0)
    j = job(tmp_path, 4, gpu_memory_GiB=two / memory.GiB)
    halves = train(j, 4)
    assert [f["stacked"] for _, _, f in halves] == [2] * 4
    assert_same_models(whole, halves)
    kept = sorted(p.name for p in (tmp_path / "s.checkpoints").iterdir())
    assert kept == ["train-k-folds0-1.pt", "train-k-folds2-3.pt"]  # trained stacks, until the records are written
    Checkpoint.remove_all(j)
    assert not list((tmp_path / "s.checkpoints").iterdir())


def test_an_out_of_memory_error_retries_the_stack_in_halves(tmp_path, monkeypatch):
    import jobs.learn
    whole = train(job(tmp_path / "whole", 3), 3)
    real_fit = jobs.learn.fit

    def fit_on_a_small_device(train_sets, *args, **kwargs):
        if len(train_sets) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 5.40 GiB")
        return real_fit(train_sets, *args, **kwargs)

    monkeypatch.setattr(jobs.learn, "fit", fit_on_a_small_device)
    retried = train(job(tmp_path, 3), 3)
    assert [(f["stacked"], f["out_of_memory_retries"]) for _, _, f in retried] == [(1, 2), (1, 2), (1, 2)]
    assert_same_models(whole, retried)


def test_a_job_killed_in_its_second_stack_keeps_the_first_one(tmp_path, monkeypatch):
    import jobs.learn
    one = memory.step_bytes(*POINT, nodes=OPTS["batch_graphs"] * 12, folds=1, edges_per_node=7.0)
    whole = train(job(tmp_path / "whole", 2), 2)
    real_fit, trained = jobs.learn.fit, []

    class Killed(Exception):
        pass

    def killed_in_the_second_stack(*args, seeds, **kwargs):
        if trained:
            raise Killed
        trained.append(seeds)
        return real_fit(*args, seeds=seeds, **kwargs)

    monkeypatch.setattr(jobs.learn, "fit", killed_in_the_second_stack)
    with pytest.raises(Killed):
        train(job(tmp_path, 2, gpu_memory_GiB=one / memory.GiB), 2)
    monkeypatch.setattr(jobs.learn, "fit", real_fit)
    resumed = train(job(tmp_path, 2, gpu_memory_GiB=one / memory.GiB), 2)
    assert [f["resumed_from_epoch"] for _, _, f in resumed] == [OPTS["epochs"], 0]  # the first: not trained again
    assert_same_models(whole, resumed)


def test_the_dry_run_shows_each_grid_points_memory_and_stacks(tmp_path):
    """launch --dry-run: per grid point, the predicted step and graphs and the stacks within the budget."""
    import io

    from campaign import config
    from campaign.launch import launch
    out = io.StringIO()
    cfg = config.load("paper", overrides={"mpi": {"ranks": 1}, "store": str(tmp_path / "p.zarr"),
                                          "train": {"gpu_memory_GiB": 24},
                                          "cluster": {"kind": "slurm", "slurm": {"memory": "32GB", "gpu_jobs": 1}}})
    assert launch(cfg, dry_run=True, out=out) == 0
    line = next(x for x in out.getvalue().splitlines() if x.strip().startswith("L12-M40-N15"))
    step = memory.step_bytes(12, 40, 15, 4 * 8 * 10_000, 4) / memory.GiB
    assert f"4 folds {step:.2f} GiB" in line and line.endswith("stacks [2, 2] within train.gpu_memory_GiB 24"), line
    assert not (tmp_path / "p.zarr").exists()  # a dry run writes nothing


def test_training_and_the_structure_stage_run_on_gpu_workers_where_there_are_any():
    from campaign import config, plan
    from campaign.resources import CORES, resources

    def stages_on_gpu(eigensolver):
        cfg = config.load("smoke", overrides={"features": {"eigensolver": eigensolver}})
        tasks = plan.plan(cfg)
        for t in tasks:
            assert resources([t], cfg, gpu=False)[CORES] == t.cores(cfg)[0] * t.cores(cfg)[1]
        return {t.STAGE for t in tasks if "GPU" in resources([t], cfg, gpu=True)}

    assert stages_on_gpu("auto") == stages_on_gpu("torch") == {"structure", "train", "final"}
    assert stages_on_gpu("shift-invert") == {"train", "final"}  # a CPU solver stays on the CPU workers


def test_a_job_that_needs_more_memory_than_a_worker_offers_is_refused_at_launch(tmp_path):
    """The paper's structure stage holds the 30,000² dense dynamical matrix and its factor (about 11 GiB):
    a SLURM worker job of 4GB would be killed on its node, so the launch refuses it before anything runs,
    naming the stage, the need and the key. With 16GB it plans: a grid point's job on a GPU worker holds its 4
    folds' graphs, about 12 GiB; without GPU workers its training steps are on the CPU too."""
    import io

    from campaign import config, plan
    from campaign.dispatch import groups_of
    from campaign.launch import launch
    from campaign.resources import MEMORY, check_memory, resources

    def paper(memory, gpu_jobs=1):
        return config.load("paper", overrides={"mpi": {"ranks": 1}, "store": str(tmp_path / "p.zarr"),
                                               "cluster": {"kind": "slurm", "slurm": {"memory": memory,
                                                                                       "gpu_jobs": gpu_jobs}}})

    with pytest.raises(config.ConfigError, match=r"stage structure: .* needs about 11\.\d GiB .*'cluster.slurm.memory' "
                                                 r"\(4GB\).* at least 1\dGB"):
        launch(paper("4GB"), dry_run=True, out=io.StringIO())
    assert not (tmp_path / "p.zarr").exists()
    def check(cfg):  # as the launcher groups tasks into jobs (a grid point's folds: one job)
        check_memory(groups_of(plan.plan(cfg), cfg), cfg)

    check(paper("16GB"))
    with pytest.raises(config.ConfigError, match=r"stage train: .* needs about 1\d\.\d GiB"):
        check(paper("16GB", gpu_jobs=0))
    cfg = config.load("smoke")
    shear = next(t for t in plan.plan(cfg) if t.STAGE == "shear")
    assert 2**28 < resources([shear], cfg, gpu=False)[MEMORY] < 2**30
