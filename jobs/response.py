"""The linear response of one quenched specimen to each of its shears (no LAMMPS).

The analytic eam/fs Hessian, its lowest mass-weighted modes (the fraction of the participation
features) and one factorisation of it serve every direction: per direction the force mismatch Ξ of
the affine shear and u = −H⁺Ξ (``kernels.response``), kept per atom as |u|, its low-mode part and
the mode drive, the columns ``kernels.features.RESPONSE_NAMES``.
"""
from __future__ import annotations

import time

import numpy as np

from jobs.common import Job
from kernels import eam, modes
from kernels.features import RESPONSE_NAMES
from kernels.response import HessianSolver, force_mismatch, low_mode_response, mode_drive, response, response_features
from store import layout


class ResponseJob(Job):
    """params: quench_key, specimen, potential, low_mode_fraction, eigensolver, directions."""

    def run(self) -> None:
        p = self.p
        if not self.rank0:
            return
        q = self.input(p["quench_key"], ("types", "positions", "cell"))
        positions, cell, types = q["positions"], q["cell"], q["types"].astype(int)
        with open(eam.potential_file(p["potential"])) as f:
            pot = eam.parse_eam_fs(f.read())
        masses = pot.masses[types - 1]  # g/mol, from the potential file
        t0 = time.perf_counter()
        h = eam.hessian(pot, positions, cell, types)
        eigenvalues, vectors = modes.low_modes(modes.dynamical_matrix(h, masses),
                                               modes.n_low_modes(len(types), p["low_mode_fraction"]), p["eigensolver"])
        solver = HessianSolver(h, masses)
        prepared = time.perf_counter() - t0
        features = np.empty((len(p["directions"]), len(types), len(RESPONSE_NAMES)), dtype=np.float32)
        t1 = time.perf_counter()
        for k, d in enumerate(p["directions"]):
            self.progress(k, len(p["directions"]), "directions", force=True, direction=d)
            xi = force_mismatch(pot, positions, cell, types, d)
            features[k] = response_features(response(solver, xi), low_mode_response(xi, eigenvalues, vectors, masses),
                                            mode_drive(xi, eigenvalues, vectors, masses))
        per_direction = (time.perf_counter() - t1) / len(p["directions"])
        g = self.fresh_group(directions=list(p["directions"]), feature_names=list(RESPONSE_NAMES),
                             units="|u| and |u_low| A per unit strain; mode drive A^2 per unit strain^2")
        layout.write_arrays(g, {"features": features})
        self.finish(mean_u_A=float(features[:, :, 0].mean()), n_low_modes=len(eigenvalues),
                    seconds_hessian_modes_factorisation=round(prepared, 3), seconds_per_direction=round(per_direction, 3))
