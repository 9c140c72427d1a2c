"""Voronoi tessellation and vibrational participation fractions of one quenched specimen.

No LAMMPS here (not even its module: it must not share a process with OVITO or freud): the Voronoi cells come from
``kernels.voronoi`` and the Hessian
is assembled analytically from the eam/fs tables (``kernels.eam``), exact and
sparse; its mass-weighted low modes give the participation fractions.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from jobs.common import Job, SystemParams
from kernels import eam, modes, voronoi
from store import layout


@dataclass(frozen=True, kw_only=True)
class StructureParams(SystemParams):
    quench_key: str
    specimen: int
    face_area_fraction: float  # Voronoi faces below this fraction of the cell's area are left out
    low_mode_fraction: float   # of the 3N-3 non-zero modes, for the participation fractions
    eigensolver: str           # kernels.modes.low_modes's method


class StructureJob(Job):
    """The Voronoi cells and the participation fractions of one quenched specimen (``StructureParams``)."""

    Params = StructureParams

    def run(self) -> None:
        p = self.p
        if not self.rank0:  # a serial job: extra ranks have nothing to do
            return
        q = self.input(p.quench_key, ("types", "positions", "cell"))
        timings = {}
        t = time.perf_counter()
        tess = voronoi.voronoi(q["positions"], q["cell"], p.face_area_fraction)
        timings["voronoi_s"] = time.perf_counter() - t

        t = time.perf_counter()
        pot = eam.load_potential(p.potential)
        h = eam.hessian(pot, q["positions"], q["cell"], q["types"])
        timings["hessian_s"] = time.perf_counter() - t
        t = time.perf_counter()
        masses = pot.masses[q["types"].astype(int) - 1]  # g/mol, from the potential file
        n_modes = modes.n_low_modes(len(masses), p.low_mode_fraction)
        eigenvalues, vectors = modes.low_modes(modes.dynamical_matrix(h, masses), n_modes, p.eigensolver)
        timings["eigensolve_s"] = time.perf_counter() - t
        participation = modes.participation_fractions(vectors)

        g = self.fresh_group(face_area_fraction=p.face_area_fraction, low_modes=n_modes,
                             units="volume A^3, face_area A^2, eigenvalues eV/(A^2 amu)")
        layout.write_arrays(g, {
            "volume": tess.volume, "voronoi_index": tess.index, "icosahedral": voronoi.is_icosahedral(tess.index),
            "neighbour_i": tess.i, "neighbour_j": tess.j, "face_area": tess.area,
            "participation": participation, "low_mode_eigenvalues": eigenvalues,
        })
        self.finish(n_low_modes=n_modes, icosahedral_fraction=float(voronoi.is_icosahedral(tess.index).mean()),
                    mean_neighbours=len(tess.i) / len(tess.volume), hessian_nonzeros=int(h.nnz),
                    **{k: round(v, 3) for k, v in timings.items()})
