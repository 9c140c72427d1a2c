"""Mass-weighted dynamical matrix, its lowest vibrational modes, and per-atom participation fractions.

Units: with a Hessian in eV/Å² and masses in g/mol (= amu), the dynamical matrix and its eigenvalues
λ = ω² are in eV/(Å²·amu); `eigenvalue_to_thz` converts to ordinary frequency ν = ω/2π in THz.
Row/column 3i+α is atom i, Cartesian α (the layout of `kernels.eam.hessian`).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.linalg.blas
import scipy.linalg.lapack
import scipy.sparse as sp
import scipy.sparse.linalg as spla

# 1 eV/(Å²·amu) in s⁻² (CODATA 2018: eV = 1.602176634e-19 J, amu = 1.66053906660e-27 kg)
_EV_PER_A2_AMU_IN_S2 = 1.602176634e-19 / (1e-20 * 1.66053906660e-27)
THZ_PER_SQRT_EIGENVALUE = np.sqrt(_EV_PER_A2_AMU_IN_S2) / (2.0 * np.pi) / 1e12   # ≈ 15.633 THz

DENSE_MAX_DOF = 1500          # "auto": full dense LAPACK up to this many degrees of freedom,
SHIFT_INVERT_MAX_DOF = 45000  # then dense-Cholesky shift-invert up to this many, sparse LU above
N_TRANSLATIONS = 3


def dynamical_matrix(h, masses_per_atom):
    """D = M^{-1/2} H M^{-1/2}: csr (3N,3N) in eV/(Å²·amu).

    h (3N,3N) sparse or dense Hessian in eV/Å²; masses_per_atom (N,) in g/mol. Same sparsity as h.
    Equals LAMMPS `dynamical_matrix … regular` (which also divides by √(m_i m_j), no unit conversion).
    """
    h = sp.csr_matrix(h, dtype=float, copy=True)
    masses = np.asarray(masses_per_atom, dtype=float).reshape(-1)
    if h.shape != (3 * len(masses), 3 * len(masses)):
        raise ValueError(f"Hessian {h.shape} does not match {len(masses)} masses")
    if not np.all(masses > 0):
        raise ValueError("masses must be positive")
    scale = np.repeat(1.0 / np.sqrt(masses), 3)
    rows = np.repeat(np.arange(h.shape[0]), np.diff(h.indptr))
    h.data *= scale[rows] * scale[h.indices]
    return h


def eigenvalue_to_thz(eigenvalues):
    """Frequency ν = ω/2π in THz of eigenvalues λ = ω² in eV/(Å²·amu): ν = 15.633·√λ THz
    (1 eV/(Å²·amu) = 9.6485e27 s⁻²); negative λ (unstable modes) give −15.633·√|λ|."""
    eigenvalues = np.asarray(eigenvalues, dtype=float)
    return np.sign(eigenvalues) * np.sqrt(np.abs(eigenvalues)) * THZ_PER_SQRT_EIGENVALUE


def n_low_modes(n_atoms, fraction=0.01):
    """Number of modes in the lowest `fraction` of the 3N−3 non-zero modes (at least 1)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError("fraction must lie in (0, 1]")
    n_nonzero = 3 * int(n_atoms) - N_TRANSLATIONS
    if n_nonzero < 1:
        raise ValueError("need at least 2 atoms")
    return int(min(n_nonzero, max(1, round(fraction * n_nonzero))))


