"""Linear response of a glass at rest to an affine simple shear (Maloney & Lemaître, PRE 74, 016118 (2006)).

Shearing every position and the box affinely by dγ in direction ``d`` (``kernels.frames``: atoms
displaced along the first axis in proportion to their coordinate along the second, the negative
way for '-xy' and the like) leaves a force on each atom, −Ξ dγ, with

    Ξ = ∂²U/∂r∂γ = −∂f/∂γ|affine   (3N,) eV/Å per unit strain.

Staying at equilibrium, the atoms answer with the non-affine velocity

    u = dr/dγ|non-affine = −H⁺ Ξ    (3N,) Å per unit strain,

H the Hessian (eV/Å²), H⁺ its pseudo-inverse with the three uniform translations projected out.
Near a plastic event u localises on the atoms that rearrange, and its low-mode part grows as the
lowest mode softens. In terms of the mass-weighted modes v_l, ω_l² of D = M^{-1/2} H M^{-1/2}
(``kernels.modes``), H⁺ = M^{-1/2} D⁺ M^{-1/2}, so

    u = −M^{-1/2} Σ_l c_l v_l,   c_l = (v_l · M^{-1/2} Ξ) / ω_l²,

and the part of u carried by the lowest modes is the same sum over those modes only. u is odd in
the shear: the response to '-xy' is minus that to 'xy', so its magnitude is blind to the sign.
"""
from __future__ import annotations

import time

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from kernels import eam, frames, modes

STRAIN_STEP = 1e-6  # of the central difference of the forces giving Ξ


