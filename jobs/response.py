"""The linear response of one quenched specimen to each of its shears (no LAMMPS).

``kernels.response.specimen_response``: the analytic eam/fs Hessian, its lowest mass-weighted modes
(the fraction of the participation features) and one factorisation of it serve every direction;
per direction the force mismatch Ξ of the affine shear and u = −H⁺Ξ, kept per atom as |u|, its
low-mode part and the mode drive, the columns ``kernels.features.RESPONSE_NAMES``.
"""
from __future__ import annotations

import numpy as np

from jobs.common import Job
from kernels import eam, modes
from kernels.features import RESPONSE_NAMES
from kernels.response import specimen_response
from store import layout


class ResponseJob(Job):
    """params: quench_key, specimen, potential, low_mode_fraction, eigensolver, directions."""

    def run(self) -> None:
        p = self.p
        if not self.rank0:
            return
        q = self.input(p["quench_key"], ("types", "positions", "cell"))
        pot = eam.load_potential(p["potential"])
        directions, n_modes = p["directions"], modes.n_low_modes(len(q["types"]), p["low_mode_fraction"])
        timings: dict = {}
        features = specimen_response(
            pot, q["positions"], q["cell"], q["types"], directions, n_modes, p["eigensolver"], timings,
            progress=lambda k, d: self.progress(k, len(directions), "directions", force=True, direction=d))
        g = self.fresh_group(directions=list(directions), feature_names=list(RESPONSE_NAMES),
                             units="|u| and |u_low| A per unit strain; mode drive A^2 per unit strain^2")
        layout.write_arrays(g, {"features": features.astype(np.float32)})
        self.finish(mean_u_A=float(features[:, :, 0].mean()),
                    n_low_modes=n_modes,
                    seconds_hessian_modes_factorisation=round(
                        timings["hessian_s"] + timings["low_modes_s"] + timings["factorisation_s"], 3),
                    seconds_per_direction=round(float(np.mean(timings["per_direction_s"])), 3))
