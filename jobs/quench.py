"""Quench one liquid microstate to a glass and minimise it at zero pressure."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from jobs.common import Job, SystemParams
from jobs.lmp import Lammps, LammpsFailure
from kernels.neighbours import wrap
from store import layout


@dataclass(frozen=True, kw_only=True)
class QuenchParams(SystemParams):
    liquid_key: str
    specimen: int
    microstate: int            # row of the liquid's snapshots
    temperature_K: float       # at the start (the liquid's)
    final_temperature_K: float
    rate_K_per_s: float
    pressure_bar: float
    thermostat_damp_ps: float
    barostat_damp_ps: float
    minimize: dict             # the minimize section (jobs.lmp.Lammps.minimize)
    checkpoint_ps: float       # runtime: a restart file this often (0: none)


class QuenchJob(Job):
    """One specimen quenched from a liquid snapshot (``QuenchParams``).

    The NPT ramp runs in segments, after each of which it reports its progress. With checkpoint_ps
    > 0 the segments are that long and each ends with a LAMMPS restart file (atoms, velocities, box, step,
    thermostat and barostat state);
    a run of the same task that finds one goes on from it. The ramp's target temperature is
    that of the whole quench at every step (``run N upto start 0 stop STEPS``), so segments
    and resumption do not change the protocol.
    """

    EVERY_RANK = True
    Params = QuenchParams

    def run(self) -> None:
        p = self.p
        i = p.microstate
        liq = self.input_on_rank0(p.liquid_key, ("types", "positions", "velocities", "cell", "origin"))
        cell, origin = liq["cell"][i], liq["origin"][i]
        dt = p.timestep_ps
        T0, T1, P = p.temperature_K, p.final_temperature_K, p.pressure_bar
        steps = int(round((T0 - T1) / (p.rate_K_per_s * 1e-12) / dt))
        every = max(1, int(round(p.checkpoint_ps / dt))) if p.checkpoint_ps else steps
        checkpoint = layout.checkpoint_path(self.spec.store, f"quench-{self.spec.key}.restart")
        resume = self.comm.bcast(os.path.isfile(checkpoint) if self.rank0 else None, root=0)
        with Lammps(self.comm, self.spec.log_path, self.spec.threads) as lmp:
            if resume:
                try:
                    lmp.read_restart(checkpoint)
                except LammpsFailure as e:
                    raise LammpsFailure(f"checkpoint {checkpoint} cannot be read ({e}); delete it to "
                                        f"quench this specimen from its start") from None
                lmp.set_potential(p.potential)
            else:
                lmp.create_box(cell, origin)
                lmp.set_potential(p.potential)
                lmp.add_atoms(liq["types"], wrap(liq["positions"][i], cell, origin), liq["velocities"][i])
            if self.rank0 and every < steps:
                os.makedirs(os.path.dirname(checkpoint), exist_ok=True)
            resumed_from = done = lmp.step()
            lmp.run(f"""
                timestep {dt!r}
                fix npt all npt temp {T0!r} {T1!r} {p.thermostat_damp_ps!r} iso {P!r} {P!r} {p.barostat_damp_ps!r}
            """)
            # a progress report at every checkpoint, or without checkpoints about every 1% of the ramp
            # (each segment is a LAMMPS run of its own; a checkpointed ramp keeps its segments)
            report = every if every < steps else max(steps // 100, 1000)
            while done < steps:
                done = min((done // every + 1) * every, (done // report + 1) * report, steps)
                lmp.run(f"run {done} upto start 0 stop {steps}")
                if done < steps and done % every == 0:
                    lmp.write_restart(checkpoint)
                self.progress(done, steps, "steps", temperature_K=round(lmp.thermo("temp"), 1))
            lmp.run("""
                unfix npt
                velocity all set 0.0 0.0 0.0
            """)
            lmp.relax_box(p.minimize, P, "quenched glass")
            out = {"types": lmp.types(), "positions": lmp.positions(), "pe": lmp.energies()}
            out["cell"], out["origin"] = lmp.box()
            pressure = lmp.thermo("press")
        n = len(out["types"])
        volume = float(np.linalg.det(out["cell"]))
        summary = {"quench_steps": steps, "energy_per_atom_eV": float(out["pe"].sum() / n),
                   "density_per_A3": n / volume, "pressure_bar": pressure}
        if self.rank0:
            g = self.fresh_group(microstate=i, **summary)
            layout.write_arrays(g, out)
        self.finish(resumed_from_step=resumed_from, **summary)
        if self.rank0 and os.path.exists(checkpoint):
            os.remove(checkpoint)
