"""Benchmark: this project's stacked-fold GAT trainer against the plain PyG loop.

Same synthetic graphs as ../shared/bench/pyg_gat_baseline.py (n nodes, 19 features,
~14 neighbours, labels 1:500), same grid points, same optimiser and batch size.
The plain loop trains the 4 folds of a grid point one after another with PyG's
GATConv and DataLoader; the project trains them as one StackedGAT. Prints the
seconds per epoch of all 4 folds for both, the throughput ratio, the final
training losses (they should agree within seed noise), on a GPU the peak memory of
each (``torch.cuda.max_memory_allocated``) beside ``kernels.memory``'s prediction for the
stacked trainer, and projects the paper-scale grid's GPU-hours from the baseline's 75 H200-hours.
With ``--repeats R`` the two trainers run alternately R times and the median of each is kept
(timings on a machine that does other work meanwhile).

Usage: python bench/gat_vs_pyg.py [--nodes 10000] [--graphs 270] [--epochs 3] [--device cuda] [--repeats 3]
CPU default: a reduced size (1,000 nodes, 24 graphs per fold).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from kernels import memory
from kernels.training import Prepared, TrainOptions, fit

POINTS = [(2, 10, 6), (4, 15, 9), (4, 40, 9), (8, 25, 12), (12, 40, 15)]
FOLDS = 4


def graph(n: int, deg: int, rng) -> dict:
    src = np.repeat(np.arange(n), deg // 2)
    dst = rng.integers(0, n, n * deg // 2)
    keep = src != dst
    ei = np.concatenate([np.stack([src, dst])[:, keep], np.stack([dst, src])[:, keep]], axis=1)
    return {"x": rng.standard_normal((n, 19)).astype(np.float32), "edge_index": ei.astype(np.int64),
            "y": (rng.random(n) < 0.002).astype(np.int64)}


class PlainGAT(nn.Module):
    """The shared baseline's model, verbatim in structure."""

    def __init__(self, L, M, N):
        super().__init__()
        from torch_geometric.nn import GATConv
        dims = [19] + [M * N] * L
        self.convs = nn.ModuleList(GATConv(dims[i], M, heads=N) for i in range(L))
        self.fc = nn.Sequential(nn.Linear(M * N, M), nn.Mish(), nn.Linear(M, 2))

    def forward(self, x, ei):
        for c in self.convs:
            x = F.mish(c(x, ei))
        return self.fc(x)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_gib(device) -> float:
    """Peak memory allocated on a GPU since the last reset (NaN on the CPU), GiB; resets it."""
    if device.type != "cuda":
        return float("nan")
    peak = torch.cuda.max_memory_allocated(device) / memory.GiB
    torch.cuda.reset_peak_memory_stats(device)
    return peak


def plain_epochs(point, folds_data, epochs, bs, device):
    """The plain loop: each fold trained on its own, one after another. Returns (s per epoch, final losses)."""
    from torch_geometric.data import Data
    from torch_geometric.loader import DataLoader
    L, M, N = point
    times, losses = np.zeros(epochs), []
    peak_gib(device)
    for data in folds_data:
        torch.manual_seed(0)
        model = PlainGAT(L, M, N).to(device)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        w = torch.tensor([1.0, 100.0], device=device)
        loader = DataLoader([Data(x=torch.from_numpy(g["x"]), edge_index=torch.from_numpy(g["edge_index"]),
                                  y=torch.from_numpy(g["y"])) for g in data], batch_size=bs, shuffle=True)
        for ep in range(epochs):
            sync(device)
            t = time.perf_counter()
            total = 0.0
            for b in loader:
                b = b.to(device, non_blocking=True)
                loss = F.cross_entropy(model(b.x, b.edge_index), b.y, weight=w)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item() / len(loader)
            sync(device)
            times[ep] += time.perf_counter() - t
        losses.append(total)
        del model, opt, loader
    return times, losses, peak_gib(device)


