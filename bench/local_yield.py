"""Local yield stress on a few graphs of a finished store: how well -Δτ_c ranks the first STZ's atoms.

    python bench/local_yield.py --store small.zarr --preset small --specimens 0 --directions xy,-xy
                                [--regions-per-axis 2] [--config my.yaml] [--threshold 0.1]

Runs the campaign's own job (``jobs.lys``, ``python -m jobs``, one rank) for every region of the
given specimens and directions, in a scratch store beside the store (``<store>.lys-bench``; the
store itself is only read), with the configuration's lys protocol. Then per graph with a first event
at the threshold: ROC-AUC and AP of −Δτ_c interpolated at the atoms (low residual strength: likely
first), of −Δτ_c of the opposite shear sign (a control: the sign matters if this one ranks worse),
of the participation fraction, and of the study's GAT where the configuration has the comparison
(``compare.folds``: its outer folds score every specimen), with t intervals over specimens; and the
regions' yield strains against the graph's global first events (the labels' at the threshold, and the
first step of any event). Prints seconds per region. Reads through the records (checked).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import zarr
from sklearn.metrics import average_precision_score, roc_auc_score

from campaign import config, plan
from campaign.dispatch import spec
from kernels.lys import atom_values, gather
from store import layout, records
from store.graphs import threshold_row


def write_done(scratch: str, key: str, stage: str, path: str, arrays: dict) -> None:
    """``arrays`` at ``path`` of the scratch store with a done record of ``key``: an input a job reads."""
    g = zarr.open_group(scratch, mode="a").require_group(path)
    layout.write_arrays(g, arrays)
    records.write(scratch, key, records.DONE, "bench", stage=stage, path=g.path, checksums=records.checksums(g))


def _copy_task(store: str, scratch: str, task, names: tuple[str, ...]) -> None:
    """The task's arrays and a done record in the scratch store (what the job reads)."""
    write_done(scratch, task.key, task.STAGE, task.path, records.read_checked(store, task.key, names))


def _dtau(scratch: str, tasks: list, q: dict) -> np.ndarray:
    """(N,) GPa: Δτ_c of one (specimen, direction)'s regions at its atoms (``kernels.lys.atom_values``)."""
    read = (records.read_checked(scratch, t.key, ("region", "dtau_c_GPa")) for t in tasks)
    values = gather(int(np.prod(tasks[0].shape)), ((g["region"], g["dtau_c_GPa"]) for g in read))
    return atom_values(values, tasks[0].shape, q["positions"], q["cell"], q["origin"])


def _compared_gat(store: str, tasks: list, k: int, d: str) -> np.ndarray | None:
    """The study's GAT's scores (N,) of graph (k, d) from the comparison's outer fold that tested k
    (``compare.folds`` in the configuration, done), else None."""
    for t in tasks:
        if t.STAGE == "compare-gnn" and t.model == "gat-study19" and k in t.held_out:
            if records.read(store, t.key) is None:
                return None
            ev = records.read_checked(store, t.key, ("score", "specimen", "direction"))
            sel = (ev["specimen"] == k) & (ev["direction"] == list(t.directions).index(d))
            return ev["score"][sel] if sel.any() else None
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", required=True)
    p.add_argument("--preset", default="smoke")
    p.add_argument("--config")
    p.add_argument("--specimens", type=int, nargs="+", default=[0])
    p.add_argument("--directions", default="xy,-xy", help="comma-separated, e.g. xy,-xy")
    p.add_argument("--regions-per-axis", type=int, default=2)
    p.add_argument("--threshold", type=float, default=None, help="D2min threshold (default train.threshold_A2)")
    args = p.parse_args()
    args.directions = args.directions.split(",")
    store = os.path.abspath(args.store)
    cfg = config.load(args.preset, args.config, {"store": store, "lys": {"regions_per_axis": args.regions_per_axis}})
    threshold = args.threshold or cfg["train"]["threshold_A2"]
    tasks = plan.plan(cfg)
    scratch = layout.beside(store, ".lys-bench")
    zarr.open_group(scratch, mode="a").require_group("tasks")
    by = {(t.STAGE, getattr(t, "specimen", None), getattr(t, "direction", None)): t for t in tasks}
    seconds, rows, pooled, strains = [], {}, {}, []  # per-graph (AUC, AP) per score; (y, score, graph, specimen)
    for k in args.specimens:
        quench = by[("quench", k, None)]
        _copy_task(store, scratch, quench, ("types", "positions", "cell", "origin"))
        q = records.read_checked(store, quench.key, ("positions", "cell", "origin"))
        participation = records.read_checked(store, by[("structure", k, None)].key, ("participation",))["participation"]
        dtau, yields = {}, {}
        for d in args.directions:
            mine = [t for t in tasks if t.STAGE == "lys" and t.specimen == k and t.direction == d]
            for t in mine:
                if records.read(scratch, t.key) is None:
                    t0 = time.time()
                    res = subprocess.run([sys.executable, "-m", "jobs", json.dumps(spec(t, scratch, cfg))])
                    if res.returncode != 0:
                        raise SystemExit(f"{t.label} failed: see {layout.log_path(scratch, f'lys-{t.key}.log')}")
                    seconds.append((time.time() - t0) / t.count)
            dtau[d] = _dtau(scratch, mine, q)
            yields[d] = np.concatenate([records.read_checked(scratch, t.key, ("yield_strain",))["yield_strain"]
                                        for t in mine])
        for d in args.directions:
            lab = records.read_checked(store, by[("labels", k, d)].key,
                                       ("thresholds_A2", "first_step", "first_strain", "mask"))
            row = threshold_row(lab["thresholds_A2"], threshold)
            if lab["first_step"][row] < 0:
                continue
            shear = records.read_checked(store, by[("shear", k, d)].key, ("d2min_A2", "strain"))
            fired = shear["d2min_A2"].max(axis=1) > 0.01
            strains.append((k, d, yields[d], float(lab["first_strain"][row]),
                            float(shear["strain"][np.argmax(fired)]) if fired.any() else np.nan))
            y = lab["mask"][row]
            opposite = d[1:] if d.startswith("-") else "-" + d
            scores = {"-dtau_c (its own shear)": -dtau[d], "participation fraction": participation}
            gat = _compared_gat(store, tasks, k, d)
            if gat is not None:
                scores["GAT (the comparison's outer CV)"] = gat
            if opposite in dtau:
                scores["-dtau_c of the opposite sign (control)"] = -dtau[opposite]
            graph = len(rows.get("chance", []))
            for name, s in scores.items():
                rows.setdefault(name, []).append((roc_auc_score(y, s), average_precision_score(y, s)))
                pooled.setdefault(name, []).append((y, s, np.full(len(y), graph), k))
            rows.setdefault("chance", []).append((0.5, float(y.mean())))
    print(f"lys protocol {json.dumps({k: cfg['lys'][k] for k in cfg['lys']})}; config {config.science_hash(cfg)}")
    if seconds:
        print(f"{np.mean(seconds):.1f} s per region (this machine, one rank), {len(seconds)} batches run")
    print(f"{'score':<42} {'graphs':>6} {'mean AUC':>9} {'mean AP':>8}")
    for name, values in rows.items():
        auc, ap = np.mean(values, axis=0)
        print(f"{name:<42} {len(values):>6} {auc:>9.3f} {ap:>8.3f}")
    _intervals(pooled, reference="participation fraction")
    _yield_strains(strains)