def sheared(positions: np.ndarray, cell: np.ndarray, direction: str, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions (N,3) Å and cell (3,3) Å (rows a, b, c) under affine simple shear ``gamma`` in
    ``direction``: r -> F r with F = I + s·gamma·e_disp e_gradᵀ. The LAMMPS box stays lower-triangular."""
    disp, grad, sign = frames.shear_axes(direction)
    f = np.eye(3)
    f[disp, grad] += sign * gamma
    return positions @ f.T, cell @ f.T


def force_mismatch(pot, positions, cell, types, direction: str, h: float = STRAIN_STEP) -> np.ndarray:
    """Ξ (N,3) eV/Å per unit strain: minus the derivative of the forces under the affine shear
    (a central difference of the analytic eam/fs forces, ±h; the forces are C¹ in the positions)."""
    plus = eam.energy_forces(pot, *sheared(positions, cell, direction, h), types)[1]
    minus = eam.energy_forces(pot, *sheared(positions, cell, direction, -h), types)[1]
    return -(plus - minus) / (2.0 * h)


class HessianSolver:
    """Solves H x = b for b free of net force, returning the x that leaves the centre of mass where
    it is (Σ m_i x_i = 0, as the mass-weighted modes do; equal masses unless given): H⁺ b.

    One factorisation serves every direction of a specimen: atom 0 is held fixed, which removes the
    three translations, and the reduced (3N−3) system is factorised once (dense LAPACK LU up to
    ``dense_max`` degrees of freedom, sparse SuperLU above).
    """

    def __init__(self, hessian, masses=None, dense_max: int = 6000):
        h = sp.csr_matrix(hessian)
        self.n = h.shape[0]
        self.weights = np.ones(self.n // 3) if masses is None else np.asarray(masses, dtype=float)
        reduced = h[3:, 3:]
        if self.n - 3 <= dense_max:
            lu = scipy.linalg.lu_factor(reduced.toarray())
            self._solve = lambda b: scipy.linalg.lu_solve(lu, b)
        else:
            lu = spla.splu(reduced.tocsc())
            self._solve = lu.solve

    def solve(self, b: np.ndarray) -> np.ndarray:
        """x (N,3) with H x = b (N,3) and Σ m_i x_i = 0; b must sum to zero (no net force)."""
        b = np.asarray(b, dtype=float).reshape(-1)
        x = np.concatenate([np.zeros(3), self._solve(b[3:])]).reshape(-1, 3)
        return x - np.average(x, axis=0, weights=self.weights)


def response(solver: HessianSolver, xi: np.ndarray) -> np.ndarray:
    """u = −H⁺ Ξ (N,3) Å per unit strain, for Ξ (N,3) eV/Å; the net force of Ξ (zero up to
    rounding) is removed first."""
    xi = np.asarray(xi, dtype=float).reshape(-1, 3)
    return -solver.solve(xi - xi.mean(axis=0))


def mode_coefficients(xi: np.ndarray, eigenvalues: np.ndarray, vectors: np.ndarray, masses: np.ndarray):
    """c_l = (v_l · M^{-1/2} Ξ) / ω_l² (n_modes,) Å·amu^{1/2} per unit strain, for the mass-weighted
    modes ``vectors`` (3N, n_modes) of eigenvalues ω² (n_modes,) eV/(Å²·amu); masses (N,) amu."""
    scaled = np.asarray(xi, dtype=float).reshape(-1) / np.repeat(np.sqrt(masses), 3)
    return (vectors.T @ scaled) / eigenvalues


def low_mode_response(xi, eigenvalues, vectors, masses) -> np.ndarray:
    """The part of u carried by the given modes: −M^{-1/2} Σ_l c_l v_l, (N,3) Å per unit strain."""
    c = mode_coefficients(xi, eigenvalues, vectors, masses)
    return -(vectors @ c / np.repeat(np.sqrt(masses), 3)).reshape(-1, 3)


def mode_drive(xi, eigenvalues, vectors, masses) -> np.ndarray:
    """Σ_l c_l² |(M^{-1/2} v_l)_i|² (N,) Å² per unit strain²: each given mode's share of atom i,
    weighted by how strongly the shear drives it (|u_low,i|² without the cross terms)."""
    c = mode_coefficients(xi, eigenvalues, vectors, masses)
    amplitude = (vectors / np.repeat(np.sqrt(masses), 3)[:, None]).reshape(-1, 3, vectors.shape[1])
    return np.einsum("l,ial->i", c**2, amplitude**2)


def response_features(u: np.ndarray, low_u: np.ndarray, drive: np.ndarray) -> np.ndarray:
    """(N, 3): |u_i| Å, |u_low,i| Å (per unit strain) and the mode drive Å² (per unit strain²),
    the columns ``kernels.features.RESPONSE_NAMES``."""
    return np.stack([np.linalg.norm(u, axis=1), np.linalg.norm(low_u, axis=1), drive], axis=1)


def at_rest(pot, positions, cell, types, n_modes: int, eigensolver: str, timings: dict) -> tuple:
    """What every direction of a specimen shares: (masses (N,) amu, the ``n_modes`` lowest eigenvalues
    (n_modes,) eV/(Å²·amu) and mass-weighted modes (3N, n_modes) of its dynamical matrix, a
    HessianSolver) from one analytic Hessian; the seconds of each step into ``timings`` (hessian_s,
    low_modes_s, factorisation_s). types (N,) 1-based ints."""
    masses = pot.masses[types - 1]  # g/mol, from the potential file
    t = time.perf_counter()
    h = eam.hessian(pot, positions, cell, types)
    timings["hessian_s"] = time.perf_counter() - t
    t = time.perf_counter()
    eigenvalues, vectors = modes.low_modes(modes.dynamical_matrix(h, masses), n_modes, eigensolver)
    timings["low_modes_s"] = time.perf_counter() - t
    t = time.perf_counter()
    solver = HessianSolver(h, masses)
    timings["factorisation_s"] = time.perf_counter() - t
    return masses, eigenvalues, vectors, solver


def specimen_response(pot, positions, cell, types, directions, n_modes: int, eigensolver: str = "auto",
                      timings: dict | None = None, progress=None) -> np.ndarray:
    """The response features of one specimen for each shear direction: (len(directions), N, 3), the
    columns of ``response_features``. One Hessian, its ``n_modes`` lowest mass-weighted modes
    (``kernels.modes.low_modes`` with ``eigensolver``) and one factorisation serve every direction.

    pot EamFs; positions (N,3) Å; cell (3,3) Å; types (N,) 1-based. ``timings``, if given, receives
    the seconds of each step: hessian_s, low_modes_s, factorisation_s and per_direction_s (a list);
    ``progress(k, direction)`` is called before each direction.
    """
    timings = {} if timings is None else timings
    types = np.asarray(types).astype(int)
    masses, eigenvalues, vectors, solver = at_rest(pot, positions, cell, types, n_modes, eigensolver, timings)
    timings["per_direction_s"] = []
    out = np.empty((len(directions), len(types), 3))
    for k, d in enumerate(directions):
        if progress is not None:
            progress(k, d)
        t = time.perf_counter()
        xi = force_mismatch(pot, positions, cell, types, d)
        out[k] = response_features(response(solver, xi), low_mode_response(xi, eigenvalues, vectors, masses),
                                   mode_drive(xi, eigenvalues, vectors, masses))
        timings["per_direction_s"].append(time.perf_counter() - t)
    return out