def stacked_epochs(point, folds_data, epochs, bs, device):
    """The project: the 4 folds as one StackedGAT (kernels.training.fit), timed per epoch."""
    L, M, N = point
    sets = [Prepared(d, np.zeros(19, np.float32), np.ones(19, np.float32), device) for d in folds_data]
    weights = [torch.tensor([1.0, 100.0]) for _ in folds_data]
    opts = TrainOptions(epochs=1, learning_rate=1e-3, batch_graphs=bs, seed=0, loss="weighted_ce",
            sampling="none", focal_gamma=2.0, sampling_ratio=10.0)
    # one fit per epoch would re-initialise: time a multi-epoch fit and split evenly, after a warm-up
    fit(sets, weights, L, M, N, opts, device=device)
    sync(device)
    peak_gib(device)
    t = time.perf_counter()
    _, hist = fit(sets, weights, L, M, N, dataclasses.replace(opts, epochs=epochs), device=device)
    sync(device)
    total = time.perf_counter() - t
    times = np.full(epochs, total / epochs)
    return times, [h["train_loss"][-1] for h in hist], peak_gib(device)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--nodes", type=int, default=None)
    ap.add_argument("--graphs", type=int, default=None, help="training graphs per fold")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--points", default=None, help="e.g. 2,10,6;4,15,9")
    ap.add_argument("--repeats", type=int, default=1, help="run the two trainers alternately this many times")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    cpu = device.type == "cpu"
    nodes = args.nodes or (1000 if cpu else 10_000)
    n_graphs = args.graphs or (24 if cpu else 270)
    points = ([tuple(int(v) for v in p.split(",")) for p in args.points.split(";")] if args.points
              else (POINTS[:2] if cpu else POINTS))
    rng = np.random.default_rng(0)
    pool = [graph(nodes, 14, rng) for _ in range(n_graphs + n_graphs // 3)]
    # 4 folds: each trains on all but a quarter of the pool (as 4-fold CV over train+validation)
    quarter = len(pool) // 4
    folds_data = [[g for i, g in enumerate(pool) if not (f * quarter <= i < (f + 1) * quarter)][:n_graphs]
                  for f in range(FOLDS)]
    edges_per_node = float(np.mean([g["edge_index"].shape[1] for g in pool])) / nodes + 1  # with the self loop
    print(f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}), torch "
          f"{torch.__version__}; {nodes} nodes x {n_graphs} graphs per fold, {FOLDS} folds, batch {args.batch}, "
          f"{args.epochs} timed epochs")
    print(f"{'L':>3} {'M':>3} {'N':>3} {'plain s/epoch (4 folds)':>24} {'stacked s/epoch':>16} {'speed-up':>9} "
          f"{'final loss plain':>17} {'stacked':>8} {'GiB plain':>10} {'stacked':>8} {'model':>6}")
    results = []
    for point in points:
        runs = []
        for _ in range(args.repeats):
            pt, pl, plain_peak = plain_epochs(point, folds_data, args.epochs + 1, args.batch, device)
            st, sl, stacked_peak = stacked_epochs(point, folds_data, args.epochs, args.batch, device)
            runs.append((float(np.min(pt[1:])), float(np.min(st))))  # the plain loop's first epoch: warm-up
        plain_s, stacked_s = (float(np.median(column)) for column in zip(*runs))
        model = (memory.step_bytes(*point, FOLDS * args.batch * nodes, FOLDS, edges_per_node)
                 + memory.data_bytes(FOLDS * n_graphs, nodes, edges_per_node)) / memory.GiB
        r = {"L": point[0], "M": point[1], "N": point[2], "plain_s": plain_s, "stacked_s": stacked_s,
             "speedup": plain_s / stacked_s, "speedups": [p / q for p, q in runs],
             "loss_plain": float(np.mean(pl)), "loss_stacked": float(np.mean(sl)),
             "peak_GiB_plain": plain_peak, "peak_GiB_stacked": stacked_peak, "model_GiB_stacked": model}
        results.append(r)
        print(f"{point[0]:>3} {point[1]:>3} {point[2]:>3} {plain_s:>24.3f} {stacked_s:>16.3f} {r['speedup']:>8.2f}x "
              f"{r['loss_plain']:>17.4f} {r['loss_stacked']:>8.4f} {plain_peak:>10.2f} {stacked_peak:>8.2f} "
              f"{model:>6.2f}", flush=True)
    mean = float(np.exp(np.mean(np.log([r["speedup"] for r in results]))))
    print(f"geometric-mean speed-up {mean:.2f}x over {len(results)} grid points (target >= 3x on one GPU)")
    if device.type == "cuda":
        print(f"paper-scale grid (168 points x 4 folds) projected at {75 / mean:.0f} GPU-hours, from the plain "
              "loop's ~75 H200-hours (shared/docs/gpu-baseline.md)")
    else:
        print("GPU-hours are projected only from a GPU run (--device cuda)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": str(device), "nodes": nodes, "graphs": n_graphs, "epochs": args.epochs,
                       "repeats": args.repeats, "torch": torch.__version__, "results": results,
                       "geomean_speedup": mean}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
