"""The graph of one (specimen, shear direction): 19 node features, Voronoi edges, labels."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jobs.common import Job, Params
from kernels.features import FEATURE_NAMES, atomic_tensors, node_features
from kernels.frames import shear_rotation
from store import layout


@dataclass(frozen=True, kw_only=True)
class GraphParams(Params):
    quench_key: str
    structure_key: str
    elastic_key: str
    labels_key: str
    specimen: int
    direction: str  # signed shear direction, e.g. 'xy', '-xy'


class GraphJob(Job):
    """The graph of one shear (``GraphParams``). Other feature
    sets (the linear response) and edge features are joined when a model loads the graph
    (``jobs.evaluation.load``), so that adding them re-runs no task of the study."""

    Params = GraphParams

    def run(self) -> None:
        p = self.p
        if not self.rank0:
            return
        q = self.input(p.quench_key, ("types", "pe"))
        s = self.input(p.structure_key, ("volume", "icosahedral", "participation", "neighbour_i", "neighbour_j"))
        e = self.input(p.elastic_key, ("stress_volume", "stiffness_volume"))
        lab = self.input(p.labels_key, ("thresholds_A2", "first_step", "mask", "event_d2min_A2"))
        stress, stiffness = atomic_tensors(e["stress_volume"], e["stiffness_volume"], s["volume"])
        rotation = shear_rotation(p.direction)
        x = node_features(q["types"], s["icosahedral"], s["volume"], q["pe"], s["participation"],
                          stress, stiffness, rotation)
        if not np.all(np.isfinite(x)):
            raise RuntimeError(f"non-finite features in columns {np.flatnonzero(~np.isfinite(x).all(0)).tolist()}")
        g = self.fresh_group(feature_names=list(FEATURE_NAMES), rotation=rotation.tolist(),
                             units="see kernels/features.py")
        layout.write_arrays(g, {
            "x": x.astype(np.float32), "edge_index": np.stack([s["neighbour_i"], s["neighbour_j"]]).astype(np.int64),
            "y": lab["mask"], "thresholds_A2": lab["thresholds_A2"], "first_step": lab["first_step"],
            "event_d2min_A2": lab["event_d2min_A2"],
        })
        self.finish(positives=lab["mask"].sum(axis=1).tolist(), n_edges=int(len(s["neighbour_i"])))
