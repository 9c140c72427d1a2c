"""What the learning jobs share: graphs from the store, test evaluations written back."""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from jobs.common import Job, Params, Seq
from kernels import metrics as M
from kernels.features import FEATURE_NAMES, LYS_NAMES, PATH_NAMES, RESPONSE_NAMES, SOFTENING_NAMES, STUDY, columns_of
from kernels.frames import shear_rotation
from kernels.lys import atom_values, gather
from kernels.neighbours import bond_vectors
from store import graphs as store_graphs
from store import layout, records


@dataclass(frozen=True, kw_only=True)
class GraphInputs(Params):
    """What ``load`` reads of a learning job's params: its graphs and what is joined to them."""
    graphs: Seq                      # [[specimen, direction, graph key], ...]
    feature_set: str | None = None   # kernels.features.FEATURE_SETS (None: the study's 19)
    responses: Seq | None = None     # [[specimen, response key], ...], when the set reads the response
    softenings: Seq | None = None    # [[specimen, softening key], ...], alike
    lys: Seq | None = None           # [[specimen, direction, lys key], ...], alike
    quenches: Seq | None = None      # [[specimen, quench key], ...]: bond vectors on the edges


def load(job: Job, specimens: list[int], directions: list[str], threshold: float) -> tuple[list[dict], list]:
    """Graphs of ``specimens`` × ``directions`` labelled at ``threshold`` Å², as numpy dicts: the
    graphs of the task's own plan (params "graphs": [[specimen, direction, key], ...]), each
    checked against its record; and the [specimen, direction] left out. A shear with no event at
    ``threshold`` (it ended before one) has no first STZ there: its graph is left out.

    Node features x are the columns of the task's feature set (params "feature_set"; None: the
    study's 19): the graph's, joined with the linear response of its shear when the set needs it
    (params "responses": [[specimen, response key], ...]) and its mode softening (params "softenings",
    alike). With params "quenches" ([[specimen,
    quench key], ...]) each edge carries its bond vector r_j - r_i in the shear frame (Å):
    edge_attr (E, 3), what the direction-aware GAT attends with. With params "lys" ([[specimen,
    direction, lys key], ...], every batch of regions) the local residual strength is joined too."""
    keys = {(k, d): key for k, d, key in job.p.graphs}
    feature_set = job.p.feature_set or STUDY
    responses = {k: key for k, key in job.p.responses or ()}
    softenings = {k: key for k, key in job.p.softenings or ()}
    quenches = {k: key for k, key in job.p.quenches or ()}
    lys: dict = {}
    for k, d, key in job.p.lys or ():
        lys.setdefault((k, d), []).append(key)
    out, left_out = [], []
    for k in specimens:
        response = _per_direction(job, responses[k]) if k in responses else None
        softening = _per_direction(job, softenings[k]) if k in softenings else None
        quench = job.input(quenches[k], ("positions", "cell")) if k in quenches else None
        strength = _lys_columns(job, {d: lys[(k, d)] for d in directions if (k, d) in lys})
        for d in directions:
            g = job.input(keys[(k, d)], ("x", "edge_index", "y", "thresholds_A2", "first_step", "event_d2min_A2"))
            row = store_graphs.threshold_row(g["thresholds_A2"], threshold)
            if g["first_step"][row] < 0:
                left_out.append([k, d])
                continue
            # a graph's columns: the study's 19 (a graph written by the first version of features.sets also
            # holds the response's), then what is joined to it
            names = list(FEATURE_NAMES + RESPONSE_NAMES[:g["x"].shape[1] - len(FEATURE_NAMES)])
            columns = [g["x"]]
            if response is not None and RESPONSE_NAMES[0] not in names:
                columns.append(response[d])
                names += RESPONSE_NAMES
            if softening is not None:  # the path's column where the task followed it
                columns.append(softening[d])
                names += (SOFTENING_NAMES + PATH_NAMES)[:softening[d].shape[1]]
            if d in strength:
                columns.append(strength[d][:, None])
                names += LYS_NAMES
            x = np.concatenate(columns, axis=1)
            graph = {"x": x[:, columns_of(feature_set, names)], "edge_index": g["edge_index"],
                     "y": g["y"][row].astype(np.int64), "d2min": g["event_d2min_A2"][row], "specimen": k,
                     "direction": d}
            if quench is not None:
                bonds = bond_vectors(quench["positions"], quench["cell"], *g["edge_index"])
                graph["edge_attr"] = (bonds @ shear_rotation(d).T).astype(np.float32)
            out.append(graph)
    if not out:
        raise layout.StoreError(f"no shear of specimens {specimens} had an event at {threshold} A^2: nothing to "
                                "train or evaluate on")
    return out, left_out


