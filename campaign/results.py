"""Results from a notebook, addressed by specimen, direction, threshold and model name, never by task key::

    from campaign.results import open_results
    r = open_results("small.zarr")
    r.shear(0, "xy")        # xarray.Dataset: step × atom × component, strain as coordinate
    r.atoms(0, "xy")        # pandas.DataFrame: one row per atom, its features, D²min and labels
    r.table1()              # Table 1: the final models and the baselines on the test specimens
    r.comparison()          # the comparison's per-graph ROC-AUC and AP, one row per (row, training, graph)
    r.onset()               # the softening's predicted strains against the first events'

Everything is read through the records of one configuration of the store (the one launched last, unless
``config`` names another by its hash): only done tasks, each array checked against its record's checksum.
"""
from __future__ import annotations

from campaign import config as config_mod
from campaign import plan
from kernels.features import STUDY
from store import layout, records


def open_results(store: str, config: str | None = None) -> Results:
    """The results of ``store`` under the configuration ``config`` (a science hash; default: the last
    launched). StoreError naming the problem when the store or that configuration is missing."""
    attrs = dict(layout.open_root(store).attrs)
    chosen = config or attrs.get("science_hash")
    launched = attrs.get("configs", {})
    if chosen not in launched:
        raise layout.StoreError(f"store {store} holds no configuration {chosen} (it holds "
                                f"{', '.join(launched) or 'none'})")
    stored = dict(launched[chosen]["config"])
    cfg = config_mod.load(stored.pop("preset"), overrides={**stored, "store": store})
    return Results(store, cfg)


