"""Rotations into the shear frame and the 19-feature assembly."""
import numpy as np
import pytest

from kernels.features import FEATURE_NAMES, node_features
from kernels.frames import (
    applied_strain,
    rotate_stiffness,
    rotate_stress,
    shear_rotation,
    tensor2_to_voigt,
    voigt_to_tensor2,
    voigt_to_tensor4,
)

DIRECTIONS = ["xy", "yz", "xz", "-xy", "-yz", "-xz"]


def anisotropic_stiffness(seed=0):
    """A symmetric positive-definite 6x6 with no symmetry at all (GPa)."""
    a = np.random.default_rng(seed).normal(size=(6, 6))
    return a @ a.T * 10 + np.eye(6) * 50


def isotropic_stiffness(lam=80.0, mu=30.0):
    c = np.zeros((6, 6))
    c[:3, :3] = lam
    c[np.arange(3), np.arange(3)] += 2 * mu
    c[np.arange(3, 6), np.arange(3, 6)] = mu
    return c


@pytest.mark.parametrize("d", DIRECTIONS)
def test_rotation_is_proper_and_maps_the_shear_onto_plus_yz(d):
    r = shear_rotation(d)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-15)
    assert np.linalg.det(r) == pytest.approx(1.0)
    rotated = r @ applied_strain(d, 0.01) @ r.T
    np.testing.assert_allclose(rotated, applied_strain("yz", 0.01), atol=1e-15)


@pytest.mark.parametrize("d", DIRECTIONS)
def test_isotropic_tensor_is_unchanged(d):
    c = isotropic_stiffness()[None]
    np.testing.assert_allclose(rotate_stiffness(c, shear_rotation(d)), c, atol=1e-12)


@pytest.mark.parametrize("d", DIRECTIONS)
def test_rotated_column_4_is_the_response_to_the_applied_shear(d):
    """C' e_4 in the shear frame = the stress response to the applied shear, rotated."""
    c = anisotropic_stiffness()
    t = voigt_to_tensor4(c)
    r = shear_rotation(d)
    gamma = 1e-3
    sigma_lab = np.einsum("ijkl,kl->ij", t, applied_strain(d, gamma))
    expected = tensor2_to_voigt(r @ sigma_lab @ r.T)
    c_rot = rotate_stiffness(c[None], r)[0]
    np.testing.assert_allclose(c_rot[:, 3] * gamma, expected, atol=1e-12)
    if d != "yz":
        assert not np.allclose(c_rot[:, 3], c[:, 3])  # a real change for an anisotropic tensor


def test_stress_rotation_matches_matrix_rotation():
    s = np.random.default_rng(1).normal(size=(5, 6))
    r = shear_rotation("-xz")
    expected = tensor2_to_voigt(np.einsum("ia,jb,nab->nij", r, r, voigt_to_tensor2(s)))
    np.testing.assert_allclose(rotate_stress(s, r), expected)
    # the yz shear stress of an xz-sheared frame is the lab xz stress, negated for '-xz' (x->y, z->-z)
    np.testing.assert_allclose(rotate_stress(s, r)[:, 3], -s[:, 4])


def test_node_features_order_and_values():
    n = 4
    rng = np.random.default_rng(2)
    types = np.array([1, 2, 1, 2])
    ico = np.array([True, False, False, True])
    vol, pe, pf = rng.uniform(10, 20, n), rng.uniform(-5, -3, n), rng.uniform(0, 1, n)
    stress = rng.normal(size=(n, 6))
    stiff = np.stack([anisotropic_stiffness(k) for k in range(n)])
    x = node_features(types, ico, vol, pe, pf, stress, stiff, shear_rotation("yz"))
    assert x.shape == (n, 19) and len(FEATURE_NAMES) == 19
    np.testing.assert_array_equal(x[:, 0], [1, 0, 1, 0])
    np.testing.assert_array_equal(x[:, 1], [0, 1, 0, 1])
    np.testing.assert_array_equal(x[:, 2], [1, 0, 0, 1])
    np.testing.assert_array_equal(x[:, 3], [0, 1, 1, 0])
    np.testing.assert_array_equal(x[:, 4:7], np.stack([vol, pe, pf], 1))
    np.testing.assert_allclose(x[:, 7:13], stiff[:, :, 3])           # identity frame: C14..C64
    # sigma11 sigma22 sigma33 sigma12 sigma23 sigma31 from Voigt xx yy zz yz xz xy
    np.testing.assert_allclose(x[:, 13:19], stress[:, [0, 1, 2, 5, 3, 4]])


@pytest.mark.parametrize("d", DIRECTIONS)
def test_the_lammps_tilt_is_the_simple_shear_whose_symmetric_part_is_the_applied_strain(d):
    from kernels.frames import tilt

    cell = np.diag([11.0, 12.0, 13.0])
    name, value = tilt(d, cell, 0.02)
    f = np.eye(3)  # deformation gradient of the tilted box: the tilt over the gradient axis's length
    a, b = "xyz".index(name[0]), "xyz".index(name[1])
    f[a, b] = value / cell[b, b]
    assert np.allclose(0.5 * (f + f.T) - np.eye(3), applied_strain(d, 0.02))


@pytest.mark.parametrize("j", [3, 4, 5])
def test_spin_correction_is_what_the_shears_rotation_does_to_a_pre_stress(j):
    from scipy.linalg import expm

    from kernels.frames import VOIGT_PAIRS, spin_correction, voigt_to_tensor2

    s = np.random.default_rng(j).normal(size=6)
    a, b = VOIGT_PAIRS[j]
    w = np.zeros((3, 3))
    w[a, b], w[b, a] = 0.5, -0.5  # the spin of a unit simple shear
    h = 1e-6
    rotated = [expm(sign * h * w) @ voigt_to_tensor2(s) @ expm(sign * h * w).T for sign in (1, -1)]
    assert np.allclose(spin_correction(s, j), tensor2_to_voigt((rotated[0] - rotated[1]) / (2 * h)), atol=1e-8)