def _intervals(pooled: dict, reference: str) -> None:
    """95% Student t intervals over specimens of each score's per-graph AUC and AP (each specimen's mean
    over its graphs), and of its paired per-specimen difference from ``reference`` (kernels.inference)."""
    from kernels.inference import t_interval
    from kernels.metrics import by_group, from_table, graph_table

    tables, groups = {}, None
    for name, parts in pooled.items():
        y, s, g = (np.concatenate([p[i] for p in parts]) for i in range(3))
        tables[name] = graph_table(y, s, g)
        groups = np.array([p[3] for p in parts])
    if groups is None or len(np.unique(groups)) < 2:
        print("(one specimen: no intervals)")
        return
    per_specimen = {name: by_group(table, groups) for name, table in tables.items()}
    print(f"95% t intervals over {len(np.unique(groups))} specimens; Δ paired per specimen, from {reference}:")
    for name, table in tables.items():
        point, mine = from_table(table), per_specimen[name]
        cells = []
        for m in ("auc", "ap"):
            lo, hi = t_interval(mine[m])
            cells.append(f"{m} {point[m]:.3f} [{lo:.3f}, {hi:.3f}]")
        if name != reference:
            for m in ("auc", "ap"):
                d = mine[m] - per_specimen[reference][m]
                lo, hi = t_interval(d)
                cells.append(f"Δ{m} {d.mean():+.3f} [{lo:+.3f}, {hi:+.3f}]")
        print(f"  {name:<42} " + "  ".join(cells))


def _yield_strains(strains: list) -> None:
    """The regions' yield strains against each graph's global first events (``strains``: per graph
    (specimen, direction, the regions' yield strains (R,), the labels' first-event strain at the threshold,
    the first step with any atom beyond 0.01 Å² of D²min))."""
    if not strains:
        return
    print("yield strains of the regions against the global first events (strain):")
    print(f"  {'graph':<10} {'regions yielded':>15} {'lowest':>8} {'median':>8} {'first event':>12} {'any event':>10}")
    for k, d, y, first, first_any in strains:
        done = y[np.isfinite(y)]
        low, median = (f"{done.min():.4f}", f"{np.median(done):.4f}") if len(done) else ("-", "-")
        print(f"  s{k:03d} {d:<5} {len(done):>9}/{len(y):<5} {low:>8} {median:>8} {first:>12.4f} {first_any:>10.4f}")
    lowest = np.array([np.nanmin(y) if np.isfinite(y).any() else np.nan for _, _, y, _, _ in strains])
    first = np.array([s[3] for s in strains])
    ok = np.isfinite(lowest)
    every = np.concatenate([s[2] for s in strains])
    print(f"  the lowest region's yield strain / the first event's: median {np.median(lowest[ok] / first[ok]):.2f} "
          f"over {ok.sum()} graphs; mean yield strain of every region {np.nanmean(every):.4f}")


if __name__ == "__main__":
    main()
