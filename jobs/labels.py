"""First-event labels of one shear, from the D2min it stored (seconds; no LAMMPS).

A task of its own, so that changing ``labels.*`` re-labels the stored shears instead of
shearing again; a shear is run again only when it stopped before the largest threshold
of the new labels could fire (``campaign.stages.specimens.Shear.covers``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jobs.common import Job, Params, Seq
from kernels.labels import first_cluster_events, first_events
from kernels.neighbours import neighbour_pairs
from store import layout


@dataclass(frozen=True, kw_only=True)
class LabelsParams(Params):
    shear_key: str
    specimen: int
    direction: str
    strain_step: float   # of the shear
    thresholds_A2: Seq   # D2min thresholds, Å²
    min_group_size: int
    event: str           # anywhere | cluster
    positive: str        # above | cluster
    d2min_cutoff_A: float


class LabelsJob(Job):
    """The first events of one shear at every threshold (``LabelsParams``). A cluster is joined through
    neighbours within d2min_cutoff_A in the frame a step's D2min is measured from (the step before).

    Writes thresholds_A2 (T,) Å², first_step (T,) int (-1: no event before the shear ended),
    first_strain (T,) (NaN: none), mask (T, N) bool (label 1: above the threshold at the first
    event) and event_d2min_A2 (T, N) Å² (every atom's D2min at that event; NaN row: none).
    """

    Params = LabelsParams

    def run(self) -> None:
        p = self.p
        if not self.rank0:
            return
        thresholds = np.array(p.thresholds_A2, dtype=float)
        if p.event == "cluster":
            shear = self.input(p.shear_key, ("d2min_A2", "positions", "cell"))
            d2 = shear["d2min_A2"]

            def pairs(step):
                i, j, _ = neighbour_pairs(shear["positions"][step - 1], shear["cell"][step - 1], p.d2min_cutoff_A)
                return i, j

            events = first_cluster_events(d2, thresholds, p.min_group_size, pairs, p.positive)
        else:
            d2 = self.input(p.shear_key, ("d2min_A2",))["d2min_A2"]
            events = first_events(d2, thresholds, p.min_group_size)
        first_strain = np.where(events.step >= 0, events.step * p.strain_step, np.nan)
        event_d2 = np.full(events.mask.shape, np.nan)
        for t, step in enumerate(events.step):
            if step >= 0:
                event_d2[t] = d2[step]
        g = self.fresh_group(direction=p.direction, shear=p.shear_key)
        layout.write_arrays(g, {"thresholds_A2": thresholds, "first_step": events.step,
                                "first_strain": first_strain, "mask": events.mask, "event_d2min_A2": event_d2})
        self.finish(steps=int(len(d2) - 1), first_step=events.step.tolist(), first_strain=first_strain.tolist(),
                    event_atoms=events.mask.sum(axis=1).tolist())
