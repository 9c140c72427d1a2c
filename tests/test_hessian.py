"""eam/fs energies, forces and the analytic Hessian against LAMMPS; low modes and participation fractions.

The systems and LAMMPS's results on them: tests/lammps_systems.py (the fixtures pot, asymmetric and
lammps_runs, registered by conftest.py). Boxes are wider than twice the 7.6 Å cutoff.
"""
import dataclasses

import numpy as np
import pytest
import scipy.constants
import scipy.sparse as sp

from kernels.eam import energy_forces, hessian, parse_eam_fs
from kernels.modes import (
    THZ_PER_SQRT_EIGENVALUE,
    dynamical_matrix,
    eigenvalue_to_thz,
    low_modes,
    n_low_modes,
    participation_fractions,
)
from kernels.neighbours import neighbour_pairs

from lammps_systems import DYNMAT_STEP, N_GLASS, POTENTIAL, glass_of, setfl_text

pytestmark = pytest.mark.skipif(POTENTIAL is None, reason="LAMMPS (with CuZr_mm.eam.fs) not installed")


# ----------------------------------------------------------------------------- parser and splines


def test_parser_reads_the_file_and_any_wrapping(pot, asymmetric):
    assert pot.elements == ("Cu", "Zr")
    assert pot.masses == pytest.approx([63.546, 91.224])
    assert (pot.nrho, pot.nr, pot.cutoff) == (10000, 10000, 7.6)
    assert pot.frho.shape == (2, 10000) and pot.rhor.shape == (2, 2, 10000) and pot.z2r.shape == (2, 2, 10000)
    assert np.array_equal(pot.z2r[0, 1], pot.z2r[1, 0])
    rewrapped = parse_eam_fs(setfl_text(pot, pot.rhor))           # 3 values a line instead of 5
    for name in ("frho", "rhor", "z2r", "frho_spline", "rhor_spline", "z2r_spline"):
        assert np.array_equal(getattr(rewrapped, name), getattr(pot, name))
    assert not np.array_equal(asymmetric[1].rhor[0, 1], asymmetric[1].rhor[1, 0])
    with pytest.raises(ValueError):
        parse_eam_fs("\n".join(setfl_text(pot, pot.rhor).splitlines()[:2000]))


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
    positions, cell, types = glass_of(lammps_runs, tag)
    pe, forces = energy_forces(pot, positions, cell, types)
    reference_pe, reference_f = lammps_runs[f"glass/{tag}_pe"], lammps_runs[f"glass/{tag}_f"]
    np.testing.assert_allclose(pe, reference_pe, rtol=1e-8, atol=0)
    scale = max(np.abs(reference_f).max(), 1e-3)                    # forces ~1e-11 eV/Å at the minimum
    np.testing.assert_allclose(forces, reference_f, rtol=0, atol=1e-8 * scale)


def test_density_convention_matches_lammps(asymmetric, lammps_runs):
    """An atom of element I receives f_{J→I} = the array with index I under element J (type2rhor[J][I])."""
    positions, cell, types = glass_of(lammps_runs, "start")
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
    positions, cell, types = glass_of(lammps_runs)
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
    positions, cell, types = glass_of(lammps_runs)
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
    positions, cell, types = glass_of(lammps_runs, "min")
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
    positions, cell, types = glass_of(lammps_runs)
    d = dynamical_matrix(hessian(pot, positions, cell, types), pot.masses[types - 1])
    eigenvalues = np.linalg.eigvalsh(d.toarray())
    top = eigenvalues[-1]
    assert np.all(np.abs(eigenvalues[:3]) < 1e-12 * top)
    assert eigenvalues[3] > 1e-5 * top                              # the fourth clearly separated
    assert np.all(eigenvalues[3:] > 0)


# ----------------------------------------------------------------------------- modes


@pytest.fixture(scope="module")
def glass_modes(pot, lammps_runs):
    positions, cell, types = glass_of(lammps_runs)
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
    positions, cell, types = glass_of(lammps_runs, "start")
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
