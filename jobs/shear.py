"""Athermal quasi-static simple shear of one quenched specimen in one direction.

Each step tilts the triclinic box by ``strain_step`` (atoms remapped
affinely) and minimises the energy at fixed box. After each step rank 0
computes D2min against the previous step. With a stop rule (``shear.early_stop``)
the run ends at the first step where at least ``min_group_size`` atoms exceed
the rule's threshold (the largest of the labels'); the labels themselves are a
task of their own (``jobs.labels``), computed from the stored D2min.

Direction -> tilt: xy: x += g*y (tilt xy), xz: x += g*z (tilt xz), yz: y += g*z
(tilt yz); a leading '-' shears the other way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jobs.common import Job, SystemParams
from jobs.lmp import Lammps
from kernels import frames, labels
from kernels.d2min import d2min
from kernels.neighbours import neighbour_pairs
from store import layout


@dataclass(frozen=True, kw_only=True)
class ShearParams(SystemParams):
    quench_key: str
    specimen: int
    direction: str             # signed, e.g. 'xy', '-xy'
    max_strain: float
    strain_step: float
    d2min_cutoff_A: float
    minimize: dict
    stop: dict | None          # runtime: {threshold_A2, min_group_size, event}; None: shear to max_strain


class ShearJob(Job):
    """The athermal quasi-static shear of one specimen in one direction (``ShearParams``)."""

    EVERY_RANK = True
    Params = ShearParams

    def run(self) -> None:
        p = self.p
        q = self.input_on_rank0(p.quench_key, ("types", "positions", "cell", "origin"))
        stop_rule = p.stop
        rule = np.array([stop_rule["threshold_A2"]] if stop_rule else [], dtype=float)
        max_steps = int(round(p.max_strain / p.strain_step))
        m = p.minimize
        n = len(q["types"])
        events = labels.no_events(len(rule), n)
        writer = None
        if self.rank0:
            g = self.fresh_group(direction=p.direction, strain_step=p.strain_step)
            writer = layout.StepWriter(g, max_steps + 1, shapes={
                "positions": (n, 3), "cell": (3, 3), "origin": (3,), "strain": (), "energy_eV": (),
                "stress_GPa": (6,), "d2min_A2": (n,)})
        with Lammps(self.comm, self.spec.log_path, self.spec.threads) as lmp:
            lmp.create_box(q["cell"], q["origin"])
            lmp.set_potential(p.potential)
            lmp.add_atoms(q["types"], q["positions"])
            lmp.run("change_box all triclinic")
            cell0, _ = lmp.box()
            prev = None
            for step in range(max_steps + 1):
                strain = step * p.strain_step
                if step > 0:
                    name, tilt = frames.tilt(p.direction, cell0, strain)
                    lmp.run(f"change_box all {name} final {tilt!r} remap units box")
                lmp.minimize(m, f"shear step {step}")
                cur = (lmp.positions(), *lmp.box())
                energy, stress = lmp.thermo("pe"), lmp.stress_gpa()
                stop = False
                if self.rank0:
                    d2 = np.zeros(n) if prev is None else d2min(prev[0], prev[1], cur[0], cur[1], p.d2min_cutoff_A)
                    if step > 0 and stop_rule:
                        events = labels.update(events, step, d2, rule, stop_rule["min_group_size"])
                        if events.complete and stop_rule.get("event") == "cluster":  # enough atoms: a cluster?
                            i, j, _ = neighbour_pairs(prev[0], prev[1], p.d2min_cutoff_A)
                            if not labels.clustered(events.mask[0], i, j, stop_rule["min_group_size"]).any():
                                events = labels.no_events(1, n)
                    writer.write(step, positions=cur[0], cell=cur[1], origin=cur[2], strain=strain,
                                 energy_eV=energy, stress_GPa=stress, d2min_A2=d2)
                    stop = bool(stop_rule) and events.complete
                prev = cur
                self.progress(step, max_steps, "strain steps (at most)", strain=round(strain, 6))
                if self.comm.bcast(stop, root=0):
                    break
        summary = {"steps": step, "final_strain": strain, "reached_max_strain": step == max_steps,
                   "stopped_on": stop_rule if stop_rule and events.complete else None}
        if self.rank0:
            writer.close()
        self.finish(**summary)