def low_modes(d, n_modes, method="auto"):
    """The `n_modes` lowest vibrational modes of a dynamical matrix, the 3 translations left out.

    d (3N,3N) symmetric, sparse or dense, eV/(Å²·amu), of a periodic system (so it has exactly three
    zero modes, the uniform translations). Returns eigenvalues (n_modes,) ascending in eV/(Å²·amu) and
    vectors (3N, n_modes), columns normalised to 1. The three modes of smallest |λ| among the
    n_modes+3 lowest are taken as the translations (exact null vectors of a translation-invariant D),
    so unstable modes (λ < 0, an unrelaxed configuration) are kept. No entry of d is ever dropped.

    method:
      "dense"        LAPACK on the dense matrix (scipy.linalg.eigh, MRRR, only the wanted pairs);
                     exact and robust, O((3N)³) with a large constant.
      "shift-invert" dense Cholesky factor of D − σI (σ slightly below the spectrum) and block Krylov
                     Rayleigh–Ritz on (D − σI)⁻¹ with soft locking, until every wanted residual
                     ‖D e − λ e‖ ≤ 1e-10 ‖D‖∞; all BLAS-3, the fastest CPU route measured from
                     ~500 atoms up (one dense (3N)² array: 1.2 GB at 4,000 atoms).
      "sparse"       ARPACK shift-invert (scipy.sparse.linalg.eigsh) about the same σ with a sparse
                     LU (SuperLU) of D − σI: never densifies, but the fill-in makes it slower;
                     meant for minimised configurations (no fallback for modes below σ).
      "lobpcg"       scipy.sparse.linalg.lobpcg, matrix-free, unpreconditioned (slow on these
                     ill-conditioned matrices; for comparison).
      "torch"        torch.linalg.eigh, dense float64, on CUDA when available (else CPU).
      "auto"         torch with CUDA; else dense for 3N ≤ 1500; else shift-invert for 3N ≤ 45000
                     (a 16 GB factor); else sparse.
    """
    shape = d.shape
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError("d must be square")
    n_dof = shape[0]
    n_want = int(n_modes) + N_TRANSLATIONS
    if n_modes < 1 or n_want > n_dof:
        raise ValueError(f"n_modes must lie in 1..{n_dof - N_TRANSLATIONS}")
    solvers = {"dense": _dense, "shift-invert": _block_shift_invert, "sparse": _arpack_shift_invert,
               "lobpcg": _lobpcg, "torch": _torch}
    if method == "auto":
        method = _auto_method(n_dof)
    if method not in solvers:
        raise ValueError(f"unknown method {method!r}: one of auto, {', '.join(solvers)}")
    values, vectors = solvers[method](d, n_want)
    translations = np.argsort(np.abs(values), kind="stable")[:N_TRANSLATIONS]
    keep = np.setdiff1d(np.arange(len(values)), translations)
    keep = keep[np.argsort(values[keep], kind="stable")][:n_modes]
    vectors = vectors[:, keep]
    return values[keep], vectors / np.linalg.norm(vectors, axis=0)


def participation_fractions(vectors):
    """Participation fraction of every atom in a set of modes: (N,), non-negative, summing to 1.

    p_i = (1/k) Σ_l |e_{l,i}|², over the k columns e_l of vectors (3N,k) (each normalised to 1 here),
    |e_{l,i}|² summing the three Cartesian components of atom i: the participation fraction of atom i
    in the low-frequency modes of Ding, Patinet, Falk, Cheng & Ma, PNAS 111, 14052 (2014), who take the
    lowest 1 % of the normal modes (see `n_low_modes`).
    """
    vectors = np.asarray(vectors, dtype=float)
    if vectors.ndim == 1:
        vectors = vectors[:, None]
    if vectors.shape[0] % 3:
        raise ValueError("vectors must have 3N rows")
    vectors = vectors / np.linalg.norm(vectors, axis=0)
    per_atom = (vectors ** 2).reshape(-1, 3, vectors.shape[1]).sum(axis=1)   # (N, k)
    return per_atom.mean(axis=1)


def _auto_method(n_dof):
    try:
        import torch
        if torch.cuda.is_available():
            return "torch"
    except ImportError:
        pass
    if n_dof <= DENSE_MAX_DOF:
        return "dense"
    return "shift-invert" if n_dof <= SHIFT_INVERT_MAX_DOF else "sparse"


def _as_dense(d):
    return d.toarray() if sp.issparse(d) else np.array(d, dtype=float)


def _dense(d, n_want):
    return scipy.linalg.eigh(_as_dense(d), subset_by_index=[0, n_want - 1], driver="evr",
                             overwrite_a=True, check_finite=False)


def _shift(d):
    """A small negative shift: −1e-3 × the mean |diagonal| (below the lowest non-zero modes)."""
    diagonal = d.diagonal() if sp.issparse(d) else np.diag(d)
    return -1e-3 * float(np.mean(np.abs(diagonal)))


def _lowest_estimate(d):
    """A rough lowest eigenvalue (Lanczos), for a shift below an unstable spectrum."""
    return float(spla.eigsh(d, k=1, which="SA", tol=1e-4, return_eigenvectors=False)[0])


def _shifted_cholesky(d):
    """Cholesky factor L of D − σI with σ < 0 below the spectrum, in ONE dense Fortran array: the
    lower triangle and diagonal hold L, the strict upper triangle still holds D (LAPACK potrf, clean=0). If D has modes
    below the first σ (unrelaxed configuration) σ is lowered below a Lanczos estimate of the lowest
    eigenvalue, then below the Gershgorin bound. Returns (array, σ)."""
    sigma = _shift(d)
    margin = abs(sigma)
    lower_bounds = [lambda: sigma,
                    lambda: 1.05 * _lowest_estimate(d) - margin,
                    lambda: _gershgorin_lower(d) - margin]
    for bound in lower_bounds:
        sigma = min(sigma, bound())
        shifted = d.toarray(order="F") if sp.issparse(d) else np.array(d, dtype=float, order="F")
        shifted.flat[::len(shifted) + 1] -= sigma
        factor, info = scipy.linalg.lapack.dpotrf(shifted, lower=1, clean=0, overwrite_a=1)
        if info == 0:
            return factor, sigma
        if info < 0:
            raise ValueError(f"dpotrf: illegal argument {-info}")
    raise np.linalg.LinAlgError("could not shift the dynamical matrix below its spectrum")


