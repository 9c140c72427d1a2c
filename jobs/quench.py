"""Quench one liquid microstate to a glass and minimise it at zero pressure."""
from __future__ import annotations

import numpy as np

from jobs.common import Job, wrap
from jobs.lmp import Lammps
from store import layout


class QuenchJob(Job):
    """params: specimen, microstate (row of liquid/ arrays), potential, timestep_ps,
    temperature_K (start), final_temperature_K, rate_K_per_s, pressure_bar,
    thermostat_damp_ps, barostat_damp_ps, minimize."""

    def run(self) -> None:
        p = self.p
        i = p["microstate"]
        liq = self.read_on_rank0("liquid", ("types", "positions", "velocities", "cell", "origin"))
        cell, origin = liq["cell"][i], liq["origin"][i]
        dt = p["timestep_ps"]
        T0, T1, P = p["temperature_K"], p["final_temperature_K"], p["pressure_bar"]
        steps = int(round((T0 - T1) / (p["rate_K_per_s"] * 1e-12) / dt))
        m = p["minimize"]
        with Lammps(self.comm, self.spec.log_path, self.spec.threads) as lmp:
            lmp.create_box(cell, origin)
            lmp.set_potential(p["potential"])
            lmp.add_atoms(liq["types"], wrap(liq["positions"][i], cell, origin), liq["velocities"][i])
            lmp.run(f"""
                timestep {dt!r}
                fix npt all npt temp {T0!r} {T1!r} {p['thermostat_damp_ps']!r} iso {P!r} {P!r} {p['barostat_damp_ps']!r}
                run {steps}
                unfix npt
                velocity all set 0.0 0.0 0.0
                fix relax all box/relax iso {P!r} vmax 0.001
            """)
            lmp.minimize(m["etol"], m["ftol"], m["maxiter"], m["maxeval"], "quenched glass, box relaxed")
            lmp.run("unfix relax")
            lmp.minimize(m["etol"], m["ftol"], m["maxiter"], m["maxeval"], "quenched glass")
            out = {"types": lmp.types(), "positions": lmp.positions(), "pe": lmp.energies()}
            out["cell"], out["origin"] = lmp.box()
            pressure = lmp.thermo("press")
        path = layout.quenched_path(p["specimen"])
        n = len(out["types"])
        volume = float(np.linalg.det(out["cell"]))
        summary = {"quench_steps": steps, "energy_per_atom_eV": float(out["pe"].sum() / n),
                   "density_per_A3": n / volume, "pressure_bar": pressure}
        if self.rank0:
            g = self.fresh_group(path, microstate=i, **summary)
            layout.write_arrays(g, out)
        self.finish(path, **summary)
