"""The graph of one (specimen, shear direction): 19 node features, Voronoi edges, labels."""
from __future__ import annotations

import numpy as np

from jobs.common import Job
from kernels.features import FEATURE_NAMES, atomic_tensors, node_features
from kernels.frames import shear_rotation
from store import layout


class GraphJob(Job):
    """params: specimen, direction."""

    def run(self) -> None:
        p = self.p
        if not self.rank0:
            return
        k, d = p["specimen"], p["direction"]
        root = self.root()
        base = layout.specimen_path(k)
        q = layout.read(root, layout.quenched_path(k), ("types", "pe"))
        s = layout.read(root, f"{base}/structure", ("volume", "icosahedral", "participation",
                                                    "neighbour_i", "neighbour_j"))
        e = layout.read(root, f"{base}/elastic", ("stress_volume", "stiffness_volume"))
        lab = layout.read(root, f"{layout.shear_path(k, d)}/labels", ("thresholds_A2", "first_step", "mask"))
        d2 = layout.group(root, layout.shear_path(k, d))["d2min_A2"]
        stress, stiffness = atomic_tensors(e["stress_volume"], e["stiffness_volume"], s["volume"])
        rotation = shear_rotation(d)
        x = node_features(q["types"], s["icosahedral"], s["volume"], q["pe"], s["participation"],
                          stress, stiffness, rotation)
        if not np.all(np.isfinite(x)):
            raise RuntimeError(f"non-finite features in columns {np.flatnonzero(~np.isfinite(x).all(0)).tolist()}")
        # D2min of every atom at each threshold's first event (NaN row where it never fired)
        event_d2 = np.full(lab["mask"].shape, np.nan)
        for t, step in enumerate(lab["first_step"]):
            if step >= 0:
                event_d2[t] = d2[int(step)]
        path = layout.graph_path(k, d)
        g = self.fresh_group(path, feature_names=list(FEATURE_NAMES), rotation=rotation.tolist(),
                             units="see kernels/features.py")
        layout.write_arrays(g, {
            "x": x.astype(np.float32), "edge_index": np.stack([s["neighbour_i"], s["neighbour_j"]]).astype(np.int64),
            "y": lab["mask"], "thresholds_A2": lab["thresholds_A2"], "first_step": lab["first_step"],
            "event_d2min_A2": event_d2,
        })
        self.finish(path, positives=lab["mask"].sum(axis=1).tolist(), n_edges=int(len(s["neighbour_i"])))
