"""GAT jobs on the store's graphs: the cross-validation folds of a grid point, and final models.

Both read graphs of whole specimens (every shear direction) labelled at one
D2min threshold, standardise features with statistics of their own training
specimens only, and write scores and metrics under ``training/``.
"""
from __future__ import annotations

import dataclasses
import glob
import os
import time
from itertools import accumulate

import numpy as np
import torch

from jobs.common import Job, Seq, write_record
from jobs.evaluation import GraphInputs, clean, evaluation_arrays, load, write_evaluation
from kernels import memory
from kernels import metrics as M
from kernels.training import CheckpointMismatch, Prepared, TrainOptions, class_weights, fit, predict, standardiser
from store import layout, records


@dataclasses.dataclass(frozen=True, kw_only=True)
class LearnParams(GraphInputs):
    """What both GAT jobs read: the graphs (``GraphInputs``), the labels, the training options (the ``train``
    section, ``options``) and where and how they run (runtime)."""
    directions: Seq
    threshold_A2: float        # the labels' D2min threshold, Å²
    epochs: int
    learning_rate: float
    batch_graphs: int
    seed: int
    loss: str
    focal_gamma: float
    sampling: str
    sampling_ratio: float
    patience: int
    early_stop_loss: str
    device: str                # runtime: auto | cpu | cuda
    checkpoint_epochs: int     # runtime: save the training's state this often (0: never)
    gpu_memory_GiB: float      # runtime: the memory a stack may plan for (0: the device's)

    def options(self) -> TrainOptions:
        """The ``TrainOptions`` of ``kernels.training.fit`` among these params (a final model has no
        steps_per_epoch: its default)."""
        return TrainOptions(**{f.name: getattr(self, f.name) for f in dataclasses.fields(TrainOptions)
                               if hasattr(self, f.name)})


def torch_device(job: Job) -> torch.device:
    """The job's torch device (params "device": auto, cpu or cuda), with its threads set."""
    torch.set_num_threads(max(1, job.spec.threads))
    choice = job.p.device
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