def _per_direction(job: Job, key: str) -> dict[str, np.ndarray]:
    """{direction: (N, C) columns} of a response or softening task (``kernels.features.RESPONSE_NAMES``,
    ``SOFTENING_NAMES``): its "features" (D, N, C) by the directions it was given."""
    features = job.input(key, ("features",))["features"]
    directions = records.read(job.spec.store, key)["params"]["directions"]
    return {d: features[i] for i, d in enumerate(directions)}


def _lys_columns(job: Job, keys: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """{direction: (N,) GPa} of one specimen: the residual strength Δτ_c of each direction's regions
    (every batch of its lys tasks, ``keys[direction]``) at the atoms of the quenched specimen
    (``kernels.lys.atom_values``; read once for all directions)."""
    out, q = {}, None
    for d, batches in keys.items():
        params = records.read(job.spec.store, batches[0])["params"]
        read = (job.input(key, ("region", "dtau_c_GPa")) for key in batches)
        try:
            values = gather(int(np.prod(params["shape"])), ((b["region"], b["dtau_c_GPa"]) for b in read))
        except ValueError as e:  # a batch of regions the task was not given
            raise layout.StoreError(str(e)) from None
        if q is None:
            q = job.input(params["quench_key"], ("positions", "cell", "origin"))
        out[d] = atom_values(values, tuple(params["shape"]), q["positions"], q["cell"], q["origin"])
    return out


def evaluation_arrays(graphs: list[dict], scores: np.ndarray, directions: list[str]) -> dict[str, np.ndarray]:
    n = graphs[0]["x"].shape[0]
    return {"score": scores.astype(np.float32), "y": np.concatenate([g["y"] for g in graphs]).astype(np.int8),
            "d2min_A2": np.concatenate([g["d2min"] for g in graphs]).astype(np.float32),
            "specimen": np.repeat([g["specimen"] for g in graphs], n).astype(np.int32),
            "direction": np.repeat([directions.index(g["direction"]) for g in graphs], n).astype(np.int8)}


def clean(d: dict) -> dict:
    """JSON-safe metrics (NaN -> None)."""
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in d.items()}


def write_evaluation(job: Job, arrays: dict, n_boot: int, seed: int, left_out: dict, **attrs) -> None:
    """Test scores, the six metrics, the confusion matrix and bootstrap intervals; then the record.
    left_out: {set name: [[specimen, direction], ...]} of graphs without an event."""
    result = M.metrics(arrays["y"], arrays["score"])
    per_graph = []
    for k, d in sorted(set(zip(arrays["specimen"].tolist(), arrays["direction"].tolist()))):
        sel = (arrays["specimen"] == k) & (arrays["direction"] == d)
        per_graph.append(clean({"specimen": k, "direction": d, **M.metrics(arrays["y"][sel], arrays["score"][sel])}))
    ci, undefined = M.bootstrap(arrays["y"], arrays["score"], arrays["specimen"], n=n_boot, seed=seed) \
        if n_boot else ({}, {})
    g = job.fresh_group(metrics=clean(result), ci95=ci, bootstrap_undefined=undefined, bootstrap_resamples=n_boot,
                        per_graph=json.loads(json.dumps(per_graph)), left_out=left_out, **attrs)
    layout.write_arrays(g, arrays)
    job.finish(**clean({m: result[m] for m in M.METRICS}), point=attrs.get("point"),
               resumed_from_epoch=attrs.get("resumed_from_epoch"),
               left_out=sum(len(v) for v in left_out.values()),
               fields={"device": attrs["device"]} if "device" in attrs else None)


