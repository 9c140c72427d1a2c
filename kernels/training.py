"""Training GAT models on in-memory graphs: standardisation, losses, the stacked training loop.

Graphs are dicts of numpy arrays: x (n, F) float32 (F = 19 for the study's features), edge_index (2, E) int64,
y (n,) int64, and for a direction-aware model edge_attr (E, D) float32; every graph of a campaign has the same n
(the specimen's atoms),
which is what lets ``fit`` train F models on F different training sets as one
``StackedGAT``.
"""
from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from kernels.attention import Adjacency
from kernels.gat import StackedGAT


def standardiser(graphs: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature (mean, std) over every atom of ``graphs``; identity on the one-hot columns (those
    holding only 0 and 1: the study's f1..f4, whatever feature set the graphs carry)."""
    x = np.concatenate([g["x"] for g in graphs]).astype(np.float64)
    mean, std = np.zeros(x.shape[1]), np.ones(x.shape[1])
    continuous = ~np.all((x == 0) | (x == 1), axis=0)
    mean[continuous] = x[:, continuous].mean(0)
    std[continuous] = x[:, continuous].std(0)
    std[std == 0] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def class_weights(graphs: list[dict]) -> torch.Tensor:
    """Weighted cross-entropy weights n / (2 n_c) from the class counts of ``graphs``."""
    y = np.concatenate([g["y"] for g in graphs])
    counts = np.bincount(y, minlength=2).astype(float)
    return torch.tensor(len(y) / (2 * np.maximum(counts, 1)), dtype=torch.float32)


LOSSES = ("weighted_ce", "focal")
SAMPLINGS = ("none", "undersample", "oversample")
EARLY_STOP_LOSSES = ("training", "unweighted")


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainOptions:
    """How ``fit`` trains (the campaign's ``train`` section gives every one; the defaults are the plain choices).

    epochs: at most; learning_rate: Adam's; batch_graphs: graphs per model and step; seed: of model f is
    seed + f unless ``fit`` is given seeds; loss: weighted_ce (the training class weights) or focal (with
    focal_gamma); sampling: none, undersample or oversample (with sampling_ratio, negatives per
    positive); steps_per_epoch: default enough batches for the largest training set (give it when the same
    folds may be stacked with different companions); patience and early_stop_loss: ``EarlyStopping``
    (needed with validation sets)."""
    epochs: int
    learning_rate: float
    batch_graphs: int
    seed: int = 0
    loss: str = "weighted_ce"
    focal_gamma: float = 2.0
    sampling: str = "none"
    sampling_ratio: float = 1.0
    steps_per_epoch: int | None = None
    patience: int | None = None
    early_stop_loss: str = "training"

    def __post_init__(self):
        for name, value, allowed in (("loss", self.loss, LOSSES), ("sampling", self.sampling, SAMPLINGS),
                                     ("early_stop_loss", self.early_stop_loss, EARLY_STOP_LOSSES)):
            if value not in allowed:
                raise ValueError(f"{name} {value!r}: one of {', '.join(allowed)}")


def loss_fn(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, opts: TrainOptions,
            gen: torch.Generator):
    """The configured loss of one model's logits (n, 2) and labels (n,)."""
    if opts.sampling == "undersample":
        pos = torch.nonzero(y == 1).flatten()
        neg = torch.nonzero(y == 0).flatten()
        keep = max(1, int(opts.sampling_ratio * max(len(pos), 1)))
        neg = neg[torch.randperm(len(neg), generator=gen, device="cpu")[:keep].to(neg.device)]
        idx = torch.cat([pos, neg])
        return F.cross_entropy(logits[idx], y[idx])
    if opts.sampling == "oversample":
        pos = torch.nonzero(y == 1).flatten()
        neg = torch.nonzero(y == 0).flatten()
        if len(pos):
            want = max(len(pos), int(len(neg) / opts.sampling_ratio))
            extra = pos[torch.randint(len(pos), (want - len(pos),), generator=gen).to(pos.device)]
            idx = torch.cat([neg, pos, extra])
            return F.cross_entropy(logits[idx], y[idx])
        return F.cross_entropy(logits, y)
    if opts.loss == "focal":
        logp = torch.log_softmax(logits, -1).gather(1, y[:, None]).squeeze(1)
        alpha = (weight / weight.sum())[y]
        return -(alpha * (1 - logp.exp()) ** opts.focal_gamma * logp).sum() / alpha.sum()
    return F.cross_entropy(logits, y, weight=weight)


class Prepared:
    """One model's graphs as tensors on ``device``, standardised with given statistics; each graph's
    edges with self loops in CSR order (``Adjacency``), built once."""

    def __init__(self, graphs: list[dict], mean: np.ndarray, std: np.ndarray, device):
        # float32 whatever the columns joined to x were (the local yield stress is float64)
        self.x = [torch.from_numpy(((g["x"] - mean) / std).astype(np.float32)).to(device) for g in graphs]
        self.y = [torch.from_numpy(g["y"].astype(np.int64)).to(device) for g in graphs]
        self.n = graphs[0]["x"].shape[0]
        self.graphs = [Adjacency.of(torch.from_numpy(g["edge_index"]), self.n,
                                    torch.from_numpy(g["edge_attr"]) if "edge_attr" in g else None).to(device)
                       for g in graphs]

    @property
    def edge_dim(self) -> int:
        """Features per edge (0: none)."""
        attr = self.graphs[0].edge_attr
        return 0 if attr is None else attr.shape[1]

    def batch(self, idx: list[int]) -> tuple[torch.Tensor, Adjacency, torch.Tensor]:
        """Graphs idx as one disjoint union: x (B·n, F), its Adjacency, y (B·n,)."""
        x = torch.cat([self.x[i] for i in idx])
        return x, Adjacency.union([self.graphs[i] for i in idx]), torch.cat([self.y[i] for i in idx])


def loss_terms(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None,
               opts: TrainOptions | None):
    """(sum of per-atom losses, sum of their weights) of the loss a model trains on, over all atoms
    (no resampling): the focal loss, or the cross-entropy weighted by the training class weights
    (the expectation of what under- and over-sampled batches train on); plain cross-entropy
    without ``weight``. Summed over batches, their ratio is the loss of the whole set."""
    nll = F.cross_entropy(logits, y, reduction="none")
    if weight is None:
        return nll.sum(), torch.tensor(float(len(y)))
    if opts is not None and opts.loss == "focal" and opts.sampling == "none":
        alpha = (weight / weight.sum())[y]
        return (alpha * (1 - torch.exp(-nll)) ** opts.focal_gamma * nll).sum(), alpha.sum()
    w = weight[y]
    return (w * nll).sum(), w.sum()


@torch.no_grad()
def predict(model: StackedGAT, data: Prepared, batch: int = 8, weight: torch.Tensor | None = None,
            opts: TrainOptions | None = None) -> tuple[np.ndarray, float]:
    """Scores P(STZ) (G·n,) of a folds=1 model on every graph of ``data``, and its loss there: the
    training loss with the class ``weight`` (see :func:`loss_terms`), or without it the unweighted
    cross-entropy."""
    model.eval()
    scores, total, norm = [], 0.0, 0.0
    for start in range(0, len(data.x), batch):
        idx = list(range(start, min(start + batch, len(data.x))))
        x, adj, y = data.batch(idx)
        logits = model(x[None], adj)[0]
        scores.append(torch.softmax(logits, -1)[:, 1].cpu())
        s, w = loss_terms(logits, y, weight, opts)
        total, norm = total + s.item(), norm + w.item()
    model.train()
    return torch.cat(scores).numpy(), total / norm


def new_model(in_dim: int, layers: int, width: int, heads: int, edge_dim: int = 0, conv: str | None = None):
    """One fresh model: the stacked GAT (``conv`` None: the study's, the fast path) or L layers of any
    PyG convolution named by ``conv`` (``kernels.pyg_stack``)."""
    if conv is None:
        return StackedGAT(in_dim, layers, width, heads, folds=1, edge_dim=edge_dim)
    from kernels.pyg_stack import PyGStack
    return PyGStack(conv, in_dim, layers, width, heads, folds=1, edge_dim=edge_dim)


class CheckpointMismatch(ValueError):
    """A saved training state given to ``fit`` for models of another architecture or seeds."""


def _to_cpu(obj):
    """A copy of nested dicts/lists/tuples with every tensor copied to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return copy.deepcopy(obj)


class EarlyStopping:
    """Each model of a stack keeps its state of lowest validation loss and stops once it has not improved
    for ``patience`` epochs (the stack stops when all have). Its state is the checkpoint's entries "best"
    (each model's best weights, None before the first validation), "best_loss" and "stale" (epochs since
    the best); the epoch of the best is kept in each model's history ("best_epoch")."""

    def __init__(self, n_models: int, patience: int):
        self.patience = patience
        self.best: list[dict | None] = [None] * n_models
        self.best_loss = [math.inf] * n_models
        self.stale = [0] * n_models

    def restore(self, state: dict, device) -> None:
        """Go on from a checkpoint's entries (``state``)."""
        self.best_loss, self.stale = state["best_loss"], state["stale"]
        self.best = [None if b is None else {k: v.to(device) for k, v in b.items()} for b in state["best"]]

    def state(self) -> dict:
        return {"best": _to_cpu(self.best), "best_loss": list(self.best_loss), "stale": list(self.stale)}

    def training(self) -> list[int]:
        """The models still training."""
        return [f for f, s in enumerate(self.stale) if s < self.patience]

    def update(self, f: int, loss: float, epoch: int, weights: Callable[[], dict], history: dict) -> None:
        """Model f's validation ``loss`` after ``epoch``; ``weights()`` its state, taken when it is the best."""
        history["val_loss"].append(loss)
        if loss < self.best_loss[f]:
            self.best_loss[f], self.stale[f] = loss, 0
            self.best[f] = weights()
            history["best_epoch"] = epoch
        else:
            self.stale[f] += 1

    @property
    def done(self) -> bool:
        return not self.training()


def _state(epoch, model, optimiser, gens, history, stopping: EarlyStopping, seeds, architecture) -> dict:
    """Everything ``fit`` needs to go on after ``epoch``, as CPU tensors and plain data."""
    return {"epoch": epoch, "model": _to_cpu(model.state_dict()), "optimiser": _to_cpu(optimiser.state_dict()),
            "generators": [g.get_state() for g in gens], "history": _to_cpu(history), **stopping.state(),
            "seeds": list(seeds), "architecture": architecture}


def fit(train_sets: list[Prepared], weights: list[torch.Tensor], layers: int, width: int, heads: int,
        opts: TrainOptions, val_sets: list[Prepared] | None = None, device="cpu",
        seeds: list[int] | None = None, resume: dict | None = None,
        save: Callable[[dict], None] | None = None, save_every: int = 0,
        on_epoch: Callable[[int, list[float]], None] | None = None,
        conv: str | None = None, save_finished: bool = False) -> tuple[list, list[dict]]:
    """Train len(train_sets) models of one architecture as one stack.

    Model f is initialised, shuffled and sampled from its own seed (``seeds[f]``,
    default opts.seed + f), so it trains the same whether stacked with others or alone.

    ``opts`` (``TrainOptions``) says how. With ``val_sets`` (which need opts.patience) each model keeps its
    state of lowest validation loss and stops when it has not improved for ``patience`` epochs
    (``EarlyStopping``; the stack stops when all have). The validation loss is the loss the model trains
    on, with its training class weights (early_stop_loss "training"), or the unweighted cross-entropy
    ("unweighted"), which
    at 1:100 rewards drifting towards the prior rather than ranking atoms better.
    Without ``val_sets`` every model trains ``epochs`` epochs. ``conv``: None for the stacked GAT
    (the study's model, the fast path), or the name of any PyG convolution (``kernels.pyg_stack``,
    F plain PyG models run one after another). Graphs with edge features (``Prepared.edge_dim``)
    give every layer edge features. Returns the F trained folds=1 models and their histories.

    Checkpoints: with ``save`` and ``save_every`` > 0, ``save(state)`` is called after every
    ``save_every``-th epoch with the whole training state (weights, optimiser, each model's
    random generator, histories, early-stopping bests; tensors on the CPU). Given such a state
    as ``resume``, training goes on after its epoch and, on the CPU, ends bitwise where an
    uninterrupted run ends. With ``save_finished`` the trained models are saved too, once trained
    (``finished``: a stack that a job trains before others is not trained again when the job is resumed);
    given as ``resume``, such a state returns them at once. ``on_epoch(epoch, training losses of the
    models)`` is called after every epoch (progress reports).
    """
    n_models = len(train_sets)
    seeds = seeds if seeds is not None else [opts.seed + f for f in range(n_models)]
    singles = []
    for seed in seeds:
        torch.manual_seed(seed)
        singles.append(new_model(train_sets[0].x[0].shape[1], layers, width, heads, train_sets[0].edge_dim, conv))
    model = type(singles[0]).stack(singles).to(device)
    # what a checkpoint is checked against: the study's GAT as before, other models with what differs
    architecture = [layers, width, heads] + ([model.edge_dim] if model.edge_dim else []) + ([conv] if conv else [])
    gens = [torch.Generator().manual_seed(seed) for seed in seeds]
    optimiser = torch.optim.Adam(model.parameters(), lr=opts.learning_rate)
    weights = [w.to(device) for w in weights]
    b = opts.batch_graphs
    steps = opts.steps_per_epoch or math.ceil(max(len(s.x) for s in train_sets) / b)
    history: list[dict[str, Any]] = [{"train_loss": [], "val_loss": [], "best_epoch": None} for _ in range(n_models)]
    if val_sets is not None and opts.patience is None:
        raise ValueError("validation sets need opts.patience")
    stopping = EarlyStopping(n_models, opts.patience or 0)
    start = 0
    if resume is not None:
        if resume["seeds"] != list(seeds) or resume["architecture"] != architecture:
            raise CheckpointMismatch(
                f"the checkpoint is of models {resume['architecture']} with seeds {resume['seeds']}, "
                f"not {architecture} with seeds {list(seeds)}"
            )
        if resume.get("finished"):
            for single, state in zip(singles, resume["models"]):
                single.load_state_dict(state)
            return [single.to(device) for single in singles], resume["history"]
        model.load_state_dict(resume["model"])
        optimiser.load_state_dict(resume["optimiser"])
        for gen, state in zip(gens, resume["generators"]):
            gen.set_state(state)
        history = resume["history"]
        stopping.restore(resume, device)
        start = resume["epoch"] + 1
    for epoch in range(start, opts.epochs):
        orders = []
        for s, gen in zip(train_sets, gens):  # each model sees each of its graphs at least once per epoch
            reps = math.ceil(steps * b / len(s.x))
            orders.append(torch.cat([torch.randperm(len(s.x), generator=gen) for _ in range(reps)]).tolist())
        totals = torch.zeros(n_models, device=device)  # summed on the device: no sync per step
        for step in range(steps):
            parts = [s.batch(o[step * b:(step + 1) * b]) for s, o in zip(train_sets, orders)]
            x = torch.stack([p[0] for p in parts])
            logits = model(x, Adjacency.union([p[1] for p in parts]))
            losses = torch.stack([loss_fn(logits[f], parts[f][2], weights[f], opts, gens[f])
                                  for f in range(n_models)])
            optimiser.zero_grad(set_to_none=True)
            losses.sum().backward()
            optimiser.step()
            totals += losses.detach()
        losses_now = (totals / steps).tolist()
        for f, total in enumerate(losses_now):
            history[f]["train_loss"].append(total)
        if on_epoch is not None:
            on_epoch(epoch, losses_now)
        if val_sets is None:
            continue
        for f in stopping.training():
            weight = weights[f] if opts.early_stop_loss == "training" else None
            single = model.select(f)
            _, vloss = predict(single, val_sets[f], weight=weight, opts=opts)
            stopping.update(f, vloss, epoch, single.state_dict, history[f])
        last = stopping.done or epoch + 1 == opts.epochs
        if save is not None and save_every > 0 and (epoch + 1) % save_every == 0 and not last:
            save(_state(epoch, model, optimiser, gens, history, stopping, seeds, architecture))
        if stopping.done:
            break
    models = []
    for f in range(n_models):
        single = model.select(f)
        if stopping.best[f] is not None:
            single.load_state_dict(stopping.best[f])
        models.append(single)
    for h in history:
        h["epochs"] = len(h["train_loss"])
    if save is not None and save_finished:
        save({"finished": True, "models": [_to_cpu(m.state_dict()) for m in models], "history": _to_cpu(history),
              "seeds": list(seeds), "architecture": architecture})
    return models, history
