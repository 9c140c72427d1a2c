"""The local yield stress's geometry and reading (kernels.lys); its LAMMPS job is in test_jobs."""
import numpy as np
import pytest

from kernels.lys import (distances, first_drop, grid_shape, interpolate, periodic_centroid, region_centres,
                         region_index, resolved)


def test_the_grid_of_regions_spans_the_box_at_about_the_spacing():
    cell, origin = np.diag([20.0, 21.0, 9.0]), np.array([1.0, -2.0, 0.5])
    assert grid_shape(cell, 5.0) == (4, 4, 2)
    centres = region_centres(cell, origin, (4, 4, 2))
    assert centres.shape == (32, 3)
    np.testing.assert_allclose(centres[0], origin + [2.5, 2.625, 2.25])
    np.testing.assert_allclose(centres[1], origin + [2.5, 2.625, 6.75])  # C order: c fastest
    assert np.all((centres > origin) & (centres < origin + np.diag(cell)))


def test_distances_are_to_the_nearest_periodic_image():
    cell = np.diag([10.0, 10.0, 10.0])
    atoms = np.array([[9.5, 0.0, 0.0], [5.0, 5.0, 5.0], [-0.5, 0.0, 10.0]])
    np.testing.assert_allclose(distances(atoms, cell, np.array([0.5, 0.0, 0.0])), [1.0, np.sqrt(4.5 ** 2 + 50), 1.0])


def test_the_resolved_stress_takes_the_shears_component_and_sign():
    sigma = np.array([1.0, 2.0, 3.0, 0.4, 0.5, 0.6])  # xx yy zz yz xz xy
    assert resolved(sigma, "xy") == 0.6 and resolved(sigma, "-xy") == -0.6
    assert resolved(sigma, "yz") == 0.4 and resolved(sigma, "xz") == 0.5 and resolved(sigma, "-xz") == -0.5


def test_the_first_drop_is_the_first_fall_larger_than_the_tolerance():
    tau = np.array([0.0, 0.1, 0.2, 0.195, 0.3, 0.1, 0.4])
    assert first_drop(tau, 0.01) == 4  # the 0.005 dip is elastic noise at this tolerance
    assert first_drop(tau, 0.001) == 2
    assert first_drop(tau[:5], 0.01) is None


def test_interpolation_reproduces_the_centres_and_linear_fields_and_is_periodic():
    rng = np.random.default_rng(0)
    shape = (3, 4, 5)
    values = rng.random(shape)
    idx = np.stack(np.meshgrid(*(np.arange(n) for n in shape), indexing="ij"), -1).reshape(-1, 3)
    at_centres = (idx + 0.5) / np.array(shape)
    np.testing.assert_allclose(interpolate(values, at_centres), values.ravel())
    np.testing.assert_allclose(interpolate(values, at_centres + [1.0, -2.0, 3.0]), values.ravel())  # periodic
    between = np.array([[0.5 / 3 + 0.5 / 3, 0.5 / 4, 0.5 / 5]])  # halfway from centre (0,0,0) to (1,0,0)
    assert interpolate(values, between)[0] == pytest.approx(values[:2, 0, 0].mean())
    assert np.allclose(interpolate(np.full(shape, 2.5), rng.random((50, 3))), 2.5)


def test_each_centre_lies_in_its_own_region_and_a_cluster_across_the_boundary_keeps_its_centroid():
    cell, origin, shape = np.diag([20.0, 30.0, 10.0]), np.array([-5.0, 0.0, 2.0]), (2, 3, 4)
    centres = region_centres(cell, origin, shape)
    frac = (centres - origin) @ np.linalg.inv(cell)
    assert (region_index(frac, shape) == np.arange(24)).all()
    assert (region_index(frac + [1.0, -2.0, 3.0] + 0.1 / np.array(shape), shape) == np.arange(24)).all()  # periodic
    cluster = np.array([[0.98, 0.5, 0.5], [0.02, 0.5, 0.5], [0.96, 0.52, 0.5], [0.04, 0.48, 0.5]])
    offset = periodic_centroid(cluster) - [0.0, 0.5, 0.5]  # not 0.5 along x, where a plain mean would put it
    assert np.allclose(offset - np.round(offset), 0.0)


def test_batches_of_regions_gather_in_any_order_and_a_missing_region_is_named():
    from kernels.lys import gather

    values = gather(4, [(np.array([2, 3]), np.array([1.5, np.nan])), (np.array([0, 1]), np.array([0.5, 2.0]))])
    np.testing.assert_array_equal(values, [0.5, 2.0, 1.5, np.nan])  # NaN: did not yield, kept as such
    with pytest.raises(ValueError, match=r"regions \[1\] is missing"):
        gather(3, [(np.array([0, 2]), np.array([1.0, 1.0]))])
