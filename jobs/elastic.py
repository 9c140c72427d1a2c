"""Per-atom stress and elastic stiffness of one quenched specimen.

Per-atom stress x volume S_i (LAMMPS ``compute stress/atom``, virial only: the
specimen is at 0 K) at zero strain, and its response to small strains
±eps in each of the 6 Voigt directions with the non-affine relaxation
(energy minimisation at fixed box) included:

    C_i[:, J] V_i = (S_i(+eps_J) - S_i(-eps_J)) / (2 eps_J) - spin_J(S_i)

Shear strains are applied as simple shears (the LAMMPS tilt), whose rotation
part would turn the atom's pre-stress; ``spin_J`` removes that rotation
(W S - S W, W the spin of the unit simple shear), leaving the response to
the symmetric strain. Dividing by the Voronoi volume V_i is left to the
featurisation. Voigt order everywhere: xx yy zz yz xz xy, engineering shear
strains (eps_4 = 2 eps_yz).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jobs.common import Job, SystemParams
from jobs.lmp import BAR_TO_GPA, Lammps
from kernels import frames
from store import layout

# LAMMPS stress/atom order xx yy zz xy xz yz -> Voigt xx yy zz yz xz xy
LAMMPS_TO_VOIGT = [0, 1, 2, 5, 4, 3]


@dataclass(frozen=True, kw_only=True)
class ElasticParams(SystemParams):
    quench_key: str
    specimen: int
    stiffness_strain: float    # of the six finite strains
    stiffness_ftol: float      # eV/Å, the minimisations' force tolerance
    minimize: dict


class ElasticJob(Job):
    """Per-atom stress and stiffness of one quenched specimen (``ElasticParams``)."""

    EVERY_RANK = True
    Params = ElasticParams

    def run(self) -> None:
        p = self.p
        q = self.input_on_rank0(p.quench_key, ("types", "positions", "cell", "origin"))
        eps = p.stiffness_strain
        m = p.minimize
        ftol = p.stiffness_ftol
        cell0, origin0 = q["cell"], q["origin"]
        if np.any(np.abs(cell0[np.tril_indices(3, -1)]) > 0):
            raise RuntimeError("the quenched box must be orthogonal")
        with Lammps(self.comm, self.spec.log_path, self.spec.threads) as lmp:
            lmp.create_box(cell0, origin0)
            lmp.set_potential(p.potential)
            lmp.add_atoms(q["types"], q["positions"])
            lmp.run("change_box all triclinic\ncompute S all stress/atom NULL virial")
            lmp.minimize(m, "unstrained specimen", ftol=ftol)
            x0 = lmp.raw_positions()

            def measure():
                lmp.run("run 0")
                return lmp.gather("c_S", 1, 6)[:, LAMMPS_TO_VOIGT] * BAR_TO_GPA, lmp.stress_gpa()

            s0, sigma0 = measure()
            response = np.zeros((len(q["types"]), 6, 6))
            global_c = np.zeros((6, 6))
            for j in range(6):
                self.progress(j, 6, "strain directions", force=True, voigt=j + 1)
                side = []
                for sign in (1.0, -1.0):
                    self._strain(lmp, cell0, origin0, j, sign * eps)
                    lmp.minimize(m, f"strain {sign * eps:+g} in Voigt {j + 1}", ftol=ftol)
                    side.append(measure())
                    lmp.run(self._box_command(cell0, origin0))
                    lmp.restore_positions(x0)
                response[:, :, j] = (side[0][0] - side[1][0]) / (2 * eps)
                global_c[:, j] = (side[0][1] - side[1][1]) / (2 * eps)
                if j >= 3:  # a simple shear: remove what its rotation does to the pre-stress
                    response[:, :, j] -= frames.spin_correction(s0, j)
                    global_c[:, j] -= frames.spin_correction(sigma0, j)
        volume = float(np.linalg.det(cell0))
        summary = {"C44_GPa": float(global_c[3, 3]), "C55_GPa": float(global_c[4, 4]),
                   "C66_GPa": float(global_c[5, 5]), "C11_GPa": float(global_c[0, 0]),
                   "C12_GPa": float(global_c[0, 1])}
        if self.rank0:
            g = self.fresh_group(strain=eps, units="GPa*A^3 per atom; global GPa", voigt="xx yy zz yz xz xy")
            layout.write_arrays(g, {"stress_volume": s0, "stiffness_volume": response,
                                    "global_stress_GPa": sigma0, "global_stiffness_GPa": global_c,
                                    "box_volume_A3": np.array(volume)})
        self.finish(**summary)

    @staticmethod
    def _box_command(cell, origin) -> str:
        (lx, _, _), (xy, ly, _), (xz, yz, lz) = cell.tolist()
        x0, y0, z0 = origin.tolist()
        return (f"change_box all x final {x0!r} {x0 + lx!r} y final {y0!r} {y0 + ly!r} z final {z0!r} {z0 + lz!r} "
                f"xy final {xy!r} xz final {xz!r} yz final {yz!r} remap units box")

    def _strain(self, lmp: Lammps, cell, origin, j: int, e: float) -> None:
        """Apply Voigt strain component j of magnitude e (engineering for shears) to the unstrained box."""
        strained = cell.copy()
        if j < 3:
            strained[:, j] *= 1.0 + e           # x_j -> (1 + e) x_j: scales that column of every edge
            lmp.run(self._box_command(strained, origin))
        else:
            name, tilt = frames.tilt(frames.voigt_shear(j), cell, e)
            lmp.run(f"change_box all {name} final {tilt!r} remap units box")
