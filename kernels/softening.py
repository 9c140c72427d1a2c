"""Mode softening under load: where, and at what strain, the first AQS instability is predicted to fire,
from the unstrained glass alone (Maloney & Lemaître, PRE 74, 016118 (2006): the first plastic event of
athermal quasi-static shear is a saddle-node bifurcation, the lowest eigenvalue of the dynamical matrix
reaching zero along the loading path, its mode the shear transformation zone).

Along the quasi-static path x(γ) = F(γ)x₀ + γu (u = −H⁺Ξ the linear non-affine response,
``kernels.response``; the cell deformed by the same F(γ)) the dynamical matrix is, to first order,
D(γ) = D₀ + γD′ with D′ = dD/dγ (``path_derivative``). In the subspace of the k lowest modes Ψ, Λ of
D₀ (mass-weighted, eV/(Å²·amu)), M(γ) = diag(Λ) + γB with B = ΨᵀD′Ψ, and M(γ) = Λ^½(I + γC)Λ^½ with
C = Λ^-½ B Λ^-½: its lowest eigenvalue first crosses zero at

    γ* = −1/μ_min(C)   (∞ when μ_min ≥ 0),

and the predicted STZ is ψ* = Ψ Λ^-½ w_min, normalised (``subspace_softening``). Per atom the score is
|ψ*_i|² (the three components summed: a participation of atom i in the predicted unstable mode). The
diagonal variant neglects the coupling of modes by the load: γ_k = λ_k / max(0, −B_kk), score
Σ_k |ψ_k,i|²/γ_k (``mode_crossings``). Both change with the sign of the shear (u and D′ are odd in it:
D′ of '-xy' is −D′ of 'xy'), which the participation fraction and |u| cannot.

D′ is a third derivative of the energy. The shipped eam/fs tables carry 10 digits on a 7.6e-4 Å grid, so
their knot-scale third derivative is rounding noise (a central difference of the exact-table Hessian
changes by 31-49 % when δ halves; shared/docs/mode-softening-first-look.md). ``smooth_potential`` refits
every table by a least-squares quintic spline (knots every ``every`` table points over the range a glass
visits) and writes it back as LAMMPS-layout cubic Hermite pieces from the quintic's values and slopes:
D′ is taken on that representation only; D₀, the modes and u stay on the exact tables.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import scipy.sparse as sp

from kernels import eam, modes
from kernels.response import sheared

SMOOTH_EVERY = 25       # table points per interior knot of the smoothing quintic (radial tables; F(ρ): half)
# radial tables are refitted from here to the cutoff (closer pairs keep the exact tables): past the kink
# where CuZr_mm.eam.fs joins its short-range repulsion onto r·φ (1.795 Å for Cu-Cu and Cu-Zr, 2.305 Å for
# Zr-Zr), which no smooth fit follows; far below the closest pairs of the glass (about 2.3, 2.6, 2.9 Å)
SMOOTH_R_MIN_A = {("Cu", "Cu"): 1.8, ("Cu", "Zr"): 2.0, ("Zr", "Zr"): 2.5}
SMOOTH_R_MIN_OTHER_A = 1.5
SMOOTH_RHO_MIN = 1.0    # embedding tables from here up (F(ρ) ~ −√ρ near 0: not smooth enough to fit)
PATH_STEP = 1e-4        # δ of the central difference of D along the path (strain)


def _smooth_table(table: np.ndarray, exact: np.ndarray, spacing: float, lowest: float, every: int) -> np.ndarray:
    """The 7 LAMMPS coefficients (n, 7) of one table (n,) on the grid n·spacing, whose exact pieces are
    ``exact`` (n, 7): from the knot at or above ``lowest`` a least-squares quintic spline through the table
    (knots every ``every`` points), as cubic Hermite pieces of its values and slopes; below it ``exact``."""
    from scipy.interpolate import make_lsq_spline

    n = len(table)
    start = int(math.ceil(lowest / spacing))
    if n - start < 4 * every:
        return exact
    x = np.arange(start, n) * spacing
    knots = np.r_[[x[0]] * 6, x[every:-every:every], [x[-1]] * 6]
    spline = make_lsq_spline(x, table[start:], knots, k=5)
    values, slopes = np.array(table, dtype=float), np.zeros(n)
    values[start:] = spline(x)
    slopes[start:] = spline.derivative()(x) * spacing  # per knot spacing, as the layout wants
    return np.concatenate([exact[:start], eam.cubic_coefficients(values, slopes, spacing)[start:]])


def smooth_potential(pot: eam.EamFs, every: int = SMOOTH_EVERY) -> eam.EamFs:
    """``pot`` with every table refitted smoothly (module docstring; F(ρ) with knots twice as dense): the
    same grids and lookup, for Hessians whose derivative along a path is physics, not the tables' rounding."""
    elements = range(len(pot.elements))

    def radial(tables, exact):
        def r_min(i, j):
            return SMOOTH_R_MIN_A.get(tuple(sorted((pot.elements[i], pot.elements[j]))), SMOOTH_R_MIN_OTHER_A)

        return np.stack([np.stack([_smooth_table(tables[i, j], exact[i, j], pot.dr, r_min(i, j), every)
                                   for j in elements]) for i in elements])

    embedding = np.stack([_smooth_table(pot.frho[i], pot.frho_spline[i], pot.drho, SMOOTH_RHO_MIN, every // 2)
                          for i in elements])
    return dataclasses.replace(pot, frho_spline=embedding, rhor_spline=radial(pot.rhor, pot.rhor_spline),
                               z2r_spline=radial(pot.z2r, pot.z2r_spline))


def path_derivative(pot: eam.EamFs, positions, cell, types, direction: str, u, delta: float = PATH_STEP):
    """D′ = dD/dγ (3N, 3N) sparse, eV/(Å²·amu) per unit strain, along x(γ) = F(γ)x₀ + γu in ``direction``:
    the central difference [D(x(δ)) − D(x(−δ))]/(2δ) of the analytic Hessian of ``pot`` (a smoothed one:
    ``smooth_potential``). positions (N,3) Å, cell (3,3) Å, types (N,) 1-based, u (N,3) Å per unit strain."""
    types = np.asarray(types).astype(int)
    masses = pot.masses[types - 1]

    def dynamical(gamma):
        x, c = sheared(positions, cell, direction, gamma)
        return modes.dynamical_matrix(eam.hessian(pot, x + gamma * np.asarray(u), c, types), masses)

    return sp.csr_matrix((dynamical(delta) - dynamical(-delta)) / (2.0 * delta))


def subspace_softening(eigenvalues, vectors, b) -> tuple[float, np.ndarray, np.ndarray]:
    """The first crossing of M(γ) = diag(Λ) + γB: (γ*, ψ* (3N,) unit, mass-weighted, μ (k,) the eigenvalues
    of C ascending). eigenvalues Λ (k,) > 0 eV/(Å²·amu), vectors Ψ (3N, k), b = ΨᵀD′Ψ (k, k). γ* is ∞
    when C has no negative eigenvalue (no crossing at any positive strain); ψ* is then C's lowest mode."""
    scale = 1.0 / np.sqrt(np.asarray(eigenvalues, dtype=float))
    c = scale[:, None] * 0.5 * (b + b.T) * scale[None, :]
    mu, w = np.linalg.eigh(c)
    gamma = -1.0 / mu[0] if mu[0] < 0 else math.inf
    psi = vectors @ (scale * w[:, 0])
    return gamma, psi / np.linalg.norm(psi), mu


def mode_crossings(eigenvalues, b) -> np.ndarray:
    """Each mode's own crossing strain, the coupling by the load neglected: γ_k = λ_k / max(0, −B_kk)
    (k,), ∞ where the load stiffens the mode."""
    softening = -np.diag(b)
    return np.divide(eigenvalues, softening, out=np.full(len(softening), math.inf), where=softening > 0)


def crossing_score(vectors, crossings) -> np.ndarray:
    """Σ_k |ψ_k,i|²/γ_k (N,) of the modes ``vectors`` (3N, k), normalised to sum 1 (all zero when no mode
    crosses, every γ_k ∞): the diagonal variant."""
    score = (vectors ** 2).reshape(-1, 3, vectors.shape[1]).sum(axis=1) @ (1.0 / np.asarray(crossings))
    total = score.sum()
    return score / total if total > 0 else score
