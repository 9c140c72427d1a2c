"""Graphs in the store, loaded as ``torch_geometric.data.Data``."""
from __future__ import annotations

from typing import Any

import numpy as np

from store import layout, records

STUDY_THRESHOLD_A2 = 0.1


def threshold_row(thresholds: np.ndarray, threshold: float | None) -> int:
    """Row of ``threshold`` (Å²) in the stored list; None means the study's 0.1 Å²."""
    want = STUDY_THRESHOLD_A2 if threshold is None else threshold
    rows = np.flatnonzero(np.isclose(thresholds, want, rtol=1e-9, atol=0))
    if len(rows) == 0:
        raise layout.StoreError(f"threshold {want} A^2 is not among the stored thresholds {thresholds.tolist()}")
    return int(rows[0])


def graph_key(store_path: str, specimen: int, direction: str, config_hash: str | None = None) -> str:
    """The key of the graph of (specimen, direction) in the configuration ``config_hash`` (default:
    the one launched last into the store), from the store's index (root attributes ``configs``)."""
    attrs: dict[str, Any] = dict(layout.open_root(store_path).attrs)
    configs = attrs.get("configs", {})
    chosen = config_hash or attrs.get("science_hash")
    if chosen not in configs:
        raise layout.StoreError(f"store {store_path} holds no configuration {chosen} (it holds "
                                f"{', '.join(configs) or 'none'})")
    name = f"s{specimen:03d}/{direction}"
    if name not in configs[chosen]["graphs"]:
        raise layout.StoreError(f"configuration {chosen} has no graph of specimen {specimen} sheared in {direction}")
    return configs[chosen]["graphs"][name]


def load_graph(store_path: str, specimen: int, direction: str, threshold: float | None = None,
               config_hash: str | None = None):
    """The graph of ``specimen`` sheared in ``direction``, labelled at ``threshold`` (Å², default 0.1),
    of the configuration ``config_hash`` (default: the one launched last into the store).

    Returns Data with x (N, 19) float32 (order: ``kernels.features.FEATURE_NAMES``),
    edge_index (2, E) int64 (Voronoi neighbours, both directions), y (N,) int64 (1: atom
    of the first event above the threshold), d2min (N,) float32 Å² at that event (NaN if
    none), and specimen, direction, threshold, key. StoreError if the graph is not done, or
    is not the data its record describes (checked against the record's sha256).
    """
    import torch
    from torch_geometric.data import Data

    key = graph_key(store_path, specimen, direction, config_hash)
    try:
        g = records.read_checked(store_path, key, ("x", "edge_index", "y", "thresholds_A2", "event_d2min_A2"))
    except records.Damaged as e:
        raise layout.StoreError(f"{e}; `python -m campaign verify` retires it, and `launch` makes it again") from None
    row = threshold_row(g["thresholds_A2"], threshold)
    return Data(x=torch.from_numpy(g["x"]), edge_index=torch.from_numpy(g["edge_index"]),
                y=torch.from_numpy(g["y"][row].astype(np.int64)),
                d2min=torch.from_numpy(g["event_d2min_A2"][row].astype(np.float32)),
                specimen=specimen, direction=direction, threshold=float(g["thresholds_A2"][row]), key=key)