class Results:
    """The done tasks of one configuration of a store (``open_results``)."""

    def __init__(self, store: str, cfg: dict):
        from campaign.report import Data

        self.store, self.cfg = store, cfg
        self.data = Data(store, plan.plan(cfg))

    def task(self, stage: str, **fields):
        """The done task of ``stage`` with these fields (e.g. specimen=0, direction="xy"); KeyError saying what
        is missing or not done."""
        found = [t for t in self.data.of(stage) if all(getattr(t, k, None) == v for k, v in fields.items())]
        if not found:
            raise KeyError(f"this configuration has no {stage} task with {fields}")
        if found[0].key not in self.data.records:
            raise KeyError(f"the {stage} task with {fields} is not done ({found[0].key})")
        return found[0]

    def read(self, stage: str, names: tuple, **fields) -> dict:
        """The arrays ``names`` of that task (``task``), checked against its record."""
        return records.read_checked(self.store, self.task(stage, **fields).key, names)

    def shear(self, specimen: int, direction: str):
        """The AQS shear of ``specimen`` in ``direction`` as an xarray.Dataset: positions (step, atom, xyz) Å,
        cell (step, row, xyz) Å, d2min_A2 (step, atom) Å² against the step before, energy_eV (step), stress_GPa
        (step, voigt: xx yy zz yz xz xy, LAMMPS's sign: pressure negative); coordinates strain (step), type
        (atom: 1 Cu, 2 Zr)."""
        import xarray as xr

        names = ("positions", "cell", "strain", "energy_eV", "stress_GPa", "d2min_A2")
        s = self.read("shear", names, specimen=specimen, direction=direction)
        types = self.read("quench", ("types",), specimen=specimen)["types"]
        return xr.Dataset(
            {"positions": (("step", "atom", "xyz"), s["positions"]), "cell": (("step", "row", "xyz"), s["cell"]),
             "d2min_A2": (("step", "atom"), s["d2min_A2"]), "energy_eV": ("step", s["energy_eV"]),
             "stress_GPa": (("step", "voigt"), s["stress_GPa"])},
            coords={"strain": ("step", s["strain"]), "type": ("atom", types.astype(int)),
                    "xyz": ["x", "y", "z"], "voigt": ["xx", "yy", "zz", "yz", "xz", "xy"]},
            attrs={"specimen": specimen, "direction": direction, "store": self.store})

    def atoms(self, specimen: int, direction: str):
        """One row per atom of the graph of ``specimen`` sheared in ``direction``: its features (the graph's
        columns, named as in kernels.features; the response's and the softening's where this configuration
        computed them), then per label threshold t the first event's label ``label_t`` (0/1) and D²min
        ``d2min_t`` (Å²) at it, NaN where no event fired at t."""
        import numpy as np
        import pandas as pd

        graph = self.task("graph", specimen=specimen, direction=direction)
        g = records.read_checked(self.store, graph.key, ("x", "y", "thresholds_A2", "event_d2min_A2"))
        names = list(self.data.group(graph).attrs["feature_names"])
        frame = pd.DataFrame(g["x"], columns=names)
        for stage in ("response", "softening"):
            try:
                joined = self.task(stage, specimen=specimen)
            except KeyError:
                continue
            f = records.read_checked(self.store, joined.key, ("features",))["features"]
            columns = self.data.group(joined).attrs["feature_names"]
            frame = frame.join(pd.DataFrame(f[list(joined.directions).index(direction)], columns=columns))
        for t, threshold in enumerate(g["thresholds_A2"]):
            fired = np.isfinite(g["event_d2min_A2"][t]).any()
            frame[f"label_{threshold:g}"] = g["y"][t].astype(int) if fired else np.nan
            frame[f"d2min_{threshold:g}"] = g["event_d2min_A2"][t]
        frame.index.name = "atom"
        return frame

    def table1(self):
        """Table 1 as a DataFrame: one row per final model (``opt-<metric>``, ``strategy-...``) and baseline
        (``<kind>`` at each threshold and feature set), with its grid point, the six metrics pooled over the
        test atoms and the confusion counts, as the report prints them (without intervals)."""
        import pandas as pd

        rows = []
        for stage in ("final", "baseline"):
            for task in self.data.of(stage):
                g = self.data.group(task)
                if g is None:
                    continue
                attrs = dict(g.attrs)
                rows.append({"stage": stage, "name": task.name, "point": attrs.get("point"),
                             "threshold_A2": task.threshold_A2, "feature_set": getattr(task, "feature_set", None)
                             or STUDY, **{k: attrs["metrics"].get(k) for k in
                                              ("recall", "precision", "f1", "mcc", "auc", "ap", "tp", "fp", "fn",
                                               "tn")}})
        return pd.DataFrame(rows)

    def comparison(self):
        """The comparison's rows (``campaign.comparison``), one row per (row, training, specimen, direction):
        the graph's ROC-AUC and AP of its own atoms, its confusion counts at 0.5, and the atoms and positives
        it holds. ``training``: the seed's index (compare.seeds); single scores and baselines have one."""
        import numpy as np
        import pandas as pd

        from campaign.comparison import pooled_rows
        from kernels import metrics as M

        rows, _ = pooled_rows(self.data)
        directions = self.cfg["shear"]["directions"]
        out = []
        for row, a in rows.items():
            graph = a["specimen"].astype(np.int64) * len(directions) + a["direction"]
            ids = np.unique(graph)
            for r, score in enumerate(a["scores"]):
                table = M.graph_table(a["y"], score, graph)
                for i, g in enumerate(ids):
                    out.append({"row": row, "training": r, "specimen": int(g // len(directions)),
                                "direction": directions[g % len(directions)],
                                **{k: table[k][i] for k in ("auc", "ap", "tp", "fp", "fn", "tn")},
                                "atoms": int(np.sum(graph == g)), "positives": int(a["y"][graph == g].sum())})
        return pd.DataFrame(out)

    def onset(self):
        """The mode softening's predicted strains (γ*, γ_min, and γ_path where the path was followed) against
        the first event's strain at train.threshold_A2, one row per graph with an event."""
        import pandas as pd

        from campaign.onset import pairs

        return pd.DataFrame(pairs(self.data, self.cfg))
