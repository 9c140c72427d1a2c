"""Local yield stress (Patinet, Vandembroucq & Falk, PRL 117, 045501 (2016); in 3D Barbot et al.,
PRE 97, 033001 (2018)): the geometry and the reading of one region's shear, no LAMMPS here.

A region is the sphere of radius ``radius_A`` around a centre of a regular grid; its atoms are
sheared quasi-statically (AQS) in the direction and sign of the applied shear while every other atom
follows the affine deformation (frozen in scaled coordinates). τ(γ) is the region's stress resolved
on that shear (GPa); τ_0 = τ(0), τ_c the last τ before the first plastic drop, and Δτ_c = τ_c − τ_0
the residual strength: where it is low, the glass yields first. The first plastic event is the first
departure from the region's elastic response (``first_event``), located to a fraction of the step
by re-shearing the last elastic step in finer steps (``jobs.lys``). The program carries only the atoms
within ``radius_A + shell_A`` of the centre (all of them in a small box): with a shell two
potential cutoffs wide, the forces on the region's atoms are those of the whole glass (an eam/fs
force on atom i reads the density of each neighbour j, which reads j's neighbours).
"""
from __future__ import annotations

import numpy as np

from kernels import frames


def grid_shape(cell: np.ndarray, spacing_A: float) -> tuple[int, int, int]:
    """Regions along a, b, c of an orthogonal cell (3, 3) Å: about one per ``spacing_A``, at least one."""
    a, b, c = (max(1, int(round(np.linalg.norm(cell[k]) / spacing_A))) for k in range(3))
    return a, b, c


def region_centres(cell: np.ndarray, origin: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """(G, 3) Å: centres at fractional ((i, j, k) + 1/2) / shape, in C order (k fastest)."""
    idx = np.stack(np.meshgrid(*(np.arange(n) for n in shape), indexing="ij"), axis=-1).reshape(-1, 3)
    return origin + ((idx + 0.5) / np.array(shape)) @ cell


def periodic_centroid(frac: np.ndarray) -> np.ndarray:
    """(3,) fractional centroid of positions (N, 3) that lie within half a box of the first one,
    periodic images resolved (a cluster such as an STZ)."""
    offset = np.asarray(frac) - frac[0]
    return frac[0] + (offset - np.round(offset)).mean(0)


def distances(positions: np.ndarray, cell: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """(N,) Å from ``centre`` to each atom's nearest periodic image (orthogonal or tilted cell)."""
    from kernels.neighbours import bond_vectors

    both = np.vstack([centre[None], positions])
    return np.linalg.norm(bond_vectors(both, cell, np.zeros(len(positions), int), np.arange(1, len(both))), axis=1)


def resolved(stress_voigt: np.ndarray, direction: str) -> np.ndarray:
    """Stress (..., 6) GPa, Voigt xx yy zz yz xz xy -> its component on the shear ``direction`` (...),
    positive when it resists the applied shear (the sign of '-xy' and the like taken into account)."""
    disp, grad, sign = frames.shear_axes(direction)
    voigt = {frozenset((1, 2)): 3, frozenset((0, 2)): 4, frozenset((0, 1)): 5}[frozenset((disp, grad))]
    return sign * np.asarray(stress_voigt)[..., voigt]


def first_event(tau: np.ndarray, tol_GPa: float, first_increment: float | None = None) -> int | None:
    """The step k of τ_c: the last before the first plastic event, or None if τ (S,) GPa has none.

    An event is a departure from the region's elastic response: at step k + 1 the stress falls short
    of its linear extrapolation from steps k − 1 and k by more than ``tol_GPa``,
    τ[k+1] < 2 τ[k] − τ[k−1] − tol_GPa, so a small event that releases less than one step's
    elastic increment (τ still rising) is caught, where a plain fall (τ[k+1] < τ[k]) is not. At
    k = 0 the expected increment is ``first_increment`` (GPa; None: 0, a fall). Measured at 10,000
    atoms with steps of 1e-3 (docs/lys.md): elastic increments 0.03–0.04 GPa, the smooth curvature of
    the elastic branch and the minimiser's noise 1e-4–3e-4 GPa."""
    tau = np.asarray(tau, dtype=float)
    if len(tau) < 2:
        return None
    expected = np.empty(len(tau) - 1)
    expected[0] = tau[0] + (0.0 if first_increment is None else first_increment)
    expected[1:] = 2 * tau[1:-1] - tau[:-2]
    events = np.flatnonzero(tau[1:] < expected - tol_GPa)
    return int(events[0]) if len(events) else None


def region_holding(position: np.ndarray, centres: np.ndarray, cell: np.ndarray, radius_A: float) -> int | None:
    """Index of the region (centres (G, 3) Å) whose sphere of ``radius_A`` holds ``position`` (3,) Å,
    the nearest if several do, periodic; None if none does (a grid cell's corners lie outside every
    sphere when the radius is less than half the cell's diagonal)."""
    d = distances(centres, cell, np.asarray(position, dtype=float))
    nearest = int(np.argmin(d))
    return nearest if d[nearest] < radius_A else None


def interpolate(values: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Per-region values on the periodic grid (shape (na, nb, nc), centres at (i + 1/2)/n) at
    fractional positions (N, 3): trilinear between the eight surrounding centres, periodic."""
    shape = np.array(values.shape)
    u = (np.asarray(frac) % 1.0) * shape - 0.5          # grid coordinates of each point
    lo = np.floor(u).astype(int)
    w = u - lo
    out = np.zeros(len(u))
    for corner in np.ndindex(2, 2, 2):
        c = np.array(corner)
        weight = np.prod(np.where(c == 1, w, 1 - w), axis=1)
        i, j, k = ((lo + c) % shape).T
        out += weight * values[i, j, k]
    return out


def gather(n_regions: int, batches) -> np.ndarray:
    """(n_regions,) per-region values (GPa; NaN where a region did not yield) from batches of
    (region indices (B,), values (B,)) that together hold every region; ValueError naming the
    regions none holds."""
    values, seen = np.full(n_regions, np.nan), np.zeros(n_regions, bool)
    for region, value in batches:
        values[region], seen[region] = value, True
    if not seen.all():
        raise ValueError(f"the local yield stress of regions {np.flatnonzero(~seen).tolist()} is missing")
    return values


def atom_values(region_values: np.ndarray, shape: tuple, positions: np.ndarray, cell: np.ndarray,
                origin: np.ndarray) -> np.ndarray:
    """(N,) per-atom values of per-region ones (G,), in ``region_centres``' order, on the grid
    ``shape``: a region without a value (NaN: it did not yield by the maximum strain) counts as the
    largest that has one (a lower bound; 0 if none has), then ``interpolate`` at the atoms
    (positions (N, 3) Å in the cell (3, 3) Å from ``origin`` (3,) Å)."""
    values = np.array(region_values, dtype=float)
    known = np.isfinite(values)
    values[~known] = values[known].max() if known.any() else 0.0
    return interpolate(values.reshape(shape), (positions - origin) @ np.linalg.inv(cell))
