"""Labels of the first shear-transformation event for each D2min threshold.

An event at a strain step is at least ``min_group_size`` atoms whose D2min
(relative to the previous step) exceeds the threshold: the study labels "a
group of atoms" that first exceeds D2_thres (label 1), every other atom 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
