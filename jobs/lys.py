"""Local yield stress of a batch of regions of one quenched specimen, sheared in one direction.

For each region (``kernels.lys``): a LAMMPS program of the atoms within radius + shell of its
centre, in the specimen's periodic box; the region's atoms free, every other atom held by
``fix setforce 0`` after the box tilt has remapped it affinely; AQS steps of ``strain_step`` in the
direction and sign of the shear until the region's resolved stress first falls by more than
``drop_GPa`` (or ``max_strain``). The region's stress is the sum of its atoms' virial stress
(``compute stress/atom``) over their share of the glass's volume (n_inner · V/N).
"""
from __future__ import annotations

import time

import numpy as np

from jobs.common import Job
from jobs.elastic import LAMMPS_TO_VOIGT
from jobs.lmp import BAR_TO_GPA, Lammps
from kernels import eam, frames
from kernels.lys import distances, first_drop, region_centres, resolved
from store import layout


class LocalYieldJob(Job):
    """params: quench_key, specimen, direction, potential, shape [na, nb, nc], first, count,
    radius_A, shell_A, strain_step, max_strain, drop_GPa, minimize."""

    EVERY_RANK = True

    def run(self) -> None:
        p = self.p
        q = self.input_on_rank0(p["quench_key"], ("types", "positions", "cell", "origin"))
        cutoff = eam.load_potential(p["potential"]).cutoff
        if p["shell_A"] < cutoff:  # (two cutoffs make the forces exact; between one and two, nearly)
            raise ValueError(f"lys.shell_A ({p['shell_A']} A) is narrower than the potential's cutoff ({cutoff} A): "
                             "the region's atoms would miss neighbours")
        centres = region_centres(q["cell"], q["origin"], tuple(p["shape"]))[p["first"]:p["first"] + p["count"]]
        out = {k: np.full(len(centres), np.nan) for k in ("tau0_GPa", "tau_c_GPa", "dtau_c_GPa", "yield_strain")}
        out["n_inner"] = np.zeros(len(centres), np.int32)
        max_steps = int(round(p["max_strain"] / p["strain_step"]))
        out["tau_GPa"] = np.full((len(centres), max_steps + 1), np.nan)  # each region's curve, to its drop
        t0 = time.time()
        for r, centre in enumerate(centres):
            self.progress(r, len(centres), "regions", force=True, region=p["first"] + r)
            tau, n_inner = self.region(q, centre, max_steps)
            k = first_drop(tau, p["drop_GPa"])
            out["n_inner"][r], out["tau_GPa"][r, :len(tau)] = n_inner, tau
            out["tau0_GPa"][r] = tau[0]
            if k is not None:
                out["tau_c_GPa"][r], out["yield_strain"][r] = tau[k], k * p["strain_step"]
                out["dtau_c_GPa"][r] = tau[k] - tau[0]
        if self.rank0:
            g = self.fresh_group(shape=list(p["shape"]), first=p["first"], direction=p["direction"],
                                 units="stresses GPa, resolved on the shear; strain dimensionless")
            layout.write_arrays(g, {"region": np.arange(p["first"], p["first"] + len(centres), dtype=np.int32),
                                    "centre_A": centres, **out})
        yielded = np.isfinite(out["dtau_c_GPa"])
        self.finish(regions=len(centres), yielded=int(yielded.sum()),
                    mean_dtau_c_GPa=float(np.nanmean(out["dtau_c_GPa"])) if yielded.any() else None,
                    seconds_per_region=round((time.time() - t0) / max(len(centres), 1), 3))

    def region(self, q: dict, centre: np.ndarray, max_steps: int) -> tuple[np.ndarray, int]:
        """τ (S,) GPa of the region around ``centre`` at each AQS step, up to its first drop; atoms in it."""
        p, m = self.p, self.p["minimize"]
        d = distances(q["positions"], q["cell"], centre)
        keep = d < p["radius_A"] + p["shell_A"]
        inner = np.flatnonzero(d[keep] < p["radius_A"])
        if not len(inner):
            raise ValueError(f"the region of radius {p['radius_A']} A around {np.round(centre, 2).tolist()} holds no "
                             "atom: raise lys.radius_A")
        volume = len(inner) * abs(np.linalg.det(q["cell"])) / len(q["types"])  # Å³, their share of the glass
        taus = []
        with Lammps(self.comm, self.spec.log_path, self.spec.threads) as lmp:
            lmp.create_box(q["cell"], q["origin"])
            lmp.set_potential(p["potential"])
            lmp.add_atoms(q["types"][keep], q["positions"][keep])
            lmp.run(f"""
                change_box all triclinic
                group inner id {' '.join(str(i + 1) for i in inner)}
                group outer subtract all inner
                fix frozen outer setforce 0.0 0.0 0.0
                compute S all stress/atom NULL virial
            """)
            cell0, _ = lmp.box()
            for step in range(max_steps + 1):
                if step > 0:
                    name, tilt = frames.tilt(p["direction"], cell0, step * p["strain_step"])
                    lmp.run(f"change_box all {name} final {tilt!r} remap units box")
                lmp.minimize(m, f"region step {step}")
                lmp.run("run 0")
                stress = lmp.gather("c_S", 1, 6)[inner][:, LAMMPS_TO_VOIGT].sum(0) * BAR_TO_GPA / volume
                taus.append(float(resolved(stress, p["direction"])))
                if first_drop(np.array(taus), p["drop_GPa"]) is not None:
                    break
        return np.array(taus), len(inner)
