"""Melt Cu-Zr from random positions and sample microstates of the NPT liquid."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jobs.common import Job, SystemParams
from jobs.lmp import Lammps
from store import layout

LIQUID_DENSITY = 0.0587  # atoms/Å³, Cu64Zr36 near 2,000 K (measured here with CuZr_mm)


def place_atoms(lmp: Lammps, n: int, seed: int, passes: int = 5) -> None:
    """n atoms at random, none closer than 2 Å to another: LAMMPS tries 200 places per atom, and
    at 10,000 atoms a few find none (random sequential addition at 0.0587 atoms/Å³ fills a quarter
    of the box with the 2 Å spheres); the missing ones are then placed with up to 20,000 tries each,
    in up to ``passes`` passes. One pass places every atom of the smaller presets, as before."""
    lmp.run(f"create_atoms 1 random {n} {seed} NULL overlap 2.0 maxtry 200")
    for k in range(passes):
        missing = n - lmp.natoms()
        if not missing:
            return
        lmp.run(f"create_atoms 1 random {missing} {seed + 10 + k} NULL overlap 2.0 maxtry 20000")
    if lmp.natoms() != n:
        raise RuntimeError(f"placed {lmp.natoms()} of {n} atoms at random 2 A apart")


@dataclass(frozen=True, kw_only=True)
class LiquidParams(SystemParams):
    temperature_K: float
    pressure_bar: float
    discard_ps: float
    equilibration_ps: float
    snapshot_interval_ps: float
    seed: int
    minimize: dict


class LiquidJob(Job):
    """The NPT liquid and its snapshots (``LiquidParams``). Stores every snapshot (one chunk each), so
    adding specimens later reuses this task."""

    EVERY_RANK = True
    Params = LiquidParams

    def run(self) -> None:
        p = self.p
        n = p.n_atoms
        n_zr = int(round(n * (1 - p.cu_fraction)))
        side = (n / LIQUID_DENSITY) ** (1 / 3)
        dt = p.timestep_ps
        every = int(round(p.snapshot_interval_ps / dt))
        n_snap = int(p.equilibration_ps // p.snapshot_interval_ps + 1e-9)
        seed = p.seed % 900_000_000 + 1
        T, P = p.temperature_K, p.pressure_bar
        m = p.minimize
        with Lammps(self.comm, self.spec.log_path, self.spec.threads) as lmp:
            lmp.create_box(np.diag([side] * 3), np.zeros(3))
            lmp.set_potential(p.potential)
            place_atoms(lmp, n, seed)
            lmp.run(f"""
                set type 1 type/ratio 2 {n_zr / n!r} {seed + 1}
                minimize 0.0 {m['ftol']!r} 1000 10000
                reset_timestep 0
                timestep {dt!r}
                velocity all create {T!r} {seed + 2} dist gaussian mom yes rot yes
                fix npt all npt temp {T!r} {T!r} {100 * dt!r} iso {P!r} {P!r} {1000 * dt!r}
                run {int(round(p.discard_ps / dt))}
            """)
            types = lmp.types()
            if int((types == 2).sum()) != n_zr:
                raise RuntimeError(f"{int((types == 2).sum())} Zr atoms, expected {n_zr}")
            if self.rank0:
                g = self.fresh_group(n_snapshots=n_snap, snapshot_interval_ps=p.snapshot_interval_ps)
                layout.write_arrays(g, {"types": types})
                writer = layout.StepWriter(g, n_snap, shapes={
                    "positions": (n, 3), "velocities": (n, 3), "cell": (3, 3), "origin": (3,),
                    "temperature_K": (), "pressure_bar": (), "volume_A3": ()})
            for i in range(n_snap):
                lmp.run(f"run {every}")
                state = {"positions": lmp.positions(), "velocities": lmp.velocities(),
                         "temperature_K": lmp.thermo("temp"), "pressure_bar": lmp.thermo("press"),
                         "volume_A3": lmp.thermo("vol")}
                state["cell"], state["origin"] = lmp.box()
                if self.rank0:
                    writer.write(i, **state)
                self.progress(i + 1, n_snap, "snapshots", temperature_K=round(state["temperature_K"], 1))
        if self.rank0:
            writer.close()
            log = layout.read(self.root(), self.spec.path, ("temperature_K", "pressure_bar", "volume_A3"))
            summary = {"mean_temperature_K": float(log["temperature_K"].mean()),
                       "mean_pressure_bar": float(log["pressure_bar"].mean()),
                       "mean_density_per_A3": float((n / log["volume_A3"]).mean())}
        self.finish(**(summary if self.rank0 else {}))