def _gershgorin_lower(d):
    d = sp.csr_matrix(d)
    diagonal = d.diagonal()
    return float(np.min(2.0 * diagonal - abs(d).sum(axis=1).A1))


def _block_shift_invert(d, n_want, tol=1e-10, depth=6, max_iterations=50, seed=0):
    """Block Krylov Rayleigh–Ritz on S = (D − σI)⁻¹ from a dense Cholesky factor (see low_modes).

    Each iteration spans the current Ritz block x (n_want + guard columns) and S^j y, j = 1…depth, where
    y holds the columns of x not yet converged (soft locking), orthonormalised block by block; it takes
    the Ritz pairs of D in that space. Converged when every wanted residual ‖D e − θ e‖ ≤ tol ‖D‖∞.
    Memory: one dense (3N)² array.
    """
    n = d.shape[0]
    block = n_want + max(16, n_want // 2)
    if (depth + 1) * block >= n // 2:                  # small problem: the subspace is most of the space
        return _dense(d, n_want)
    norm = float(abs(d).sum(axis=1).max()) if sp.issparse(d) else float(np.abs(d).sum(axis=1).max())
    factor, _ = _shifted_cholesky(d)
    diagonal_fix = np.asarray(d.diagonal() if sp.issparse(d) else np.diag(d)) - np.diag(factor)

    def solve(x):                                      # S x
        out, info = scipy.linalg.lapack.dpotrs(factor, np.asfortranarray(x), lower=1)
        if info:
            raise ValueError(f"dpotrs: illegal argument {-info}")
        return out

    def apply(x):              # D x: the intact upper triangle of D − σI, its diagonal overwritten by L's
        return scipy.linalg.blas.dsymm(1.0, factor, np.asfortranarray(x), lower=0) + diagonal_fix[:, None] * x

    x = solve(np.random.default_rng(seed).standard_normal((n, block)))
    active = np.ones(block, dtype=bool)
    for _ in range(max_iterations):
        blocks = [_orthonormalise(x, np.empty((n, 0)))]
        level = x[:, active]
        for _ in range(depth):
            level = _orthonormalise(solve(level), np.hstack(blocks))
            if level.shape[1] == 0:
                break
            blocks.append(level)
        basis = np.hstack(blocks)
        applied = apply(basis)
        theta, ritz = np.linalg.eigh(basis.T @ applied)
        x = basis @ ritz[:, :block]
        residual = np.linalg.norm(applied @ ritz[:, :block] - x * theta[:block], axis=0)
        if residual[:n_want].max() <= tol * norm:
            return theta[:n_want], x[:, :n_want]
        active = residual > tol * norm
        active[n_want:] = True                         # the guard vectors always expand
    raise RuntimeError(f"shift-invert: no convergence in {max_iterations} iterations")


def _orthonormalise(w, previous, drop=1e-13):
    """An orthonormal basis of the part of span(w) orthogonal to the orthonormal columns of previous:
    projection then SVQB (Gram matrix eigenvectors, directions below drop × the largest left out),
    twice. Returns (n, ≤ w.shape[1])."""
    for _ in range(2):
        if previous.shape[1]:
            w = w - previous @ (previous.T @ w)
        scale = 1.0 / np.maximum(np.linalg.norm(w, axis=0), np.finfo(float).tiny)
        gram_values, gram_vectors = np.linalg.eigh((w.T @ w) * np.outer(scale, scale))
        keep = gram_values > drop * gram_values[-1]
        w = w @ (scale[:, None] * (gram_vectors[:, keep] / np.sqrt(gram_values[keep])))
    return w


def _arpack_shift_invert(d, n_want):
    d = sp.csc_matrix(d) if sp.issparse(d) else np.asarray(d, dtype=float)
    values, vectors = spla.eigsh(d, k=n_want, sigma=_shift(d), which="LM")
    order = np.argsort(values)
    return values[order], vectors[:, order]


def _lobpcg(d, n_want, tol=1e-9, maxiter=20000):
    d = sp.csr_matrix(d)
    start = np.random.default_rng(0).standard_normal((d.shape[0], n_want))
    values, vectors = spla.lobpcg(d, start, largest=False, tol=tol, maxiter=maxiter)
    order = np.argsort(values)
    return values[order], vectors[:, order]


def _torch(d, n_want):
    import torch
    device = "cuda" if torch.cuda.is_available() else "cpu"
    matrix = torch.from_numpy(_as_dense(d)).to(device=device, dtype=torch.float64)
    values, vectors = torch.linalg.eigh(matrix)
    return values[:n_want].cpu().numpy(), vectors[:, :n_want].cpu().numpy()
