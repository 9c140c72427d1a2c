"""Periodic Voronoi tessellation in a LAMMPS triclinic box (qhull via scipy), with Voronoi indices.

``cell`` is (3, 3) with rows the edge vectors a=(lx,0,0), b=(xy,ly,0), c=(xz,yz,lz) in Å;
a position is r = origin + s @ cell with fractional s. Positions may carry any integer image.

Method: the atoms are wrapped into the cell and surrounded by their periodic images within a
perpendicular ``margin`` of every cell face; qhull tessellates all points and the faces (ridges) of
the real atoms are kept, ghosts being mapped back to their atoms. The result is certified exact: every
vertex v of a real atom's cell must have its empty sphere (centre v, radius |v - r_i|) inside the padded
region, so no image left out could cut the cell; and the cell volumes must sum to the box volume.

Face-area threshold (``face_area_fraction``): a face of atom i's cell is dropped from i's Voronoi index
when its area is below ``face_area_fraction`` × the total surface area of i's cell. This is OVITO's
"relative face area threshold" (VoronoiAnalysisModifier.relative_face_threshold); the default 1 % is
a value used in many Cu-Zr metallic-glass studies to drop the tiny faces, born of thermal noise near
degenerate vertices, that would otherwise turn e.g. a <0,0,12,0> icosahedron into <0,1,10,2>. It does not affect
volumes. Because the
two cells sharing a face have different surface areas, the neighbour list keeps a face only when it is
kept in *both* cells' indices, so that the list stays symmetric (so #neighbours(i) <= sum(index[i]),
equal except for a face lying between the two cells' thresholds).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.spatial import Voronoi

from kernels.neighbours import perpendicular_widths

INDEX_EDGES = np.arange(3, 11)   # face edge counts for index columns 0..7: n3, n4, ..., n10


@dataclass(frozen=True)
class Tessellation:
    """Per-atom Voronoi cells and the Voronoi neighbour pairs.

    volume (N,) Å³; index (N, 8) int64 = <n3, n4, ..., n10>, the number of kept faces with 3..10 edges
    (column 7 counts faces with 10 *or more* edges); i, j (P,) int64 neighbours through a kept face,
    both directions, sorted by i then j; area (P,) Å² the area of that face. In a box so small that an
    atom touches several images of j (or its own image), (i, j) appears once per face.
    """
    volume: np.ndarray
    index: np.ndarray
    i: np.ndarray
    j: np.ndarray
    area: np.ndarray


def _ghosts(s, widths, margin):
    """Owners (M,) and fractional positions (M,3) of the atoms followed by their images within `margin`."""
    m = margin / widths                                          # (3,) fractional margin per axis
    k = np.ceil(m).astype(int)
    shifts = np.array(list(itertools.product(*(range(-n, n + 1) for n in k))), dtype=float)
    shifts = shifts[np.abs(shifts).sum(axis=1) > 0]              # (S, 3), the zero shift excluded
    t = s[:, None, :] + shifts[None, :, :]                       # (N, S, 3)
    keep = ((t >= -m) & (t <= 1.0 + m)).all(axis=-1)
    owner, shift = np.nonzero(keep)
    n = len(s)
    return (np.concatenate([np.arange(n), owner]),
            np.concatenate([s, s[owner] + shifts[shift]]))


def voronoi(positions, cell, face_area_fraction=0.01, margin=None):
    """Periodic Voronoi tessellation of atoms in a triclinic box.

    positions (N,3) Å (any periodic images); cell (3,3) rows a, b, c (Å).
    face_area_fraction: faces with area below this fraction × the total surface area of the cell they
    belong to are dropped from that cell's index and from the neighbour list (kept only if kept in both
    cells), never from the volume; 0 keeps every face (see the module docstring for the convention).
    margin: Å of periodic images padded around the cell; None picks 2.5 × (V/N)^(1/3) and grows it ×1.5
    until the result is certified exact; an explicit value that is too small raises ValueError.
    Returns a Tessellation (volume (N,) Å³, index (N,8), i, j (P,) int64, area (P,) Å²).
    """
    positions = np.asarray(positions, dtype=float).reshape(-1, 3)
    cell = np.asarray(cell, dtype=float)
    n = len(positions)
    box_volume = abs(np.linalg.det(cell))
    if n < 1:
        raise ValueError("need at least one atom")
    widths = perpendicular_widths(cell)
    auto = margin is None
    margin = 2.5 * (box_volume / n) ** (1.0 / 3.0) if auto else float(margin)
    s = positions @ np.linalg.inv(cell)
    s -= np.floor(s)
    for _ in range(6 if auto else 1):
        result = _tessellate(s, cell, widths, margin, face_area_fraction, box_volume)
        if isinstance(result, Tessellation):
            return result
        margin *= 1.5
    raise ValueError(f"Voronoi cells not certified exact with margin {margin / 1.5:.4g} Å ({result}); "
                     "use a larger margin")


def _tessellate(s, cell, widths, margin, fraction, box_volume):
    """One attempt with a given margin: a Tessellation, or a string saying why the margin is too small.

    Raises ValueError for coincident atoms or a volume sum off by more than 1e-6 (not a margin problem).
    """
    n = len(s)
    owner, sp = _ghosts(s, widths, margin)
    points = sp @ cell
    try:
        vor = Voronoi(points)
    except Exception as exc:                                     # scipy.spatial.QhullError
        raise ValueError(f"qhull failed on {len(points)} points: {exc}") from exc

    rp = vor.ridge_points                                        # (R, 2) generating points of each ridge
    real = rp < n
    sel = np.flatnonzero(real.any(axis=1))
    # Directed faces (a -> b) for every real endpoint a of a ridge.
    face_ridge = np.concatenate([sel[real[sel, 0]], sel[real[sel, 1]]])
    a = np.concatenate([rp[sel[real[sel, 0]], 0], rp[sel[real[sel, 1]], 1]])
    b = np.concatenate([rp[sel[real[sel, 0]], 1], rp[sel[real[sel, 1]], 0]])
    if (np.bincount(a, minlength=n) == 0).any():
        raise ValueError("an atom has no Voronoi cell: two atoms (or periodic images) at the same place?")

    # Ragged ridge vertex lists -> flat arrays for the selected ridges.
    counts_all = np.fromiter(map(len, vor.ridge_vertices), dtype=np.intp, count=len(rp))
    flat_all = np.fromiter(itertools.chain.from_iterable(vor.ridge_vertices), dtype=np.intp,
                           count=int(counts_all.sum()))
    start_all = np.concatenate([[0], np.cumsum(counts_all)[:-1]])
    counts = counts_all[sel]
    seg = np.repeat(np.arange(len(sel)), counts)                # ridge slot of each flat vertex entry
    pos_in = np.arange(len(seg)) - np.repeat(np.cumsum(counts) - counts, counts)
    verts = flat_all[start_all[sel][seg] + pos_in]
    if (verts < 0).any():
        return "a real atom's cell is unbounded"

    # Face areas: order each ridge's vertices by angle about their centroid in the face plane.
    xyz = vor.vertices[verts]                                    # (F, 3)
    sep = points[rp[sel, 1]] - points[rp[sel, 0]]                # (Rs, 3)
    dist = np.linalg.norm(sep, axis=1)
    normal = sep / dist[:, None]
    helper = np.where(np.abs(normal[:, [0]]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    u = np.cross(normal, helper)
    u /= np.linalg.norm(u, axis=1)[:, None]
    w = np.cross(normal, u)
    centroid = np.add.reduceat(xyz, np.cumsum(counts) - counts, axis=0) / counts[:, None]
    rel = xyz - centroid[seg]
    x, y = np.einsum("fk,fk->f", rel, u[seg]), np.einsum("fk,fk->f", rel, w[seg])
    order = np.lexsort((np.arctan2(y, x), seg))
    x, y = x[order], y[order]
    first = np.cumsum(counts) - counts
    nxt = np.arange(len(seg)) + 1
    nxt[first + counts - 1] = first                              # wrap to each polygon's first vertex
    area_r = 0.5 * np.abs(np.bincount(seg, x * y[nxt] - x[nxt] * y, minlength=len(sel)))

    # Certificate: each real cell vertex's empty sphere lies inside the padded region.
    vert_owner = np.concatenate([rp[sel, 0][seg], rp[sel, 1][seg]])
    vert_xyz = np.concatenate([xyz, xyz])
    is_real = vert_owner < n
    vert_owner, vert_xyz = vert_owner[is_real], vert_xyz[is_real]
    radius = np.linalg.norm(vert_xyz - points[vert_owner], axis=1)
    sv = vert_xyz @ np.linalg.inv(cell)
    m = margin / widths
    clearance = np.minimum((sv + m) * widths, (1.0 + m - sv) * widths).min(axis=1)
    if (clearance < radius * (1.0 + 1e-9)).any():
        return "a cell vertex's empty sphere reaches beyond the periodic images"

    ridge_slot = np.searchsorted(sel, face_ridge)                # directed face -> slot in `sel`
    area = area_r[ridge_slot]
    volume = np.bincount(a, area * dist[ridge_slot] / 6.0, minlength=n)
    if abs(volume.sum() - box_volume) > 1e-6 * box_volume:
        raise ValueError(f"Voronoi volumes sum to {volume.sum():.10g} Å³ but the box is {box_volume:.10g} Å³")

    surface = np.bincount(a, area, minlength=n)
    kept = area >= fraction * surface[a]                         # kept in cell a's index
    edges = np.minimum(counts[ridge_slot], INDEX_EDGES[-1]) - INDEX_EDGES[0]
    index = np.zeros((n, len(INDEX_EDGES)), dtype=np.int64)
    np.add.at(index, (a[kept], edges[kept]), 1)

    j = owner[b]
    both = kept & (area >= fraction * surface[j])                # kept in both cells' indices
    i, j, area = a[both].astype(np.int64), j[both].astype(np.int64), area[both]
    o = np.lexsort((area, j, i))
    return Tessellation(volume=volume, index=index, i=i[o], j=j[o], area=area[o])


def is_icosahedral(index):
    """Full icosahedra: Voronoi index <0,0,12,0> and no face with more than 6 edges. index (N,8) -> (N,) bool."""
    index = np.asarray(index)
    return (index[:, 0] == 0) & (index[:, 1] == 0) & (index[:, 2] == 12) & (index[:, 3:] == 0).all(axis=1)
