"""How well single per-atom scores rank the atoms of the first STZ, and what the linear response costs.

    python bench/single_predictors.py --store small.zarr [--preset small] [--config my.yaml]
                                      [--threshold 0.1] [--specimens 0 1 2]

For every specimen whose quench, structure and labels are done: the linear response to each of
its shears (``kernels.response``: u = -H+ Xi, one factorisation of the Hessian per specimen, the
low modes of the study's participation fraction), then per graph (specimen, direction) with a first
event at the threshold the ROC-AUC and average precision of each single score against the labels:
the participation fraction (the study's f7), |u|, its low-mode part |u_low|, the mode drive, and
|u| of the opposite shear sign (identical: u is odd in the shear) and of another plane (a
control). Prints the mean and the spread over graphs, and the seconds per specimen of each step,
with their scaling to the paper's 10,000 atoms. Reads through the records (checked).
"""
from __future__ import annotations

import argparse

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from campaign import config, plan
from kernels import eam, modes
from kernels.response import specimen_response
from store import records
from store.graphs import threshold_row

STEPS = {"hessian_s": "hessian", "low_modes_s": "low modes", "factorisation_s": "factorisation"}


def _scores(pot, q, participation, cfg, timings):
    """{direction: {score name: (N,)}} of one specimen; the seconds of each step appended to ``timings``."""
    directions, feat = cfg["shear"]["directions"], cfg["features"]
    seconds: dict = {}
    features = specimen_response(pot, q["positions"], q["cell"], q["types"], directions,
                                 modes.n_low_modes(len(q["types"]), feat["low_mode_fraction"]), feat["eigensolver"],
                                 seconds)
    for step, name in STEPS.items():
        timings[name].append(seconds[step])
    timings["Xi and solve, per direction"].append(float(np.mean(seconds["per_direction_s"])))
    return {d: {"participation": participation, "|u|": f[:, 0], "|u_low|": f[:, 1], "mode drive": f[:, 2]}
            for d, f in zip(directions, features)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", required=True)
    p.add_argument("--preset", default="smoke")
    p.add_argument("--config")
    p.add_argument("--threshold", type=float, default=None, help="D2min threshold (default train.threshold_A2)")
    p.add_argument("--specimens", type=int, nargs="*", help="only these specimens")
    args = p.parse_args()
    cfg = config.load(args.preset, args.config, {"store": args.store})
    threshold = args.threshold or cfg["train"]["threshold_A2"]
    tasks = plan.plan(cfg)
    by = {(t.STAGE, getattr(t, "specimen", None), getattr(t, "direction", None)): t for t in tasks}
    pot = eam.load_potential(cfg["system"]["potential"])
    directions = cfg["shear"]["directions"]
    timings = {k: [] for k in (*STEPS.values(), "Xi and solve, per direction")}
    results: dict[str, list[tuple[float, float]]] = {}
    n_atoms, graphs = None, 0
    for k in args.specimens if args.specimens is not None else range(cfg["quench"]["specimens"]):
        needed = [by[("quench", k, None)], by[("structure", k, None)]] + [by[("labels", k, d)] for d in directions]
        if any((records.read(args.store, t.key) or {}).get("status") != records.DONE for t in needed):
            continue
        q = records.read_checked(args.store, needed[0].key, ("positions", "cell", "types"))
        s = records.read_checked(args.store, needed[1].key, ("participation",))
        n_atoms = len(q["types"])
        scores = _scores(pot, q, s["participation"], cfg, timings)
        for d, lab_task in zip(directions, needed[2:]):
            lab = records.read_checked(args.store, lab_task.key, ("thresholds_A2", "first_step", "mask"))
            row = threshold_row(lab["thresholds_A2"], threshold)
            y = lab["mask"][row]
            if lab["first_step"][row] < 0 or y.all() or not y.any():
                continue  # no first event at this threshold: no first STZ to predict
            graphs += 1
            opposite = d[1:] if d.startswith("-") else "-" + d
            other = next(o for o in directions if o.lstrip("-") != d.lstrip("-"))
            named = dict(scores[d])
            if opposite in scores:
                named["|u| of the opposite sign"] = scores[opposite]["|u|"]
            named["|u| of another plane (control)"] = scores[other]["|u|"]
            for name, score in named.items():
                results.setdefault(name, []).append((roc_auc_score(y, score), average_precision_score(y, score)))
            results.setdefault("chance (positive fraction)", []).append((0.5, float(y.mean())))
    print(f"store {args.store}, config {config.science_hash(cfg)}, D2thres {threshold:g} A^2: {graphs} graphs "
          f"with a first event, {n_atoms} atoms each")
    print(f"{'single score':<34} {'mean AUC':>9} {'(sd)':>6} {'mean AP':>8} {'(sd)':>6}")
    for name, values in results.items():
        v = np.array(values)
        print(f"{name:<34} {v[:, 0].mean():9.3f} {v[:, 0].std():6.3f} {v[:, 1].mean():8.3f} {v[:, 1].std():6.3f}")
    print("seconds per specimen (mean), and scaled to 10,000 atoms (Hessian and Xi ~N; dense low modes and "
          "factorisation ~N^3 up to 6,000 dof, the sparse ones measured in bench/hessian_vs_dynmat.py):")
    for name, values in timings.items():
        if values and n_atoms:
            mean = float(np.mean(values))
            power = 3 if name in ("low modes", "factorisation") else 1
            print(f"  {name:<30} {mean:8.2f} s   x{(10000 / n_atoms) ** power:,.0f} -> "
                  f"{mean * (10000 / n_atoms) ** power:,.0f} s at 10,000 atoms (dense scaling)")


if __name__ == "__main__":
    main()
