"""The mode softening followed along the path on a store's glasses, against its AQS shears and compared rows.

    python bench/softening_path.py --store small.zarr [--preset small] [--config my.yaml]
                                   [--specimens 0 1 2 3] [--steps 12 | --stored] [--compared CSV]
                                   [--json FILE]

For each chosen specimen whose quench and labels are done: ``kernels.continuation.specimen_softening`` with
the path followed (``--steps`` trial steps, ``softening.path_mode_fraction`` of the modes along it), then per
graph with a first event at train.threshold_A2 its ROC-AUC and AP of |ψ*_i|² (first order) and of the
path's, the participation fraction's, and, where the store's comparison scored the graph, each compared
row's (``campaign.results``; trainings averaged); and the predicted strains (first order γ*, the path's)
against the first event's at that threshold and the first step with any atom beyond 0.01 Å² of D²min.
With ``--stored`` the softening stage's own results are read instead (a store run with
``softening.continuation_steps``), and the seconds are its records'. ``--compared`` adds per-graph rows of
compared models from a CSV of ``campaign.results``' comparison (another store's, whose tasks of those rows
have the same keys: the same graphs, folds and trainings). Prints per-graph rows, the means over graphs,
95 % t intervals over specimens of each specimen's mean and of its paired difference from the study's GAT
(``gat-study19``) with Holm's adjustment over those differences, Spearman's correlations over graphs and
within specimens, and the seconds per direction;
``--json`` keeps them with the provenance. Reads through the records (checked). A subset of a campaign's
specimens: exploratory, as the printout says.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, roc_auc_score

from campaign import config
from campaign.results import Results
from campaign.version import code_version
from kernels import eam, modes
from kernels.continuation import specimen_softening
from kernels.inference import holm, t_interval, t_test


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", required=True)
    p.add_argument("--preset", default="smoke")
    p.add_argument("--config")
    p.add_argument("--specimens", type=int, nargs="*", help="only these specimens (default: every one)")
    p.add_argument("--steps", type=int, default=12, help="trial steps of the path per direction")
    p.add_argument("--stored", action="store_true", help="read the softening stage's path, do not compute it")
    p.add_argument("--compared", metavar="CSV", help="per-graph compared rows from another store's comparison")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args()
    cfg = config.load(args.preset, args.config, {"store": args.store})
    r = Results(args.store, cfg)
    threshold, directions = cfg["train"]["threshold_A2"], cfg["shear"]["directions"]
    compared = r.comparison() if r.data.of("compare-gnn") or r.data.of("compare-baseline") else pd.DataFrame()
    if args.compared:
        compared = pd.concat([compared, pd.read_csv(args.compared)], ignore_index=True)
    rows = compared.groupby(["row", "specimen", "direction"])[["auc", "ap"]].mean() if len(compared) else None
    pot = eam.load_potential(cfg["system"]["potential"])
    soft = cfg["softening"]
    graphs, seconds = [], []
    for k in args.specimens if args.specimens is not None else range(cfg["quench"]["specimens"]):
        if args.stored:
            out, n, per_direction = stored(r, k, directions)
            seconds.append(per_direction)
        else:
            q = r.read("quench", ("positions", "cell", "types"), specimen=k)
            n = len(q["types"])
            timings: dict = {}
            out = specimen_softening(pot, q["positions"], q["cell"], q["types"], directions,
                                     modes.n_low_modes(n, soft["mode_fraction"]), cfg["features"]["eigensolver"],
                                     soft["knots_every"], soft["path_step"], timings, steps=args.steps,
                                     path_modes=modes.n_low_modes(n, soft["path_mode_fraction"]))
            seconds += timings["per_direction_s"]
        atoms = {d: r.atoms(k, d) for d in directions}
        for i, d in enumerate(directions):
            a = atoms[d]
            if not np.isfinite(a[f"d2min_{threshold:g}"]).any():
                continue  # no first event at the threshold: no first STZ to predict
            y = a[f"label_{threshold:g}"].to_numpy().astype(int)
            shear = r.read("shear", ("d2min_A2", "strain"), specimen=k, direction=d)
            fired = shear["d2min_A2"].max(axis=1)
            first_any = float(shear["strain"][np.argmax(fired > 0.01)]) if (fired > 0.01).any() else np.nan
            lab = r.read("labels", ("thresholds_A2", "first_strain"), specimen=k, direction=d)
            first = float(lab["first_strain"][list(lab["thresholds_A2"]).index(threshold)])  # the labels' event
            g = {"specimen": k, "direction": d, "gamma_star": float(out["gamma_star"][i]),
                 "gamma_path": float(out["gamma_path"][i]), "first_strain": first, "first_any_strain": first_any}
            for name, score in (("softening_psi", out["scores"][i, :, 0]), ("softening_path", out["scores"][i, :, 2]),
                                ("participation_fraction", a["participation_fraction"].to_numpy())):
                g[name] = (roc_auc_score(y, score), average_precision_score(y, score))
            if rows is not None:
                for row in rows.index.get_level_values(0).unique():
                    if (row, k, d) in rows.index:
                        g[row] = tuple(float(v) for v in rows.loc[(row, k, d)])
            graphs.append(g)
            print(f"s{k:03d} {d:>4}: gamma* {g['gamma_star']:.4f} path {g['gamma_path']:.4f} first event "
                  f"{first:.4f} (any {first_any:.4f}); AP path {g['softening_path'][1]:.3f} psi "
                  f"{g['softening_psi'][1]:.3f} PF {g['participation_fraction'][1]:.3f}"
                  + (f" GAT {g['gat-study19'][1]:.3f}" if "gat-study19" in g else ""), flush=True)
    names = [key for key in graphs[0] if isinstance(graphs[0][key], tuple)] if graphs else []
    summary = {}
    print(f"{len(graphs)} graphs of {len({g['specimen'] for g in graphs})} specimens at {threshold:g} A^2 "
          "(a subset: exploratory); mean over graphs (graphs every row scored):")
    for name in names:
        both = [g[name] for g in graphs if name in g]
        summary[name] = {"graphs": len(both), "auc": float(np.mean([v[0] for v in both])),
                         "ap": float(np.mean([v[1] for v in both]))}
        print(f"  {name:<32} AUC {summary[name]['auc']:.3f}  AP {summary[name]['ap']:.3f}  ({len(both)} graphs)")
    summary["by_specimen"] = by_specimen(graphs, names)
    for pred in ("gamma_star", "gamma_path"):
        for meas in ("first_strain", "first_any_strain"):
            x = np.array([g[pred] for g in graphs])
            m = np.array([g[meas] for g in graphs])
            ok = np.isfinite(m)
            rho = spearmanr(x[ok], m[ok]).statistic
            ratio = float(np.median(x[ok] / m[ok]))
            specimen = np.array([g["specimen"] for g in graphs])
            within = [spearmanr(x[ok & (specimen == k)], m[ok & (specimen == k)]).statistic
                      for k in np.unique(specimen) if (ok & (specimen == k)).sum() >= 3]
            summary[f"{pred} vs {meas}"] = {"spearman": float(rho), "median_ratio": ratio,
                                            "within_specimen": float(np.nanmean(within)),
                                            "within_interval": t_interval(within), "specimens": len(within)}
            lo, hi = t_interval(within)
            print(f"  {pred} vs {meas}: Spearman {rho:+.2f} over graphs, {np.nanmean(within):+.2f} "
                  f"[{lo:+.2f}, {hi:+.2f}] within a specimen ({len(within)}), median ratio {ratio:.2f}")
    steps = cfg["softening"]["continuation_steps"] if args.stored else args.steps
    print(f"seconds per direction: {np.mean(seconds):.0f} (first order and path, {n} atoms, {steps} steps"
          + (", the stage's records)" if args.stored else ")"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"store": args.store, "config": config.science_hash(cfg), "code": code_version(),
                       "steps": steps, "stored": args.stored, "threshold_A2": threshold, "graphs": graphs,
                       "summary": summary, "seconds_per_direction": float(np.mean(seconds))}, f, indent=1)


def by_specimen(graphs: list[dict], names: list[str], reference: str = "gat-study19") -> dict:
    """Each row's per-specimen mean ROC-AUC and AP over its graphs, their 95 % t interval over the specimens,
    and, where the ``reference`` row scored the same graphs, the paired per-specimen difference's interval,
    its t test and Holm's adjustment over every row's two differences; printed."""
    out, pvalues = {}, {}
    for name in names:
        per = {}
        for g in graphs:
            if name in g and (name == reference or reference not in names or reference in g):
                per.setdefault(g["specimen"], []).append((g[name][0], g[name][1], *(g[reference] if reference in g
                                                                                    else (np.nan, np.nan))))
        if not per:
            continue
        means = np.array([np.mean(v, axis=0) for v in per.values()])
        row = {"specimens": len(means)}
        for i, metric in enumerate(("auc", "ap")):
            row[metric] = (float(means[:, i].mean()), t_interval(means[:, i]))
            if name != reference and reference in names:
                delta = means[:, i] - means[:, 2 + i]
                row[f"delta_{metric}"] = (float(delta.mean()), t_interval(delta))
                pvalues[(name, metric)] = t_test(delta)
        out[name] = row
    adjusted = holm(pvalues) if pvalues else {}
    print(f"per specimen (95 % t intervals over specimens; differences paired with {reference}, Holm over "
          f"{len(pvalues)}):")
    for name, row in out.items():
        text = "  ".join(f"{m.upper()} {v:.3f} [{lo:.3f}, {hi:.3f}]" for m, (v, (lo, hi)) in
                         ((m, row[m]) for m in ("auc", "ap")))
        for m in ("auc", "ap"):
            if f"delta_{m}" in row:
                v, (lo, hi) = row[f"delta_{m}"]
                row[f"holm_{m}"] = adjusted[(name, m)]
                text += f"  d{m.upper()} {v:+.3f} [{lo:+.3f}, {hi:+.3f}] (Holm p {adjusted[(name, m)]:.3f})"
        print(f"  {name:<32} {text}  ({row['specimens']} specimens)")
    return out


def stored(r: Results, specimen: int, directions) -> tuple[dict, int, float]:
    """The softening stage's results for ``specimen`` in the order of ``directions`` (as specimen_softening
    returns them), its atoms, and its record's mean seconds per direction."""
    task = r.task("softening", specimen=specimen)
    data = r.read("softening", ("features", "gamma_star", "gamma_path"), specimen=specimen)
    order = [list(task.directions).index(d) for d in directions]
    out = {"scores": data["features"][order], "gamma_star": data["gamma_star"][order],
           "gamma_path": data["gamma_path"][order]}
    return out, data["features"].shape[1], r.data.records[task.key]["summary"]["seconds_per_direction"]


if __name__ == "__main__":
    main()
