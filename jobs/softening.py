"""The mode softening of one quenched specimen under each of its shears (no LAMMPS).

``kernels.continuation.specimen_softening``: the analytic eam/fs Hessian, its lowest ``mode_fraction`` of
mass-weighted modes and one factorisation serve every direction; per axis the linear response u and the
path derivative D′ on the smoothed tables, per signed direction the predicted first instability: the
per-atom columns ``kernels.features.SOFTENING_NAMES`` and the strains γ* (the subspace crossing) and
γ_min (the lowest per-mode crossing), ∞ where nothing crosses. With ``continuation_steps`` the path is
followed too (``kernels.continuation``): the column ``PATH_NAMES`` and the strains γ_path, γ_upper.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jobs.common import Job, ParamsError
from jobs.response import AtRest, AtRestParams
from kernels import modes
from kernels.continuation import specimen_softening
from kernels.features import PATH_NAMES, SOFTENING_NAMES
from store import layout


@dataclass(frozen=True, kw_only=True)
class SofteningParams(AtRestParams):
    mode_fraction: float
    path_step: float                         # strain step of D′'s central difference
    knots_every: int                         # of the smoothed tables
    continuation_steps: int = 0              # the task's optional 'continuation' section: absent, first order only
    path_mode_fraction: float | None = None

    def __post_init__(self):
        if self.continuation_steps and self.path_mode_fraction is None:
            raise ParamsError("SofteningParams: continuation_steps without path_mode_fraction")


class SofteningJob(AtRest, Job):
    """The mode softening of one specimen under each of its shears (``SofteningParams``)."""

    Params = SofteningParams

    def run(self) -> None:
        p = self.p
        if not self.rank0:
            return
        q, pot, directions, n_modes = self.glass(p.mode_fraction)
        timings: dict = {}
        steps = p.continuation_steps  # the task's optional 'continuation' section, flattened (0: first order)
        path_modes = modes.n_low_modes(len(q["types"]), p.path_mode_fraction) if steps else None
        out = specimen_softening(pot, q["positions"], q["cell"], q["types"], directions, n_modes, p.eigensolver,
                                 p.knots_every, p.path_step, timings, self.direction_progress(directions), steps,
                                 path_modes)
        g = self.fresh_group(directions=list(directions),
                             feature_names=list(SOFTENING_NAMES + (PATH_NAMES if steps else ())), n_modes=n_modes,
                             units="features dimensionless (each sums to 1 over the atoms); gamma_star"
                                   + (", gamma_min, gamma_path and gamma_upper" if steps else " and gamma_min")
                                   + " strain (inf: no crossing)")
        layout.write_arrays(g, {"features": out.pop("scores").astype(np.float32), **out})
        finite = out["gamma_star"][np.isfinite(out["gamma_star"])]
        self.finish(median_gamma_star=float(np.median(finite)) if len(finite) else None, n_modes=n_modes,
                    crossing_directions=int(len(finite)), **self.seconds(timings))
