"""The linear response of one quenched specimen to each of its shears (no LAMMPS).

``kernels.response.specimen_response``: the analytic eam/fs Hessian, its lowest mass-weighted modes
(the fraction of the participation features) and one factorisation of it serve every direction;
per direction the force mismatch Ξ of the affine shear and u = −H⁺Ξ, kept per atom as |u|, its
low-mode part and the mode drive, the columns ``kernels.features.RESPONSE_NAMES``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jobs.common import Job, Seq, SystemParams
from kernels import eam, modes
from kernels.features import RESPONSE_NAMES
from kernels.response import specimen_response
from store import layout


class AtRest:
    """For a Job on the Hessian of a specimen's glass at rest for each of its shears (rank 0 alone): the
    inputs and the timing summary the response and the softening share (a mixin: not a job of its own)."""

    def glass(self, mode_fraction: float) -> tuple[dict, object, list, int]:
        """(the quench's types, positions and cell; the potential; the directions; the number of low modes
        in ``mode_fraction`` of them)."""
        q = self.input(self.p.quench_key, ("types", "positions", "cell"))
        return q, eam.load_potential(self.p.potential), self.p.directions, \
            modes.n_low_modes(len(q["types"]), mode_fraction)

    def direction_progress(self, directions: list):
        """The ``progress`` callback of kernels.response.specimen_response and its like."""
        return lambda k, d: self.progress(k, len(directions), "directions", force=True, direction=d)

    @staticmethod
    def seconds(timings: dict) -> dict:
        return {"seconds_hessian_modes_factorisation": round(
                    timings["hessian_s"] + timings["low_modes_s"] + timings["factorisation_s"], 3),
                "seconds_per_direction": round(float(np.mean(timings["per_direction_s"])), 3)}


@dataclass(frozen=True, kw_only=True)
class AtRestParams(SystemParams):
    """What a job on the Hessian at rest reads: the glass, the eigensolver and the signed directions."""
    quench_key: str
    specimen: int
    eigensolver: str
    directions: Seq


@dataclass(frozen=True, kw_only=True)
class ResponseParams(AtRestParams):
    low_mode_fraction: float


class ResponseJob(AtRest, Job):
    """The linear response of one specimen to each of its shears (``ResponseParams``)."""

    Params = ResponseParams

    def run(self) -> None:
        if not self.rank0:
            return
        q, pot, directions, n_modes = self.glass(self.p.low_mode_fraction)
        timings: dict = {}
        features = specimen_response(pot, q["positions"], q["cell"], q["types"], directions, n_modes,
                                     self.p.eigensolver, timings, progress=self.direction_progress(directions))
        g = self.fresh_group(directions=list(directions), feature_names=list(RESPONSE_NAMES),
                             units="|u| and |u_low| A per unit strain; mode drive A^2 per unit strain^2")
        layout.write_arrays(g, {"features": features.astype(np.float32)})
        self.finish(mean_u_A=float(features[:, :, 0].mean()), n_low_modes=n_modes, **self.seconds(timings))
