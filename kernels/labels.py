"""Labels of the first shear-transformation event for each D2min threshold.

The study labels "a group of atoms" that first exceeds D2_thres (label 1), every
other atom 0. Two readings of "a group" (``labels.event``):

- ``anywhere``: at least ``min_group_size`` atoms above the threshold at one strain
  step, wherever they are in the box; every atom above it is labelled.
- ``cluster``: at least ``min_group_size`` atoms above the threshold that form one
  cluster through neighbours within the D2min cutoff (in the step's earlier frame);
  the atoms of every such cluster are labelled (``labels.positive: cluster``) or every
  atom above the threshold (``above``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


@dataclass(frozen=True)
class FirstEvents:
    """First events of T thresholds over the steps seen so far.

    step (T,) int64: first step index with an event, -1 if none yet.
    mask (T, N) bool: atoms above the threshold at that step (all False if none).
    """

    step: np.ndarray
    mask: np.ndarray

    @property
    def complete(self) -> bool:
        """Every threshold has had its first event."""
        return bool(np.all(self.step >= 0))


def no_events(n_thresholds: int, n_atoms: int) -> FirstEvents:
    return FirstEvents(np.full(n_thresholds, -1, dtype=np.int64), np.zeros((n_thresholds, n_atoms), dtype=bool))


def update(events: FirstEvents, step: int, d2min: np.ndarray, thresholds: np.ndarray,
           min_group_size: int) -> FirstEvents:
    """Events after one more step. d2min (N,) Å² at ``step``; thresholds (T,) Å²."""
    above = d2min[None, :] > np.asarray(thresholds, dtype=float)[:, None]          # (T, N)
    new = (events.step < 0) & (above.sum(axis=1) >= min_group_size)               # (T,)
    return FirstEvents(np.where(new, step, events.step), np.where(new[:, None], above, events.mask))


def first_events(d2min: np.ndarray, thresholds: np.ndarray, min_group_size: int) -> FirstEvents:
    """First events over a whole run. d2min (K, N) Å², one row per strain step."""
    d2min = np.asarray(d2min, dtype=float)
    events = no_events(len(thresholds), d2min.shape[1])
    for k, row in enumerate(d2min):  # a loop over steps, not atoms
        events = update(events, k, row, thresholds, min_group_size)
    return events


def clustered(above: np.ndarray, i: np.ndarray, j: np.ndarray, min_group_size: int) -> np.ndarray:
    """Atoms of ``above`` (N,) bool that belong to a cluster of at least ``min_group_size`` of them,
    clusters joined through neighbour pairs (i, j) (P,). Returns (N,) bool."""
    n = len(above)
    keep = above[i] & above[j]
    graph = coo_matrix((np.ones(keep.sum()), (i[keep], j[keep])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    sizes = np.bincount(component[above], minlength=n) if above.any() else np.zeros(n, dtype=int)
    return above & (sizes[component] >= min_group_size)


def first_cluster_events(d2min: np.ndarray, thresholds: np.ndarray, min_group_size: int,
                         pairs: Callable[[int], tuple[np.ndarray, np.ndarray]],
                         positive: str = "cluster") -> FirstEvents:
    """First events whose atoms above the threshold form a cluster of at least ``min_group_size``.

    d2min (K, N) Å²; pairs(k) -> (i, j) neighbour pairs of the frame step k's D2min is measured from
    (asked only at steps where enough atoms exceed the smallest threshold still waiting).
    positive: "cluster" labels the atoms of those clusters, "above" every atom above the threshold.
    """
    d2min = np.asarray(d2min, dtype=float)
    thresholds = np.asarray(thresholds, dtype=float)
    events = no_events(len(thresholds), d2min.shape[1])
    for k, row in enumerate(d2min):
        waiting = np.flatnonzero(events.step < 0)
        if len(waiting) == 0:
            break
        above = row[None, :] > thresholds[waiting, None]                          # (W, N)
        if not (above.sum(axis=1) >= min_group_size).any():
            continue
        i, j = pairs(k)
        step, mask = events.step.copy(), events.mask.copy()
        for t, a in zip(waiting, above):
            members = clustered(a, i, j, min_group_size)
            if members.any():
                step[t], mask[t] = k, members if positive == "cluster" else a
        events = FirstEvents(step, mask)
    return events
