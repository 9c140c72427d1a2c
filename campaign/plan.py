"""The campaign's task graph, derived from the configuration alone."""
from __future__ import annotations

import numpy as np

from campaign.config import n_snapshots
from campaign.tasks import Elastic, Graph, Liquid, Quench, Section, Shear, Structure, Task


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
                       quench=Section.of({k2: v for k2, v in cfg["quench"].items() if k2 != "specimens"}),
                       liquid_state=state, minimize=minimize)
                for k, m in enumerate(microstates(cfg))]
    shear = Section.of({k: v for k, v in cfg["shear"].items() if k != "directions"})
    shears = [Shear(quench_key=q.key, specimen=q.specimen, direction=d, system=system, shear=shear,
                    labels=Section.of(cfg["labels"]), minimize=minimize)
              for q in quenches for d in cfg["shear"]["directions"]]
    feat = cfg["features"]
    elastic = [Elastic(quench_key=q.key, specimen=q.specimen, system=system, minimize=minimize,
                       elastic=Section.of({"stiffness_strain": feat["stiffness_strain"],
                                           "stiffness_ftol": feat["stiffness_ftol"]}))
               for q in quenches]
    structure = [Structure(quench_key=q.key, specimen=q.specimen, system=system,
                           structure=Section.of({k: feat[k] for k in ("face_area_fraction", "low_mode_fraction",
                                                                     "eigensolver")}))
                 for q in quenches]
    graphs = [Graph(structure_key=structure[s.specimen].key, elastic_key=elastic[s.specimen].key,
                    shear_key=s.key, specimen=s.specimen, direction=s.direction)
              for s in shears]
    return [liquid, *quenches, *shears, *elastic, *structure, *graphs]
