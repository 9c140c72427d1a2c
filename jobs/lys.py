"""Local yield stress of a batch of regions of one quenched specimen, sheared in one direction.

For each region (``kernels.lys``): a LAMMPS program of the atoms within radius + shell of its
centre, in the specimen's periodic box; the region's atoms free, every other atom held by
``fix setforce 0`` after the box tilt has remapped it affinely; AQS steps of ``strain_step`` in the
direction and sign of the shear until the region's resolved stress first departs from its elastic
response by more than ``departure_GPa`` (``kernels.lys.first_event``; or ``max_strain``). The last
elastic step is then sheared again from its state in ``refine`` finer steps, which place the event
to ``strain_step / refine``. The region's stress is the sum of its atoms' virial stress
(``compute stress/atom``) over their own volume (the sum of their Voronoi cells, in the unstrained
glass).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from jobs.common import Job, Seq, SystemParams
from jobs.elastic import LAMMPS_TO_VOIGT
from jobs.lmp import BAR_TO_GPA, Lammps
from kernels import eam, frames
from kernels.lys import distances, first_event, region_centres, resolved
from store import layout


@dataclass(frozen=True, kw_only=True)
class LocalYieldParams(SystemParams):
    quench_key: str
    specimen: int
    direction: str
    shape: Seq                 # regions per cell axis [na, nb, nc]
    first: int                 # the batch's regions: first, first + 1, ..., first + count - 1
    count: int
    radius_A: float
    shell_A: float
    strain_step: float
    max_strain: float
    departure_GPa: float
    refine: int
    minimize: dict


class LocalYieldJob(Job):
    """The local yield stress of a batch of regions of one specimen in one direction (``LocalYieldParams``)."""

    EVERY_RANK = True
    Params = LocalYieldParams

    def run(self) -> None:
        p = self.p
        q = self.input_on_rank0(p.quench_key, ("types", "positions", "cell", "origin"))
        cutoff = eam.load_potential(p.potential).cutoff
        if p.shell_A < cutoff:  # (two cutoffs make the forces exact; between one and two, nearly)
            raise ValueError(f"lys.shell_A ({p.shell_A} A) is narrower than the potential's cutoff ({cutoff} A): "
                             "the region's atoms would miss neighbours")
        centres = region_centres(q["cell"], q["origin"], tuple(p.shape))[p.first:p.first + p.count]
        out = {k: np.full(len(centres), np.nan)
               for k in ("tau0_GPa", "tau_c_GPa", "dtau_c_GPa", "yield_strain", "volume_A3")}
        out["n_inner"] = np.zeros(len(centres), np.int32)
        max_steps = int(round(p.max_strain / p.strain_step))
        out["tau_GPa"] = np.full((len(centres), max_steps + 1), np.nan)  # each region's curve, to its event
        t0 = time.time()
        for r, centre in enumerate(centres):
            self.progress(r, len(centres), "regions", force=True, region=p.first + r)
            shear = self.region(q, centre, max_steps)
            out["n_inner"][r], out["volume_A3"][r] = shear["n_inner"], shear["volume_A3"]
            out["tau_GPa"][r, :len(shear["tau"])] = shear["tau"]
            out["tau0_GPa"][r] = shear["tau"][0]
            if shear["yield_strain"] is not None:
                out["tau_c_GPa"][r], out["yield_strain"][r] = shear["tau_c"], shear["yield_strain"]
                out["dtau_c_GPa"][r] = shear["tau_c"] - shear["tau"][0]
        if self.rank0:
            g = self.fresh_group(shape=list(p.shape), first=p.first, direction=p.direction,
                                 units="stresses GPa, resolved on the shear; strain dimensionless")
            layout.write_arrays(g, {"region": np.arange(p.first, p.first + len(centres), dtype=np.int32),
                                    "centre_A": centres, **out})
        yielded = np.isfinite(out["dtau_c_GPa"])
        self.finish(regions=len(centres), yielded=int(yielded.sum()),
                    mean_dtau_c_GPa=float(np.nanmean(out["dtau_c_GPa"])) if yielded.any() else None,
                    seconds_per_region=round((time.time() - t0) / max(len(centres), 1), 3))

    def region(self, q: dict, centre: np.ndarray, max_steps: int) -> dict:
        """The region around ``centre`` sheared to its first event: τ (S,) GPa at each step up to the
        one past it, τ_c GPa and yield strain (None, None if no event by ``max_strain``), n_inner
        atoms and their volume_A3."""
        p = self.p
        d = distances(q["positions"], q["cell"], centre)
        keep = d < p.radius_A + p.shell_A
        inner = np.flatnonzero(d[keep] < p.radius_A)
        if not len(inner):
            raise ValueError(f"the region of radius {p.radius_A} A around {np.round(centre, 2).tolist()} holds no "
                             "atom: raise lys.radius_A")
        with Lammps(self.comm, self.spec.log_path, self.spec.threads) as lmp:
            lmp.create_box(q["cell"], q["origin"])
            lmp.set_potential(p.potential)
            lmp.add_atoms(q["types"][keep], q["positions"][keep])
            lmp.run(f"""
                change_box all triclinic
                group inner id {' '.join(str(i + 1) for i in inner)}
                group outer subtract all inner
                fix frozen outer setforce 0.0 0.0 0.0
                compute S all stress/atom NULL virial
            """)
            at = _Region(lmp, p, inner)
            tau = [at.tau()]
            for step in range(1, max_steps + 1):
                elastic = lmp.raw_positions()  # the state at step - 1
                tau.append(at.shear_to(step * p.strain_step, f"region step {step}"))
                k = first_event(tau, p.departure_GPa)
                if k is not None:  # k = step - 1
                    at.tilt(k * p.strain_step)
                    lmp.restore_positions(elastic)
                    yield_strain, tau_c = self.refine(at, k, tau)
                    break
            else:
                yield_strain, tau_c = None, None
        return dict(tau=np.array(tau), tau_c=tau_c, yield_strain=yield_strain, n_inner=len(inner),
                    volume_A3=at.volume)

    def refine(self, at: _Region, k: int, tau: list) -> tuple[float, float]:
        """(yield strain, τ_c GPa) of an event between steps k and k + 1 of ``tau``, the region's atoms
        put back in their state at step k: sheared again in ``refine`` finer steps, the last before the
        event (at most the coarse step's end less one fine step)."""
        p = self.p
        coarse, fine = p.strain_step, p.strain_step / p.refine
        slope = (tau[k] - tau[k - 1]) / coarse if k else None  # GPa per unit strain, the elastic branch's
        taus = [tau[k]]  # not at.tau(): LAMMPS's per-atom virials are those of the last force evaluation, at k + 1
        for j in range(1, p.refine):
            taus.append(at.shear_to(k * coarse + j * fine, f"region step {k} + {j}/{p.refine}"))
            if first_event(taus, p.departure_GPa, None if slope is None else slope * fine) is not None:
                return k * coarse + (j - 1) * fine, taus[j - 1]
        return (k + 1) * coarse - fine, taus[-1]


class _Region:
    """A region in its LAMMPS program (the frozen outer atoms set up): minimised unstrained on
    creation, its atoms' volume (Å³, their Voronoi cells) measured there."""

    def __init__(self, lmp: Lammps, p: LocalYieldParams, inner: np.ndarray):
        self.lmp, self.p, self.inner = lmp, p, inner
        self.cell0, _ = lmp.box()
        lmp.run("compute V all voronoi/atom")
        lmp.minimize(p.minimize, "region step 0")
        lmp.run("run 0")
        self.volume = float(lmp.gather("c_V", 1, 2)[inner, 0].sum())
        lmp.run("uncompute V")

    def tilt(self, strain: float) -> None:
        """The box tilted to ``strain`` from the unstrained one, every atom remapped affinely."""
        name, tilt = frames.tilt(self.p.direction, self.cell0, strain)
        self.lmp.run(f"change_box all {name} final {tilt!r} remap units box")

    def shear_to(self, strain: float, what: str) -> float:
        """τ GPa after the box is tilted to ``strain`` and the region's atoms relaxed."""
        self.tilt(strain)
        self.lmp.minimize(self.p.minimize, what)
        self.lmp.run("run 0")
        return self.tau()

    def tau(self) -> float:
        """The region's stress resolved on the shear (GPa, positive when it resists it), as it stands."""
        stress = self.lmp.gather("c_S", 1, 6)[self.inner][:, LAMMPS_TO_VOIGT].sum(0) * BAR_TO_GPA / self.volume
        return float(resolved(stress, self.p.direction))
