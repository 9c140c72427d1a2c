"""Benchmark: activation memory a training step saves for backward, this project's trainer against
plain PyG, counted on any device (the CPU here) with ``torch.autograd.graph.saved_tensors_hooks``.

A step's saved tensors are what stays allocated between forward and backward: the bulk of a GAT's
training memory. Counted once per tensor storage (views and reused tensors once), on synthetic
graphs shaped like the study's (``bench/gat_vs_pyg.graph``: ~14 neighbours per node, 19 features),
for one batch of ``--batch`` graphs: plain PyG ``GATConv`` (one fold, as the plain loop runs) and the
stacked trainer (``kernels.training.fit``: ``--folds`` folds in one step). Saved bytes are a part that
grows linearly with the nodes plus the weights (saved by the matrix products), so each is counted at
two graph sizes and extrapolated to 10,000-node graphs along that line. Prints GiB per step and the
memory model's prediction (``kernels.memory.saved_bytes``, activations, plus the weights).

Usage: python bench/gat_memory.py [--nodes 500] [--points "2,10,6;12,40,15"] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F
from gat_vs_pyg import POINTS, PlainGAT, graph  # bench/, beside this file

from kernels import memory
from kernels.memory import FLOAT
from kernels.saved import SavedBytes
from kernels.training import Prepared, TrainOptions, fit

PAPER_NODES = 10_000


def plain_step(point, graphs) -> float:
    """GiB saved by one plain PyG step on ``graphs`` (one batch, one fold)."""
    from torch_geometric.data import Batch, Data
    b = Batch.from_data_list([Data(x=torch.from_numpy(g["x"]), edge_index=torch.from_numpy(g["edge_index"]),
                                   y=torch.from_numpy(g["y"])) for g in graphs])
    model, saved = PlainGAT(*point), SavedBytes()
    with saved:
        loss = F.cross_entropy(model(b.x, b.edge_index), b.y, weight=torch.tensor([1.0, 100.0]))
    loss.backward()
    return saved.gib


def stacked_step(point, folds_graphs) -> float:
    """GiB saved by one step of ``kernels.training.fit`` over the folds (one batch each)."""
    sets = [Prepared(g, np.zeros(19, np.float32), np.ones(19, np.float32), "cpu") for g in folds_graphs]
    opts = TrainOptions(epochs=1, learning_rate=1e-3, batch_graphs=len(folds_graphs[0]), seed=0,
            loss="weighted_ce", sampling="none", focal_gamma=2.0, sampling_ratio=1.0)
    saved = SavedBytes()
    with saved:
        fit(sets, [torch.tensor([1.0, 100.0])] * len(sets), *point, opts)
    return saved.gib  # one step: every storage saved by it (the step's graph is freed after backward)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=300, help="nodes per graph counted, and twice that")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--points", default=None, help="e.g. 2,10,6;12,40,15 (default: the paper grid at N = 15 "
                                                    "and the GPU check's points)")
    ap.add_argument("--plain", action=argparse.BooleanOptionalAction, default=True, help="count plain PyG too")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    points = ([tuple(int(v) for v in p.split(",")) for p in args.points.split(";")] if args.points
              else POINTS + [(L, M, 15) for L in (2, 4, 6, 8, 10, 12) for M in (10, 15, 20, 25, 30, 35, 40)
                             if (L, M, 15) not in POINTS])
    rng = np.random.default_rng(0)
    sizes = (args.nodes, 2 * args.nodes)
    graphs = {n: [[graph(n, 14, rng) for _ in range(args.batch)] for _ in range(args.folds)] for n in sizes}
    edges = float(np.mean([g["edge_index"].shape[1] for fg in graphs[sizes[1]] for g in fg])) / sizes[1]

    def at_paper_size(count) -> float:  # counted at both sizes, along the line to PAPER_NODES
        small, large = (count(n) for n in sizes)
        return small + (large - small) * (PAPER_NODES - sizes[0]) / (sizes[1] - sizes[0])

    print(f"saved for backward per training step, GiB, for {PAPER_NODES:,}-node graphs x {args.batch} "
          f"(counted at {sizes[0]} and {sizes[1]} nodes, {edges:.1f} edges per node without self loops)")
    print(f"{'L':>3} {'M':>3} {'N':>3} {'plain PyG, 1 fold':>18} {f'stacked, {args.folds} folds':>18} "
          f"{'per fold / PyG':>15} {'model':>8}")
    rows = []
    for point in points:
        stacked = at_paper_size(lambda n: stacked_step(point, graphs[n]))  # noqa: B023  (called at once)
        plain = at_paper_size(lambda n: plain_step(point, graphs[n][0])) if args.plain else float("nan")  # noqa: B023
        predicted = (memory.saved_bytes(*point, nodes=PAPER_NODES * args.batch * args.folds)
                     + FLOAT * args.folds * memory.parameters(*point)) / 2**30
        rows.append({"L": point[0], "M": point[1], "N": point[2], "plain_GiB": plain, "stacked_GiB": stacked,
                     "model_GiB": predicted})
        print(f"{point[0]:>3} {point[1]:>3} {point[2]:>3} {plain:>18.2f} {stacked:>18.2f} "
              f"{stacked / args.folds / plain:>15.2f} {predicted:>8.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"nodes_counted": sizes, "scaled_to": PAPER_NODES, "batch": args.batch,
                       "folds": args.folds, "torch": torch.__version__, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
