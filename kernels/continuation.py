"""The mode softening followed along the quasi-static path: re-linearise where the first-order
prediction points until the first instability is bracketed (beyond ``kernels.softening``'s first order);
and ``specimen_softening``, both for every shear of one specimen.

The first-order strain γ* linearises D(γ) at the unstrained glass. Near a saddle-node the lowest eigenvalue
falls as λ ∝ √(γc − γ), so a linearisation at γ predicts the crossing at γ + 2(γc − γ): twice the remaining
distance; and the curvature it leaves out can remove the predicted crossing or bring another mode down
first. Here the path is followed instead (``follow``): from an equilibrium at strain γ_n (n = 0: the
quenched glass) the first-order crossing γ_n + Δ_n from there (``local_prediction``); a trial step to
γ_n + θΔ_n (θ = ½: exact in the √ regime; at most ``max_step``; ``max_step`` when nothing crosses) along
the linear predictor x + Δγ·u in the affinely sheared cell; Newton's method on the analytic forces to the
equilibrium there, the state an AQS minimisation reaches (``newton_relax``); the next prediction from it.
A trial whose Newton iteration fails, whose equilibrium has a non-positive mode, or whose correction moves
an atom further than ``jump_A`` from the predictor has passed the instability, or its predictor was too
poor: the next trial from the same equilibrium takes half the step, and the rejected strain stays the
bracket's upper end until the path passes it. Each accepted step costs one exact Hessian and its low
modes, one factorisation, two smoothed Hessians (D′) and the Newton iterations' Hessians and factorisations.
"""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from kernels import eam, modes
from kernels.response import HessianSolver, at_rest, force_mismatch, response, sheared
from kernels.softening import (
    PATH_STEP,
    SMOOTH_EVERY,
    crossing_score,
    mode_crossings,
    path_derivative,
    smooth_potential,
    subspace_softening,
)

THETA = 0.5          # share of the predicted remaining strain taken as the next step
MAX_STEP = 0.02      # largest trial step (strain)
JUMP_A = 0.05        # a Newton correction moving an atom further than this (Å) has left the branch
FORCE_TOL = 1e-6     # eV/Å: Newton's method has converged when no force is larger
CONVERGED = 1e-4     # strain: the path is followed until the predicted remaining strain is below this


@dataclasses.dataclass
class Prediction:
    """The first-order prediction at one equilibrium: ``remaining`` Δ (strain to the crossing from here, ∞:
    none), ``psi`` ψ* (3N,) unit mass-weighted, ``lowest`` the lowest eigenvalue eV/(Å²·amu), ``u`` (N,3) Å
    per unit strain (the linear response here)."""
    remaining: float
    psi: np.ndarray
    lowest: float
    u: np.ndarray


@dataclasses.dataclass
class Path:
    """What ``follow`` found: ``strains`` (n,) of the equilibria reached (0 first), ``predictions`` (n,) the
    first-order crossing strain predicted from each, ``lowest`` (n,) their lowest eigenvalues eV/(Å²·amu),
    ``upper`` the last rejected trial strain beyond the last equilibrium (∞: none), ``psi`` ψ* (3N,) at the last
    equilibrium and ``positions`` (N,3) Å the equilibrium itself. ``estimate``: the strain of the first
    instability."""
    strains: list
    predictions: list
    lowest: list
    upper: float
    psi: np.ndarray
    positions: np.ndarray

    @property
    def estimate(self) -> float:
        """γ_n + θΔ_n from the last equilibrium (∞ when nothing crosses), at most the last rejected strain."""
        last = self.strains[-1]
        return float(min(last + THETA * (self.predictions[-1] - last), self.upper))