class Checkpoint:
    """A training's state, saved beside the store every ``train.checkpoint_epochs`` epochs
    (0: never), so that a job killed mid-training (a walltime, a lost node) goes on from its
    last save. Named by the job's key (and the folds of a stack that is one of several, whose
    trained models it keeps once trained); removed once the job's records are written."""

    def __init__(self, job: Job, folds: list[int] | None = None):
        self.every = job.p.checkpoint_epochs
        self.epochs = job.p.epochs
        self.report = lambda epoch, losses: job.progress(epoch + 1, self.epochs, "epochs (at most)",
                                                         loss=[round(x, 4) for x in losses])
        part = "" if folds is None else "-folds" + "-".join(map(str, folds))
        self.path = layout.checkpoint_path(job.spec.store, f"train-{job.spec.key}{part}.pt")
        self.keep_models = folds is not None
        self.resumed_from_epoch = 0  # the first epoch this run trained (set by ``fit``)

    def load(self) -> dict | None:
        if not os.path.isfile(self.path):
            return None
        try:
            return torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise layout.StoreError(f"checkpoint {self.path} cannot be read ({e}); delete it to train "
                                    "from the first epoch") from None

    def save(self, state: dict) -> None:
        """Written whole or not at all: a kill during the write leaves the previous save."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        torch.save(state, self.path + ".tmp")
        os.replace(self.path + ".tmp", self.path)

    def fit(self, *args, **kwargs):
        """``kernels.training.fit`` resumed from, and saving to, this checkpoint; reports each epoch."""
        state = self.load()
        self.resumed_from_epoch = 0 if state is None else self.epochs if state.get("finished") else state["epoch"] + 1
        try:
            return fit(*args, resume=state, save=self.save, save_every=self.every, on_epoch=self.report,
                       save_finished=self.keep_models, **kwargs)
        except CheckpointMismatch as e:
            raise layout.StoreError(f"checkpoint {self.path} does not belong to this training ({e}); "
                                    "delete it to train from the first epoch") from None

    @staticmethod
    def remove_all(job: Job) -> None:
        """Every checkpoint of the job (of each of its stacks)."""
        for path in glob.glob(layout.checkpoint_path(job.spec.store, f"train-{job.spec.key}*.pt")):
            os.remove(path)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainFoldsParams(LearnParams):
    layers: int
    width: int
    heads: int
    held_out: Seq              # per fold: the specimens it is scored on
    fit_on: Seq                # per fold: the specimens it trains on
    stop_on: Seq               # per fold: the specimens it early-stops on
    steps_per_epoch: int
    conv: str | None = None    # a PyG convolution instead of the stacked GAT
    fold: int                  # the first task's fold (the job trains ``folds``)
    repeat: int | None = None  # the first task's training of a compared row beyond the first (its seed's)
    folds: Seq                 # the batch: its folds, their keys, groups and record fields
    fold_keys: Seq
    fold_paths: dict
    fold_described: dict


class TrainFoldsJob(Job):
    """Cross-validation of one grid point: the given folds trained together as one stack (``TrainFoldsParams``).

    Each fold trains on fit_on, keeps its epoch of lowest loss on stop_on (the final models' protocol),
    and is scored on held_out.
    """

    Params = TrainFoldsParams

    def run(self) -> None:
        p = self.p
        if not self.rank0:
            return
        device = torch_device(self)
        train_sets, val_sets, weights, held = [], [], [], []
        left_out = []  # per fold: {set: [[specimen, direction], ...]} of graphs without an event
        for held_out, fit_on, stop_on in zip(p.held_out, p.fit_on, p.stop_on):
            out = {}
            tr, out["fit"] = load(self, fit_on, p.directions, p.threshold_A2)
            mean, std = standardiser(tr)
            train_sets.append(Prepared(tr, mean, std, device))
            weights.append(class_weights(tr))
            va, out["stop"] = load(self, stop_on, p.directions, p.threshold_A2)
            val_sets.append(Prepared(va, mean, std, device))
            ho, out["held_out"] = load(self, held_out, p.directions, p.threshold_A2)
            held.append((ho, Prepared(ho, mean, std, device)))
            left_out.append(out)
        seeds = [p.seed * 1000 + f for f in p.folds]  # fold f trains the same, stacked or alone
        trained = self.train_in_stacks(train_sets, weights, val_sets, seeds, device)
        for key, (model, hist, fields), (ho, prepared), out in zip(p.fold_keys, trained, held, left_out):
            scores, _ = predict(model, prepared)
            arrays = evaluation_arrays(ho, scores, p.directions)
            result = M.metrics(arrays["y"], arrays["score"])
            path = p.fold_paths[key]
            g = self.fresh_group(path, metrics=clean(result), history=hist, left_out=out)
            layout.write_arrays(g, arrays)
            resumed = fields.pop("resumed_from_epoch")
            write_record(self, key, path, p.fold_described[key], clean(
                {**{m: result[m] for m in M.METRICS}, "resumed_from_epoch": resumed}), device=str(device), **fields)
        Checkpoint.remove_all(self)

    def train_in_stacks(self, train_sets, weights, val_sets, seeds, device) -> list[tuple]:
        """Each fold's (model, history, record fields), its folds trained in stacks as large as
        ``kernels.memory`` predicts fit the device (all on the CPU); a CUDA out-of-memory error
        splits a stack in two halves trained one after the other."""
        p, n = self.p, len(train_sets)
        atoms, batch = train_sets[0].n, p.batch_graphs
        edges_per_node = train_sets[0].graphs[0].src.numel() / atoms  # with the self loops
        cuda = device.type == "cuda"
        budget = memory.budget_bytes(p.gpu_memory_GiB, torch.cuda.get_device_properties(device).total_memory
                                     if cuda else None) - (torch.cuda.memory_allocated(device) if cuda else 0)
        sizes = memory.plan(p.layers, p.width, p.heads, atoms, batch, n, budget, edges_per_node)
        queue = [list(range(first, first + size)) for first, size in zip(accumulate([0] + sizes), sizes)]
        trained, retries = [None] * n, 0
        while queue:
            stack = queue.pop(0)
            checkpoint = Checkpoint(self, None if len(stack) == n else [p.folds[i] for i in stack])
            if cuda:
                torch.cuda.reset_peak_memory_stats(device)
            t0, out_of_memory = time.time(), False
            try:
                models, history = checkpoint.fit(
                    [train_sets[i] for i in stack], [weights[i] for i in stack], p.layers, p.width, p.heads,
                    p.options(), val_sets=[val_sets[i] for i in stack], device=device, seeds=[seeds[i] for i in stack],
                    conv=p.conv)
            except torch.cuda.OutOfMemoryError:
                if len(stack) == 1:
                    raise
                out_of_memory = True
            if out_of_memory:  # outside the except block, whose traceback holds the step's tensors
                torch.cuda.empty_cache()
                queue[:0] = [stack[:(len(stack) + 1) // 2], stack[(len(stack) + 1) // 2:]]
                retries += 1
                continue
            fields = {"seconds": round((time.time() - t0) / len(stack), 3), "stacked": len(stack),
                      "predicted_step_GiB": round(memory.step_bytes(p.layers, p.width, p.heads,
                                                                    len(stack) * batch * atoms, len(stack),
                                                                    edges_per_node) / memory.GiB, 3),
                      "out_of_memory_retries": retries}
            if cuda:
                fields["cuda_peak_GiB"] = round(torch.cuda.max_memory_allocated(device) / memory.GiB, 3)
            for i, model, hist in zip(stack, models, history):
                trained[i] = (model, hist, {**fields, "resumed_from_epoch": checkpoint.resumed_from_epoch})
        return trained

def cv_table(store: str, cv_keys: dict[str, list[str]]) -> tuple[dict[str, dict[str, float]], dict]:
    """Mean CV metrics of every grid point, {point: {metric: mean over folds}}, from the records, a
    fold's undefined value counted as ``kernels.metrics.IF_UNDEFINED`` (0: a fold where a
    model predicts no STZ has no precision, and dropping it would favour such models); and how many
    folds were undefined, {point: {metric: count}}."""
    recs = records.read_all_keys(store, [k for keys in cv_keys.values() for k in keys])
    table, undefined = {}, {}
    for point, keys in cv_keys.items():
        if not all(k in recs and recs[k]["status"] == records.DONE for k in keys):
            raise layout.StoreError(f"cross-validation of {point} is incomplete")
        values = {m: [recs[k]["summary"][m] for k in keys] for m in M.METRICS}
        table[point] = {m: float(np.mean([M.counted(m, v) for v in vs])) for m, vs in values.items()}
        undefined[point] = {m: sum(v is None or v != v for v in vs) for m, vs in values.items()}
    return table, undefined


def best_point(table: dict[str, dict[str, float]], metric: str) -> str:
    """The grid point with the best mean CV ``metric`` (ties: the first in grid order)."""
    return max(table, key=lambda pt: table[pt][metric])


@dataclasses.dataclass(frozen=True, kw_only=True)
class FinalParams(LearnParams):
    name: str
    select_metric: str         # kernels.metrics: the grid point with its best mean over the folds
    cv_keys: Seq               # [[point, [fold keys]], ...]
    train: Seq                 # specimens
    val: Seq
    test: Seq
    bootstrap: int             # resamples of the test metrics' intervals


class FinalJob(Job):
    """Select by mean CV metric, retrain on train (early stopping on validation), evaluate on test
    (``FinalParams``; loss and sampling may differ from the grid's)."""

    Params = FinalParams

    def run(self) -> None:
        p = self.p
        if not self.rank0:
            return
        device = torch_device(self)
        table, undefined = cv_table(self.spec.store, {point: keys for point, keys in p.cv_keys})
        point = best_point(table, p.select_metric)
        chosen = records.read(self.spec.store, dict(p.cv_keys)[point][0])["params"]  # a fold of that point
        layers, width, heads = chosen["layers"], chosen["width"], chosen["heads"]
        left_out = {}
        tr, left_out["train"] = load(self, p.train, p.directions, p.threshold_A2)
        mean, std = standardiser(tr)
        va, left_out["validation"] = load(self, p.val, p.directions, p.threshold_A2)
        va = Prepared(va, mean, std, device)
        te_graphs, left_out["test"] = load(self, p.test, p.directions, p.threshold_A2)
        t0 = time.time()
        checkpoint = Checkpoint(self)
        (model,), (hist,) = checkpoint.fit([Prepared(tr, mean, std, device)], [class_weights(tr)], layers, width,
                                           heads, p.options(), val_sets=[va], device=device)
        seconds = time.time() - t0
        scores, _ = predict(model, Prepared(te_graphs, mean, std, device))
        arrays = evaluation_arrays(te_graphs, scores, p.directions)
        write_evaluation(
            self,
            arrays,
            p.bootstrap,
            p.seed,
            left_out,
            point=point,
            cv_mean=table[point],
            cv_undefined_folds=undefined[point],
            history=hist,
            seconds=round(seconds, 3),
            device=str(device),
            parameters=sum(t.numel() for t in model.parameters()),
            resumed_from_epoch=checkpoint.resumed_from_epoch,
        )
        Checkpoint.remove_all(self)


