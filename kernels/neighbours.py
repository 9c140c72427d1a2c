"""Periodic neighbour pairs in a LAMMPS triclinic box.

``cell`` is (3, 3) with rows the edge vectors a=(lx,0,0), b=(xy,ly,0), c=(xz,yz,lz) in Å;
a position is r = origin + s @ cell with fractional s. Positions may carry any integer image.
"""
from __future__ import annotations

import itertools

import numpy as np
from scipy.spatial import cKDTree

_SHIFTS = np.array(list(itertools.product((-1, 0, 1), repeat=3)), dtype=float)  # (27, 3)


def wrap(positions: np.ndarray, cell: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Positions (N,3) Å mapped into the periodic cell (cell (3,3) rows a, b, c; origin (3,) Å)."""
    s = (positions - origin) @ np.linalg.inv(cell)
    s -= np.floor(s)
    return origin + s @ cell


def perpendicular_widths(cell):
    """Distance between opposite faces of the cell along each fractional axis. cell (3,3) Å -> (3,) Å."""
    cell = np.asarray(cell, dtype=float)
    volume = abs(np.linalg.det(cell))
    areas = np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)  # |b×c|, |c×a|, |a×b|
    return volume / areas


def neighbour_pairs(positions, cell, cutoff):
    """Ordered pairs of atoms closer than `cutoff` under periodic boundaries in a triclinic box.

    positions (N,3) Å, cell (3,3) rows a,b,c (Å), cutoff Å.
    Returns i (P,) int64, j (P,) int64, d (P,3) float64 with d = r_j - r_i for the periodic image of j
    nearest to i (|d| < cutoff); both (i,j) and (j,i) appear; never i == j; sorted by i then j.
    Raises ValueError if cutoff >= half the smallest perpendicular width of the cell (minimum image
    would be ambiguous).
    """
    positions = np.asarray(positions, dtype=float).reshape(-1, 3)
    cell = np.asarray(cell, dtype=float)
    widths = perpendicular_widths(cell)
    if not cutoff < 0.5 * widths.min():
        raise ValueError(f"cutoff {cutoff} Å is not below half the smallest cell width {widths.min():.4g} Å")

    s = positions @ np.linalg.inv(cell)
    s -= np.floor(s)                                                   # wrapped into [0, 1]
    margin = cutoff / widths                                           # (3,) fractional, < 0.5
    # allowed[n, k, m]: shift m-1 along axis k yields an image within `cutoff` of the cell.
    allowed = np.stack([s >= 1.0 - margin, np.ones_like(s, dtype=bool), s <= margin], axis=-1)
    keep = allowed[:, np.arange(3), (_SHIFTS + 1).astype(int)].all(axis=-1)   # (N, 27)
    owner, shift = np.nonzero(keep)                                    # ghosts (and originals, shift 0)
    images = (s[owner] + _SHIFTS[shift]) @ cell

    inside = s @ cell
    found = cKDTree(inside).sparse_distance_matrix(cKDTree(images), cutoff, output_type="ndarray")
    i, j = found["i"].astype(np.int64), owner[found["j"]].astype(np.int64)
    d = images[found["j"]] - inside[i]
    ok = (i != j) & (np.einsum("pk,pk->p", d, d) < cutoff * cutoff)
    i, j, d = i[ok], j[ok], d[ok]
    order = np.lexsort((j, i))
    return i[order], j[order], d[order]


def bond_vectors(positions, cell, i, j):
    """r_j - r_i (P, 3) Å of the pairs (i (P,), j (P,)) to the periodic image of j nearest to i, in
    any box, tilted ones included (the nearest of the 27 images around the rounded fractional
    difference). positions (N, 3) Å, cell (3, 3) rows a, b, c (Å)."""
    cell = np.asarray(cell, dtype=float)
    s = np.asarray(positions, dtype=float) @ np.linalg.inv(cell)
    ds = s[j] - s[i]
    ds -= np.round(ds)
    candidates = (ds[:, None, :] + _SHIFTS[None]) @ cell                      # (P, 27, 3)
    nearest = np.argmin(np.einsum("pkc,pkc->pk", candidates, candidates), axis=1)
    return candidates[np.arange(len(ds)), nearest]
