"""Periodic neighbour pairs and Falk–Langer D²min on random periodic configurations."""
import itertools

import numpy as np
import pytest

from kernels.d2min import d2min
from kernels.neighbours import bond_vectors, neighbour_pairs

CUTOFF = 4.0        # Å
DENSITY = 0.06      # atoms / Å³, like a metallic glass


def lammps_cell(lx, ly, lz, xy=0.0, xz=0.0, yz=0.0):
    return np.array([[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]])


def cube(n_atoms, tilt=0.0):
    """Cell of n_atoms at DENSITY, with all three tilts = tilt * edge (LAMMPS allows up to 0.5)."""
    edge = (n_atoms / DENSITY) ** (1 / 3)
    return lammps_cell(edge, edge, edge, tilt * edge, tilt * edge, tilt * edge)


BOXES = {"orthogonal": 0.0, "triclinic": 0.5}


def random_system(n_atoms, cell, rng):
    """Positions (N,3) Å, fractional-uniform in the cell."""
    return rng.random((n_atoms, 3)) @ cell


def random_images(positions, cell, rng):
    """The same configuration with each atom moved by a random integer lattice vector."""
    return positions + rng.integers(-2, 3, size=positions.shape) @ cell


def rewrap(positions, cell):
    s = positions @ np.linalg.inv(cell)
    return (s - np.floor(s)) @ cell


def affine(rng, scale=0.05):
    return np.eye(3) + scale * rng.standard_normal((3, 3))


def brute_force_pairs(positions, cell, cutoff):
    """{(i, j): d} over the 27 image shifts of in-cell positions, by broadcasting."""
    inside = rewrap(positions, cell)
    pairs = {}
    for shift in itertools.product((-1, 0, 1), repeat=3):
        d = inside[None, :, :] + np.array(shift) @ cell - inside[:, None, :]
        close = np.linalg.norm(d, axis=-1) < cutoff
        if shift == (0, 0, 0):
            np.fill_diagonal(close, False)
        for i, j in zip(*np.nonzero(close)):
            assert (i, j) not in pairs
            pairs[(i, j)] = d[i, j]
    return pairs


# --- neighbour_pairs -------------------------------------------------------------------------

@pytest.mark.parametrize("box", BOXES)
def test_pairs_symmetric_antisymmetric_and_within_cutoff(box):
    rng = np.random.default_rng(1)
    cell = cube(300, BOXES[box])
    i, j, d = neighbour_pairs(random_images(random_system(300, cell, rng), cell, rng), cell, CUTOFF)
    assert i.dtype == j.dtype == np.int64 and d.shape == (len(i), 3)
    assert np.all(i != j) and np.all(np.linalg.norm(d, axis=1) < CUTOFF)
    assert np.all(np.diff(i * 300 + j) > 0)                                # sorted by i then j, unique
    swapped = np.lexsort((i, j))                                           # (j, i) pairs in (i, j) order
    np.testing.assert_array_equal(j[swapped], i)
    np.testing.assert_array_equal(i[swapped], j)
    np.testing.assert_allclose(d[swapped], -d, atol=1e-12)
    assert 10 < len(i) / 300 < 22                                          # ≈ 4/3 π r³ ρ = 16


@pytest.mark.parametrize("box", BOXES)
def test_pairs_match_brute_force(box):
    rng = np.random.default_rng(2)
    cell = cube(60, BOXES[box]) * 1.4        # 60 atoms, wide enough for CUTOFF when tilted
    positions = random_system(60, cell, rng)
    i, j, d = neighbour_pairs(random_images(positions, cell, rng), cell, CUTOFF)
    expected = brute_force_pairs(positions, cell, CUTOFF)
    assert sorted(expected) == list(zip(i.tolist(), j.tolist()))
    np.testing.assert_allclose(d, [expected[p] for p in zip(i.tolist(), j.tolist())], atol=1e-10)


@pytest.mark.parametrize("box", BOXES)
def test_bond_vectors_are_the_nearest_images_found_by_the_pair_search(box):
    """The direction-aware model's edge features: r_j - r_i to j's nearest image, from positions of any
    image, tilted boxes included."""
    rng = np.random.default_rng(4)
    cell = cube(300, BOXES[box])
    positions = random_images(random_system(300, cell, rng), cell, rng)
    i, j, d = neighbour_pairs(positions, cell, CUTOFF)
    np.testing.assert_allclose(bond_vectors(positions, cell, i, j), d, atol=1e-10)
    # a far pair in a tilted box, where the rounded fractional difference is not the nearest image
    tilted = lammps_cell(10.0, 10.0, 10.0, xy=5.0)
    pair = np.array([[0.0, 0.0, 0.0], np.array([0.49, 0.49, 0.0]) @ tilted])
    np.testing.assert_allclose(bond_vectors(pair, tilted, [0], [1])[0], np.array([-0.51, 0.49, 0.0]) @ tilted)


