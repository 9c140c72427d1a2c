"""How much memory one training step of the stacked GAT takes, and how many folds fit a device.

Counted from what ``kernels.gat`` and ``kernels.attention`` keep (float32 throughout), per node of
the union the step trains on (folds × batch graphs × atoms), for L layers of width M with N heads
(K = N·M channels), e edges per node with the self loops (about 15 on the study's Voronoi graphs):

- saved for backward, per layer: its input (19 or K), h (K), the Mish input (K) and four per-head
  vectors (a_src, a_dst, the softmax's max and sum: 4 N); after the layers the head's inputs (2 M)
  and the loss's few per node: 4·(23 + L·(3K + 4N) + 2M) bytes, exactly what autograd saves
  (``kernels.saved.SavedBytes``; tests/test_memory_plan.py, ``bench/gat_memory.py``).
- the union's CSR indices (src, dst and the transposed order: 3 e int64) and its inputs (19 + 1
  values): 24 e + 4·20 bytes.
- transients of a layer's backward: six (E, N) float tensors and four (n, K) ones: 4·(6 e N + 4 K).
- the weights, their gradients and Adam's two moments: 16 bytes per parameter.
"""
from __future__ import annotations

import math

IN_DIM = 19           # the study's features
FLOAT, INDEX = 4, 8   # bytes
GiB = 2**30
EDGES_PER_NODE = 15.0  # the study's Voronoi graphs: about 14 neighbours, and the self loop
MARGIN = 0.1, 2 * GiB  # of a GPU's memory kept free by default: a fraction, and bytes (CUDA context, fragments)


def parameters(layers: int, width: int, heads: int, in_dim: int = IN_DIM) -> int:
    """Weights of one model: each layer's (in, K) map, two attention vectors and bias, then FC(K→M)→FC(M→2)."""
    k = width * heads
    convs = sum((in_dim if i == 0 else k) * k + 3 * k for i in range(layers))
    return convs + k * width + width + width * 2 + 2


def saved_bytes(layers: int, width: int, heads: int, nodes: int, edges_per_node: float = EDGES_PER_NODE) -> float:
    """Bytes saved for backward by one step over ``nodes`` nodes (all folds of the union together)."""
    k = width * heads
    return FLOAT * nodes * (23 + layers * (3 * k + 4 * heads) + 2 * width)


def step_bytes(
    layers: int, width: int, heads: int, nodes: int, folds: int, edges_per_node: float = EDGES_PER_NODE
) -> float:
    """Bytes one training step of ``folds`` stacked models over ``nodes`` nodes in all takes at its peak:
    saved activations, the union's indices and inputs, a layer's backward transients, and the models'
    weights with their gradients and Adam's moments."""
    k = width * heads
    per_node = (INDEX * 3 * edges_per_node + FLOAT * (IN_DIM + 1)
                + FLOAT * (6 * edges_per_node * heads + 4 * k))
    return (saved_bytes(layers, width, heads, nodes, edges_per_node) + nodes * per_node
            + 16 * folds * parameters(layers, width, heads))


def folds_that_fit(layers: int, width: int, heads: int, atoms: int, batch: int, folds: int, budget_bytes: float,
                   edges_per_node: float = EDGES_PER_NODE) -> int:
    """The most of ``folds`` models stacked in one step within ``budget_bytes`` (at least 1: one that does
    not fit is tried, and meets the out-of-memory fallback)."""
    for stacked in range(folds, 0, -1):
        if step_bytes(layers, width, heads, stacked * batch * atoms, stacked, edges_per_node) <= budget_bytes:
            return stacked
    return 1


def stacks(folds: int, per_stack: int) -> list[int]:
    """Sizes of the stacks ``folds`` models train in, at most ``per_stack`` each, as even as possible:
    7 in stacks of 3 -> [3, 2, 2]."""
    count = math.ceil(folds / max(per_stack, 1))
    return [folds // count + (1 if i < folds % count else 0) for i in range(count)]


def data_bytes(graphs: int, atoms: int, edges_per_node: float = EDGES_PER_NODE) -> float:
    """Bytes of ``graphs`` graphs held on the device for a training (``kernels.training.Prepared``): x (19
    floats) and y (int64) per node; src, dst, the transposed order (int64) per edge and two row pointers."""
    return graphs * atoms * (FLOAT * IN_DIM + INDEX + INDEX * 3 * edges_per_node + 2 * INDEX)


def budget_bytes(gpu_memory_GiB: float, device_bytes: int | None) -> float:
    """Bytes a training step may take: ``gpu_memory_GiB`` when > 0 (``train.gpu_memory_GiB``), else a GPU's
    ``device_bytes`` less the margin, else (the CPU, ``device_bytes`` None) no limit."""
    if gpu_memory_GiB > 0:
        return gpu_memory_GiB * GiB
    if device_bytes is None:
        return math.inf
    return device_bytes * (1 - MARGIN[0]) - MARGIN[1]


def plan(layers: int, width: int, heads: int, atoms: int, batch: int, folds: int, budget: float,
         edges_per_node: float = EDGES_PER_NODE) -> list[int]:
    """Sizes of the stacks a grid point's ``folds`` models train in within ``budget`` bytes, largest first."""
    return stacks(folds, folds_that_fit(layers, width, heads, atoms, batch, folds, budget, edges_per_node))

