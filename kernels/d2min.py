"""Falk–Langer non-affine displacement D²min (Falk & Langer, Phys. Rev. E 57, 7192 (1998))."""
from __future__ import annotations

import numpy as np

from kernels.neighbours import neighbour_pairs

_RANK_TOLERANCE = 1e-10  # eigenvalues of Y below this fraction of its largest are treated as zero


def d2min(ref_positions, ref_cell, positions, cell, cutoff):
    """Falk–Langer non-affine displacement D²min of every atom between a reference frame and a later one
    (Falk & Langer, Phys. Rev. E 57, 7192 (1998)).

    Neighbours j of atom i are those within `cutoff` in the reference frame (minimum image in ref_cell).
    D²min_i = min_J Σ_j |d_ji(now) - J d_ji(ref)|², a SUM over neighbours (not a mean), as in the study
    and matscipy. Each pair keeps its reference periodic image in the current frame (assumes neighbours
    move by less than half a box relative to each other).
    ref_positions, positions (N,3) Å (same atom order; any wrapping), ref_cell, cell (3,3) rows a,b,c Å,
    cutoff Å. Returns (N,) float64 in Å². Atoms with no neighbours get 0; with fewer than three
    non-coplanar neighbours J is the minimum-norm least-squares fit (pseudo-inverse of Y).
    """
    ref_cell = np.asarray(ref_cell, dtype=float)
    cell = np.asarray(cell, dtype=float)
    ref_positions = np.asarray(ref_positions, dtype=float).reshape(-1, 3)
    positions = np.asarray(positions, dtype=float).reshape(-1, 3)
    n_atoms = len(ref_positions)

    i, j, d_ref = neighbour_pairs(ref_positions, ref_cell, cutoff)
    ds = positions @ np.linalg.inv(cell) - ref_positions @ np.linalg.inv(ref_cell)   # (N,3) + images
    relative = ds[j] - ds[i]
    relative -= np.round(relative)                                    # drop image changes
    d_now = (d_ref @ np.linalg.inv(ref_cell) + relative) @ cell       # (P,3) Å

    x = _sum_per_atom(d_now[:, :, None] * d_ref[:, None, :], i, n_atoms)   # (N,3,3) Å²
    y = _sum_per_atom(d_ref[:, :, None] * d_ref[:, None, :], i, n_atoms)
    deformation = x @ _pseudo_inverse_psd(y)                          # J_i = X_i Y_i⁺
    residual = d_now - np.einsum("pab,pb->pa", deformation[i], d_ref)
    return np.bincount(i, weights=np.einsum("pa,pa->p", residual, residual), minlength=n_atoms)


def _sum_per_atom(values, i, n_atoms):
    """Σ over pairs of values (P,3,3) grouped by atom index i (P,) -> (n_atoms,3,3)."""
    flat = values.reshape(len(values), 9)
    return np.stack([np.bincount(i, weights=flat[:, k], minlength=n_atoms) for k in range(9)],
                    axis=-1).reshape(n_atoms, 3, 3)


def _pseudo_inverse_psd(y):
    """Batched pseudo-inverse of symmetric positive semi-definite matrices y (N,3,3)."""
    eigenvalues, vectors = np.linalg.eigh(y)
    keep = eigenvalues > _RANK_TOLERANCE * eigenvalues[:, -1:]
    inverse = np.divide(1.0, eigenvalues, out=np.zeros_like(eigenvalues), where=keep)
    return (vectors * inverse[:, None, :]) @ vectors.swapaxes(1, 2)