def test_pairs_reject_cutoff_of_half_the_smallest_width():
    cell = lammps_cell(10.0, 12.0, 14.0, xy=5.0)
    width = 10.0 * 12.0 / np.hypot(12.0, 5.0)               # across a: 120/13 Å < lx, the smallest
    positions = np.random.default_rng(3).random((20, 3)) @ cell
    neighbour_pairs(positions, cell, 0.999 * width / 2)
    with pytest.raises(ValueError):
        neighbour_pairs(positions, cell, 1.001 * width / 2)


# --- d2min -----------------------------------------------------------------------------------

@pytest.mark.parametrize("box", BOXES)
@pytest.mark.parametrize("rewrapped", [False, True])
def test_d2min_vanishes_for_affine_maps(box, rewrapped):
    rng = np.random.default_rng(4)
    cell = cube(300, BOXES[box])
    ref = random_images(random_system(300, cell, rng), cell, rng)
    f = affine(rng)
    new_cell = cell @ f.T
    now = ref @ f.T + rng.uniform(-20.0, 20.0, size=3)
    if rewrapped:
        now = rewrap(now, new_cell)
    result = d2min(ref, cell, now, new_cell, CUTOFF)
    assert result.shape == (300,) and result.dtype == np.float64
    np.testing.assert_allclose(result, 0.0, rtol=0, atol=1e-10)


@pytest.mark.parametrize("box", BOXES)
def test_d2min_matches_matscipy(box):
    from ase import Atoms
    from matscipy.atomic_strain import get_D_square_min

    rng = np.random.default_rng(5)
    cell = cube(300, BOXES[box])
    ref = random_system(300, cell, rng)
    f = affine(rng, scale=0.02)
    new_cell = cell @ f.T
    now = rewrap(ref @ f.T + rng.uniform(-0.05, 0.05, size=ref.shape), new_cell)
    i, j, _ = neighbour_pairs(ref, cell, CUTOFF)
    # matscipy uses d = mic(r_i - r_j), our d = r_j - r_i: J and the squared residual are unchanged.
    _, expected = get_D_square_min(Atoms(positions=now, cell=new_cell, pbc=True),
                                   Atoms(positions=ref, cell=cell, pbc=True), i, j)
    assert expected.shape == (300,) and expected.min() > 1e-4
    np.testing.assert_allclose(d2min(ref, cell, now, new_cell, CUTOFF), expected, rtol=1e-8, atol=0)


@pytest.mark.parametrize("box", BOXES)
def test_single_displaced_atom_is_local(box):
    rng = np.random.default_rng(6)
    cell = cube(300, BOXES[box])
    ref = random_system(300, cell, rng)
    now = ref.copy()
    now[17] += [0.3, -0.4, 0.2]
    result = d2min(ref, cell, now, cell, CUTOFF)
    assert np.argmax(result) == 17 and result[17] > 0.1
    i, j, _ = neighbour_pairs(ref, cell, CUTOFF)
    near = np.union1d(j[i == 17], [17])
    assert np.all(result[near] > 0)
    far = np.setdiff1d(np.arange(300), near)                 # includes every atom beyond 2 cutoffs
    np.testing.assert_allclose(result[far], 0.0, rtol=0, atol=1e-20)


def test_d2min_with_few_or_no_neighbours():
    cell = lammps_cell(30.0, 30.0, 30.0)
    ref = np.array([[1.0, 1.0, 1.0], [3.0, 1.0, 1.0],         # a pair: one neighbour each
                    [15.0, 15.0, 15.0]])                      # isolated
    now = ref + [[0.0, 0.0, 0.0], [0.5, 0.3, 0.0], [1.0, 0.0, 0.0]]
    # One neighbour fits exactly (minimum-norm J); no neighbour gives 0.
    np.testing.assert_allclose(d2min(ref, cell, now, cell, CUTOFF), 0.0, rtol=0, atol=1e-20)