def newton_relax(pot, positions, cell, types, masses, max_iterations: int = 8, force_tol: float = FORCE_TOL):
    """(positions (N,3) Å, converged, Hessian evaluations): Newton's method x ← x + H⁺f on the analytic eam/fs
    forces at fixed cell (3,3) Å, the centre of mass kept; converged when every |f| component < ``force_tol``
    eV/Å. Meant for a start near a minimum (the linear predictor); near an instability it does not converge."""
    x = np.array(positions, dtype=float)
    for iteration in range(max_iterations + 1):
        forces = eam.energy_forces(pot, x, cell, types)[1]
        if np.abs(forces).max() < force_tol:
            return x, True, iteration
        if iteration == max_iterations or not np.all(np.isfinite(forces)):
            break
        solver = HessianSolver(eam.hessian(pot, x, cell, types), masses)
        x = x + solver.solve(forces - forces.mean(axis=0))
    return x, False, max_iterations


def local_prediction(pot, smooth, positions, cell, types, masses, direction: str, n_modes: int,
                     eigensolver: str = "auto", delta: float = PATH_STEP) -> Prediction:
    """The first-order crossing (``kernels.softening.subspace_softening``) from the equilibrium ``positions``
    (N,3) Å in ``cell`` (3,3) Å, along a further shear in the signed ``direction``; D′ on ``smooth``."""
    h = eam.hessian(pot, positions, cell, types)
    eigenvalues, vectors = modes.low_modes(modes.dynamical_matrix(h, masses), n_modes, eigensolver)
    u = response(HessianSolver(h, masses), force_mismatch(pot, positions, cell, types, direction))
    if eigenvalues[0] <= 0:
        return Prediction(0.0, vectors[:, 0], float(eigenvalues[0]), u)
    b = vectors.T @ (path_derivative(smooth, positions, cell, types, direction, u, delta) @ vectors)
    gamma, psi, _ = subspace_softening(eigenvalues, vectors, b)
    return Prediction(gamma, psi, float(eigenvalues[0]), u)


def follow(pot, smooth, positions, cell, types, direction: str, n_modes: int, steps: int = 4,
           eigensolver: str = "auto", start: Prediction | None = None, max_step: float = MAX_STEP,
           jump_A: float = JUMP_A, delta: float = PATH_STEP) -> Path:
    """Follow the quasi-static path of the equilibrium ``positions`` (N,3) Å, ``cell`` (3,3) Å, types (N,)
    1-based, in ``direction`` for at most ``steps`` trial steps (module docstring); ``smooth`` the smoothed
    potential for D′ (``kernels.softening.smooth_potential``), ``pot`` the exact one for everything else.
    ``start``: the first-order prediction at rest, when the caller has it (else computed here)."""
    types = np.asarray(types).astype(int)
    masses = pot.masses[types - 1]
    x, c, gamma = np.asarray(positions, dtype=float), np.asarray(cell, dtype=float), 0.0
    here = start or local_prediction(pot, smooth, x, c, types, masses, direction, n_modes, eigensolver, delta)
    path = Path([0.0], [here.remaining], [here.lowest], math.inf, here.psi, x)
    failed = None  # the last trial step from this equilibrium, when it was rejected
    for _ in range(steps):
        step = min(THETA * here.remaining, max_step) if failed is None else 0.5 * failed
        if step < CONVERGED:
            break
        predictor, c_new = sheared(x, c, direction, step)
        predictor = predictor + step * here.u
        x_new, converged, _ = newton_relax(pot, predictor, c_new, types, masses)
        accepted = converged and np.linalg.norm(x_new - predictor, axis=1).max() < jump_A
        if accepted:
            there = local_prediction(pot, smooth, x_new, c_new, types, masses, direction, n_modes, eigensolver, delta)
            accepted = there.lowest > 0
        if not accepted:  # past the instability, or a predictor too poor for Newton: a shorter step tells
            failed, path.upper = step, gamma + step
            continue
        x, c, gamma, here, failed = x_new, c_new, gamma + step, there, None
        path.strains.append(gamma)
        path.predictions.append(gamma + here.remaining)
        path.lowest.append(here.lowest)
        path.psi, path.positions = here.psi, x
        if gamma >= path.upper:  # that rejection was the predictor's, not the instability's
            path.upper = math.inf
    return path


