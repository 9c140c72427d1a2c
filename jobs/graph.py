"""The graph of one (specimen, shear direction): 19 node features, Voronoi edges, labels."""
from __future__ import annotations

import numpy as np

from jobs.common import Job
from kernels.features import FEATURE_NAMES, RESPONSE_NAMES, atomic_tensors, node_features
from kernels.frames import shear_rotation
from store import layout, records


class GraphJob(Job):
    """params: quench_key, structure_key, elastic_key, labels_key, specimen, direction, response_key
    (None, or the response whose columns follow the study's 19: ``kernels.features.graph_columns``)."""

    def run(self) -> None:
        p = self.p
        if not self.rank0:
            return
        q = self.input(p["quench_key"], ("types", "pe"))
        s = self.input(p["structure_key"], ("volume", "icosahedral", "participation", "neighbour_i", "neighbour_j"))
        e = self.input(p["elastic_key"], ("stress_volume", "stiffness_volume"))
        lab = self.input(p["labels_key"], ("thresholds_A2", "first_step", "mask", "event_d2min_A2"))
        stress, stiffness = atomic_tensors(e["stress_volume"], e["stiffness_volume"], s["volume"])
        rotation = shear_rotation(p["direction"])
        x = node_features(q["types"], s["icosahedral"], s["volume"], q["pe"], s["participation"],
                          stress, stiffness, rotation)
        names = FEATURE_NAMES
        if p.get("response_key"):
            r = self.input(p["response_key"], ("features",))
            directions = records.read(self.spec.store, p["response_key"])["params"]["directions"]
            x = np.concatenate([x, r["features"][directions.index(p["direction"])]], axis=1)
            names = FEATURE_NAMES + RESPONSE_NAMES
        if not np.all(np.isfinite(x)):
            raise RuntimeError(f"non-finite features in columns {np.flatnonzero(~np.isfinite(x).all(0)).tolist()}")
        g = self.fresh_group(feature_names=list(names), rotation=rotation.tolist(),
                             units="see kernels/features.py")
        layout.write_arrays(g, {
            "x": x.astype(np.float32), "edge_index": np.stack([s["neighbour_i"], s["neighbour_j"]]).astype(np.int64),
            "y": lab["mask"], "thresholds_A2": lab["thresholds_A2"], "first_step": lab["first_step"],
            "event_d2min_A2": lab["event_d2min_A2"],
        })
        self.finish(positives=lab["mask"].sum(axis=1).tolist(), n_edges=int(len(s["neighbour_i"])))
