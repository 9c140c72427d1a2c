"""The campaign's task graph, derived from the configuration alone."""
from __future__ import annotations

import numpy as np

from campaign.config import METRICS, how_keys, n_snapshots, split_sizes
from campaign.tasks import (Baseline, Elastic, Final, Graph, Labels, Liquid, Quench, Section, Shear, Structure,
                            Task, TrainFold)
from kernels.split import cv_folds, inner_validation, split_specimens


def microstates(cfg: dict) -> list[int]:
    """Snapshot index of each specimen: a seeded permutation's prefix, so adding
    specimens keeps the earlier ones."""
    order = np.random.default_rng(cfg["seed"]).permutation(n_snapshots(cfg))
    return [int(i) for i in order[: cfg["quench"]["specimens"]]]


def plan(cfg: dict) -> list[Task]:
    """Every task of the campaign, upstream before downstream."""
    system = Section.of(cfg["system"])
    minimize = Section.of(cfg["minimize"])
    liquid = Liquid(system=system, liquid=Section.of(cfg["liquid"]), minimize=minimize, seed=cfg["seed"])
    state = Section.of({"temperature_K": cfg["liquid"]["temperature_K"],
                        "pressure_bar": cfg["liquid"]["pressure_bar"]})
    quenches = [Quench(liquid_key=liquid.key, specimen=k, microstate=m, system=system,
                       quench=Section.of({k2: v for k2, v in cfg["quench"].items()
                                         if k2 != "specimens" and k2 not in how_keys("quench")}),
                       liquid_state=state, minimize=minimize)
                for k, m in enumerate(microstates(cfg))]
    shear = Section.of({k: v for k, v in cfg["shear"].items() if k != "directions" and k not in how_keys("shear")})
    shears = [Shear(quench_key=q.key, specimen=q.specimen, direction=d, system=system, shear=shear,
                    d2min_cutoff_A=cfg["labels"]["d2min_cutoff_A"], minimize=minimize)
              for q in quenches for d in cfg["shear"]["directions"]]
    labels = [Labels(shear_key=s.key, specimen=s.specimen, direction=s.direction,
                     strain_step=cfg["shear"]["strain_step"], thresholds_A2=tuple(cfg["labels"]["thresholds_A2"]),
                     min_group_size=cfg["labels"]["min_group_size"], event=cfg["labels"]["event"],
                     positive=cfg["labels"]["positive"], d2min_cutoff_A=cfg["labels"]["d2min_cutoff_A"])
              for s in shears]
    feat = cfg["features"]
    elastic = [Elastic(quench_key=q.key, specimen=q.specimen, system=system, minimize=minimize,
                       elastic=Section.of({"stiffness_strain": feat["stiffness_strain"],
                                           "stiffness_ftol": feat["stiffness_ftol"]}))
               for q in quenches]
    structure = [Structure(quench_key=q.key, specimen=q.specimen, system=system,
                           structure=Section.of({k: feat[k] for k in ("face_area_fraction", "low_mode_fraction",
                                                                     "eigensolver")}))
                 for q in quenches]
    graphs = [Graph(quench_key=quenches[lab.specimen].key, structure_key=structure[lab.specimen].key, elastic_key=elastic[lab.specimen].key,
                    labels_key=lab.key, specimen=lab.specimen, direction=lab.direction)
              for lab in labels]
    return [liquid, *quenches, *shears, *labels, *elastic, *structure, *graphs, *learning(cfg, graphs)]


def split(cfg: dict) -> tuple[list[int], list[int], list[int]]:
    """(train, validation, test) specimens."""
    return split_specimens(cfg["quench"]["specimens"], split_sizes(cfg), cfg["split"]["seed"])


def learning(cfg: dict, graphs: list[Graph]) -> list[Task]:
    """Cross-validation of the grid, the final models of Table 1, the threshold sweep, the
    imbalance strategies and the baselines."""
    train, val, test = split(cfg)
    folds = cv_folds(train + val, cfg["split"]["folds"], cfg["split"]["seed"])
    by_specimen = {}
    for g in graphs:
        by_specimen.setdefault(g.specimen, []).append((g.specimen, g.direction, g.key))

    def graphs_of(specimens) -> tuple:
        return tuple(entry for s in sorted(specimens) for entry in by_specimen[s])

    directions = tuple(cfg["shear"]["directions"])
    # the train options that change what a training computes; the grid's threshold is a field of its own
    opts = {k: v for k, v in cfg["train"].items() if k != "threshold_A2" and k not in how_keys("train")}
    threshold = cfg["train"]["threshold_A2"]
    # each fold trains on train + validation less its held-out specimens, and early-stops on an
    # inner share of those, as the final models train on train and stop on validation
    fold_sets = []
    for f, held in enumerate(folds):
        rest = sorted(set(train + val) - set(held))
        stop_on = inner_validation(rest, cfg["split"]["fractions"], cfg["split"]["seed"] + f)
        fold_sets.append((tuple(held), tuple(s for s in rest if s not in stop_on), tuple(stop_on)))
    largest = max(len(fit_on) for _, fit_on, _ in fold_sets) * len(directions)
    steps = -(-largest // cfg["train"]["batch_graphs"])
    cv = [TrainFold(layers=L, width=M, heads=N, fold=f, held_out=held, fit_on=fit_on, stop_on=stop_on,
                    directions=directions, threshold_A2=threshold, train=Section.of(opts),
                    steps_per_epoch=steps, graphs=graphs_of(train + val))
          for L in cfg["grid"]["layers"] for M in cfg["grid"]["width"] for N in cfg["grid"]["heads"]
          for f, (held, fit_on, stop_on) in enumerate(fold_sets)]
    cv_keys = {}
    for t in cv:
        cv_keys.setdefault(t.point, []).append(t.key)
    cv_keys = tuple((p, tuple(k)) for p, k in cv_keys.items())
    parts = Section.of({"train": train, "val": val, "test": test})
    all_graphs = graphs_of(train + val + test)

    def final(name, metric, t, **changes):
        return Final(name=name, select_metric=metric, cv_keys=cv_keys, split=parts, directions=directions,
                     threshold_A2=t, train=Section.of({**opts, **changes}), bootstrap=cfg["report"]["bootstrap"],
                     graphs=all_graphs)

    finals = [final(f"opt-{m}", m, threshold) for m in METRICS]
    sweep = cfg["report"]["sweep_metric"]
    finals += [final(f"sweep-{sweep}-t{t:g}", sweep, t) for t in cfg["labels"]["thresholds_A2"] if t != threshold]
    strategies = {"focal": {"loss": "focal", "sampling": "none"},
                  "undersample": {"loss": "weighted_ce", "sampling": "undersample"},
                  "oversample": {"loss": "weighted_ce", "sampling": "oversample"}}
    finals += [final(f"strategy-{s}", sweep, threshold, **strategies[s]) for s in cfg["report"]["strategies"]]
    baselines = [Baseline(name=f"{kind}-t{t:g}", kind=kind, split=parts, directions=directions, threshold_A2=t,
                          bootstrap=cfg["report"]["bootstrap"], seed=cfg["train"]["seed"], graphs=all_graphs)
                 for kind in cfg["report"]["baselines"] for t in cfg["labels"]["thresholds_A2"]]
    return [*cv, *finals, *baselines]