def specimen_softening(pot, positions, cell, types, directions, n_modes: int, eigensolver: str = "auto",
                       every: int = SMOOTH_EVERY, delta: float = PATH_STEP, timings: dict | None = None,
                       progress=None, steps: int = 0, path_modes: int | None = None) -> dict[str, np.ndarray]:
    """The softening predictions of one specimen for each shear direction (signed, e.g. 'xy', '-xy'):
    {"scores": (D, N, 2) the per-atom columns kernels.features.SOFTENING_NAMES (|ψ*_i|², the crossing
                score; each sums to 1),
     "gamma_star": (D,) γ* (∞: no crossing), "gamma_min": (D,) the lowest per-mode crossing strain}.
    One exact Hessian, its ``n_modes`` lowest modes and one factorisation (for u) serve every direction;
    D′ is computed once per axis on the smoothed tables (D′ of '-e' is −D′ of 'e').
    With ``steps`` > 0 the path is also followed (``follow``, at most ``steps`` trial steps per direction,
    each equilibrium's prediction in its ``path_modes`` lowest modes, default ``n_modes``): "scores" gains
    the column PATH_NAMES (|ψ*_i|² at the last equilibrium before the instability), and "gamma_path" (D,)
    the followed estimate and "gamma_upper" (D,) the bracket's upper end (∞: none found) are added.

    pot EamFs (exact tables); positions (N,3) Å; cell (3,3) Å; types (N,) 1-based. ``timings``, if given,
    receives hessian_s, low_modes_s, factorisation_s, smoothing_s and per_direction_s (a list)."""
    timings = {} if timings is None else timings
    types = np.asarray(types).astype(int)
    _, eigenvalues, vectors, solver = at_rest(pot, positions, cell, types, n_modes, eigensolver, timings)
    t = time.perf_counter()
    smooth = smooth_potential(pot, every)
    timings["smoothing_s"] = time.perf_counter() - t
    timings["per_direction_s"] = []
    per_axis: dict[str, tuple] = {}  # (u, B = ΨᵀD′Ψ) per axis
    out = {"scores": np.empty((len(directions), len(types), 3 if steps else 2)),
           "gamma_star": np.empty(len(directions)), "gamma_min": np.empty(len(directions))}
    if steps:
        out["gamma_path"], out["gamma_upper"] = np.empty(len(directions)), np.empty(len(directions))
    for k, d in enumerate(directions):
        if progress is not None:
            progress(k, d)
        t = time.perf_counter()
        axis, sign = d.lstrip("-"), (-1.0 if d.startswith("-") else 1.0)
        if axis not in per_axis:
            u = response(solver, force_mismatch(pot, positions, cell, types, axis))
            per_axis[axis] = u, vectors.T @ (path_derivative(smooth, positions, cell, types, axis, u, delta) @ vectors)
        u, b = (sign * a for a in per_axis[axis])
        gamma, psi, _ = subspace_softening(eigenvalues, vectors, b)
        crossings = mode_crossings(eigenvalues, b)
        columns = [modes.participation_fractions(psi), crossing_score(vectors, crossings)]
        out["gamma_star"][k], out["gamma_min"][k] = gamma, crossings.min()
        if steps:
            path = follow(pot, smooth, positions, cell, types, d, path_modes or n_modes, steps, eigensolver,
                          Prediction(gamma, psi, float(eigenvalues[0]), u), delta=delta)
            columns.append(modes.participation_fractions(path.psi))
            out["gamma_path"][k], out["gamma_upper"][k] = path.estimate, path.upper
        out["scores"][k] = np.stack(columns, axis=1)
        timings["per_direction_s"].append(time.perf_counter() - t)
    return out
