"""The local yield stress's geometry and reading (kernels.lys); its LAMMPS job is in test_jobs."""
import numpy as np
import pytest

from kernels.lys import (
    distances,
    first_event,
    grid_shape,
    interpolate,
    periodic_centroid,
    region_centres,
    region_holding,
    resolved,
)


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


def test_the_first_event_is_a_departure_from_the_elastic_response_even_while_the_stress_still_rises():
    """An elastic branch as measured at 10,000 atoms (0.04 GPa a step of 1e-3, softening smoothly,
    minimiser noise 2e-4 GPa) with a small event at step 30 that releases 0.02 GPa, half a step's
    elastic rise: the stress never falls there, yet the event is caught; the smooth branch alone
    has none."""
    rng = np.random.default_rng(1)
    gamma = np.arange(80) * 1e-3
    elastic = 40.0 * gamma - 150.0 * gamma ** 2 + rng.normal(0, 2e-4, len(gamma))  # GPa
    assert first_event(elastic, 0.005) is None
    tau = elastic.copy()
    tau[31:] -= 0.02                               # the small event, between steps 30 and 31
    assert np.all(np.diff(tau) > 0)                # no fall: a fall criterion would miss it
    assert first_event(tau, 0.005) == 30
    tau[61:] -= 1.0                                # a large drop later changes nothing
    assert first_event(tau, 0.005) == 30


def test_the_first_step_is_judged_against_the_given_elastic_increment_or_a_fall():
    tau = np.array([1.0, 1.01, 1.05, 1.09])
    assert first_event(tau, 0.005) is None                        # a rise: no fall
    assert first_event(tau, 0.005, first_increment=0.04) == 0     # 0.01 where 0.04 was due: an event
    assert first_event(tau[:1], 0.005) is None
    assert first_event(np.array([1.0, 0.99]), 0.005) == 0


def test_the_region_holding_a_point_is_its_grid_cell_when_the_sphere_reaches_it():
    """The direct check assigns the first event to a region: the nearest centre is the grid cell, but a
    cell's corners lie outside a sphere narrower than half its diagonal."""
    cell, origin, shape = np.diag([26.0, 26.0, 26.0]), np.zeros(3), (2, 2, 2)
    centres = region_centres(cell, origin, shape)
    rng = np.random.default_rng(2)
    points = rng.random((200, 3)) @ cell
    for x in points:
        held = region_holding(x, centres, cell, radius_A=30.0)  # every sphere reaches every point
        grid_cell = np.ravel_multi_index(tuple(np.floor((x - origin) / (np.diag(cell) / shape)).astype(int)), shape)
        assert held == grid_cell
    corner = np.array([0.1, 0.1, 0.1])                         # 11.1 A from its cell's centre
    assert region_holding(corner, centres, cell, radius_A=10.0) is None
    assert region_holding(centres[5] + [6.0, 0, 0], centres, cell, radius_A=10.0) == 5
    assert region_holding(centres[5] + [7.0, 0, 0], centres, cell, radius_A=10.0) == 1  # the next cell


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
    assert [region_holding(c, centres, cell, 1.0) for c in centres] == list(range(24))
    moved = centres + np.array([1.0, -2.0, 3.0]) @ cell + 0.1 * np.diag(cell) / np.array(shape)  # periodic images
    assert [region_holding(c, centres, cell, 4.0) for c in moved] == list(range(24))
    cluster = np.array([[0.98, 0.5, 0.5], [0.02, 0.5, 0.5], [0.96, 0.52, 0.5], [0.04, 0.48, 0.5]])
    offset = periodic_centroid(cluster) - [0.0, 0.5, 0.5]  # not 0.5 along x, where a plain mean would put it
    assert np.allclose(offset - np.round(offset), 0.0)


def test_batches_of_regions_gather_in_any_order_and_a_missing_region_is_named():
    from kernels.lys import gather

    values = gather(4, [(np.array([2, 3]), np.array([1.5, np.nan])), (np.array([0, 1]), np.array([0.5, 2.0]))])
    np.testing.assert_array_equal(values, [0.5, 2.0, 1.5, np.nan])  # NaN: did not yield, kept as such
    with pytest.raises(ValueError, match=r"regions \[1\] is missing"):
        gather(3, [(np.array([0, 2]), np.array([1.0, 1.0]))])
