"""The mode softening followed along the path on a store's glasses, against its AQS shears and compared rows.

    python bench/softening_path.py --store small.zarr [--preset small] [--config my.yaml]
                                   [--specimens 0 1 2 3] [--steps 12 | --stored] [--json FILE]

For each chosen specimen whose quench and labels are done: ``kernels.continuation.specimen_softening`` with
the path followed (``--steps`` trial steps, ``softening.path_mode_fraction`` of the modes along it), then per
graph with a first event at train.threshold_A2 its ROC-AUC and AP of |ψ*_i|² (first order) and of the
path's, the participation fraction's, and, where the store's comparison scored the graph, each compared
row's (``campaign.results``; trainings averaged); and the predicted strains (first order γ*, the path's)
against the first event's at that threshold and the first step with any atom beyond 0.01 Å² of D²min.
With ``--stored`` the softening stage's own results are read instead (a store run with
``softening.continuation_steps``), and the seconds are its records'. Prints per-graph rows, the means over
graphs, the moonshot's own test (each specimen's AP of the path less twice the study's GAT's, with a 95 % t
interval over specimens) and the path's AP split by whether the labelled event is the first instability,
Spearman's correlations over graphs and within specimens (t intervals), and the seconds per direction (the
comparison's table, with intervals and Holm's adjustment, is the report's);
``--json`` keeps them with the provenance. Reads through the records (checked). A subset of a campaign's
specimens: exploratory, as the printout says.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, roc_auc_score

from campaign import config
from campaign.results import Results
from campaign.version import code_version
from kernels import eam, modes
from kernels.continuation import specimen_softening
from kernels.inference import spearman_within, t_interval, t_test


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", required=True)
    p.add_argument("--preset", default="smoke")
    p.add_argument("--config")
    p.add_argument("--specimens", type=int, nargs="*", help="only these specimens (default: every one)")
    p.add_argument("--steps", type=int, default=12, help="trial steps of the path per direction")
    p.add_argument("--stored", action="store_true", help="read the softening stage's path, do not compute it")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args()
    cfg = config.load(args.preset, args.config, {"store": args.store})
    r = Results(args.store, cfg)
    threshold, directions = cfg["train"]["threshold_A2"], cfg["shear"]["directions"]
    compared = r.comparison()
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
    summary["twice_the_reference"] = twice_the_reference(graphs)
    specimen = np.array([g["specimen"] for g in graphs])
    for pred in ("gamma_star", "gamma_path"):
        for meas in ("first_strain", "first_any_strain"):
            x = np.array([g[pred] for g in graphs])
            m = np.array([g[meas] for g in graphs])
            ok = np.isfinite(m)
            rho = spearmanr(x[ok], m[ok]).statistic
            ratio = float(np.median(x[ok] / m[ok]))
            within = spearman_within(x[ok], m[ok], specimen[ok])
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


def twice_the_reference(graphs: list[dict], row: str = "softening_path", reference: str = "gat-study19",
                        factor: float = 2.0) -> dict:
    """The moonshot's own test: each specimen's mean AP of ``row`` less ``factor`` times the ``reference``'s
    over the graphs both scored, its 95 % t interval over specimens and t-test p-value; and the mean AP of
    ``row`` where the labelled event is the first instability of any size and where a smaller event comes
    first. Printed. (The comparison's table with intervals and Holm's adjustment is the report's.)"""
    both = [g for g in graphs if row in g and reference in g]
    out = {}
    if both:
        per: dict[int, list] = {}
        for g in both:
            per.setdefault(g["specimen"], []).append(g[row][1] - factor * g[reference][1])
        margin = [float(np.mean(v)) for v in per.values()]
        out["margin"] = {"mean": float(np.mean(margin)), "interval": t_interval(margin), "p": t_test(margin),
                         "specimens_above": int(np.sum(np.array(margin) > 0)), "specimens": len(margin)}
        lo, hi = out["margin"]["interval"]
        print(f"  AP of {row} less {factor:g} x {reference}'s, per specimen: {np.mean(margin):+.3f} "
              f"[{lo:+.3f}, {hi:+.3f}] (p {out['margin']['p']:.3f}; above 0 in {out['margin']['specimens_above']} "
              f"of {len(margin)})")
    first = [g for g in graphs if row in g and np.isclose(g["first_strain"], g["first_any_strain"])]
    later = [g for g in graphs if row in g and not np.isclose(g["first_strain"], g["first_any_strain"])]
    for name, part in (("labelled_is_first_instability", first), ("smaller_event_first", later)):
        out[name] = {"graphs": len(part), "ap": float(np.mean([g[row][1] for g in part])) if part else None}
    def ap(part):
        return f"{np.mean([g[row][1] for g in part]):.3f}" if part else "-"

    print(f"  AP of {row} where the labelled event is the first instability: {ap(first)} ({len(first)} graphs); "
          f"where a smaller event comes first: {ap(later)} ({len(later)} graphs)")
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
