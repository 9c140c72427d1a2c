"""The linear response to an affine shear (kernels.response) against LAMMPS: Ξ against the forces
LAMMPS finds in the affinely sheared box, and u = −H⁺Ξ against the non-affine displacement that
LAMMPS's minimiser makes in one small AQS step, on the minimised 256-atom glass of test_hessian."""
import subprocess
import sys

import numpy as np
import pytest

from kernels import frames
from kernels.eam import hessian
from kernels.modes import dynamical_matrix, low_modes
from kernels.response import (
    HessianSolver,
    force_mismatch,
    low_mode_response,
    mode_drive,
    response,
    response_features,
    sheared,
)

from lammps_systems import OPEN_LAMMPS, POTENTIAL, glass_of  # the fixtures pot and lammps_runs: conftest.py

pytestmark = pytest.mark.skipif(POTENTIAL is None, reason="LAMMPS (with CuZr_mm.eam.fs) not installed")

GAMMA = 2e-5  # strain of the AQS step: deep in the linear regime of a minimised glass

# argv[1]: input .npz (positions, cell, types, potential, shears as rows 'direction gamma minimize');
# argv[2]: output .npz with x and f of each shear, atoms by ID. Each shear starts from the input.
SHEAR_DRIVER = OPEN_LAMMPS + r"""
data = dict(np.load(sys.argv[1]))
positions, cell, types = data["positions"], data["cell"], data["types"].astype(int)
results = {}
for k, (box, do_min) in enumerate(zip(data["boxes"], data["minimize"])):
    lmp = open_lammps(positions, cell, types, data["potential"])
    (_, _, _), (bxy, _, _), (bxz, byz, _) = box.tolist()
    lmp.command(f"change_box all xy final {bxy!r} xz final {bxz!r} yz final {byz!r} remap units box")
    if do_min:
        lmp.command("min_style cg")
        lmp.command("minimize 0 1e-13 100000 1000000")
    lmp.command("run 0")
    nlocal = lmp.extract_global("nlocal")
    order = np.argsort(np.array(lmp.numpy.extract_atom("id")[:nlocal]))
    results[f"{k}/x"] = np.array(lmp.numpy.extract_atom("x")[:nlocal])[order]
    results[f"{k}/f"] = np.array(lmp.numpy.extract_atom("f")[:nlocal])[order]
    lmp.close()
np.savez(sys.argv[2], **results)
"""


def _lammps_shears(tmp_path, positions, cell, types, shears):
    """LAMMPS's positions and forces after each (direction, gamma, minimize) applied to the glass."""
    boxes = np.array([sheared(positions, cell, d, g)[1] for d, g, _ in shears])
    np.savez(tmp_path / "in.npz", positions=positions, cell=cell, types=types, potential=np.array(POTENTIAL),
             boxes=boxes, minimize=np.array([m for _, _, m in shears], dtype=int))
    subprocess.run([sys.executable, "-c", SHEAR_DRIVER, str(tmp_path / "in.npz"), str(tmp_path / "out.npz")],
                   check=True, timeout=300, cwd=tmp_path)
    out = dict(np.load(tmp_path / "out.npz"))
    return [(out[f"{k}/x"], out[f"{k}/f"], boxes[k]) for k in range(len(shears))]


def _minimum_image(d, cell):
    s = d @ np.linalg.inv(cell)
    return (s - np.round(s)) @ cell


@pytest.fixture(scope="module")
def glass(pot, lammps_runs):
    positions, cell, types = glass_of(lammps_runs)
    h = hessian(pot, positions, cell, types)
    return positions, cell, types, h, HessianSolver(h, pot.masses[types - 1])


@pytest.mark.parametrize("direction", ["xy", "-xz", "yz"])
def test_force_mismatch_equals_the_change_of_lammps_forces_under_the_affine_shear(pot, glass, tmp_path,
                                                                                    direction):
    positions, cell, types, _, _ = glass
    h = 1e-5
    (_, f_plus, _), (_, f_minus, _) = _lammps_shears(tmp_path, positions, cell, types,
                                                     [(direction, h, 0), (direction, -h, 0)])
    xi_lammps = -(f_plus - f_minus) / (2 * h)
    xi = force_mismatch(pot, positions, cell, types, direction, h=h)  # the same difference, of our forces
    assert np.abs(xi - xi_lammps).max() < 1e-6 * np.abs(xi_lammps).max()
    np.testing.assert_allclose(xi.sum(axis=0), 0, atol=1e-6)  # no net force


@pytest.mark.parametrize("direction", ["xy", "-yz"])
def test_response_predicts_the_non_affine_displacement_of_a_lammps_aqs_step(pot, glass, tmp_path, direction):
    positions, cell, types, _, solver = glass
    u = response(solver, force_mismatch(pot, positions, cell, types, direction))
    measured = []
    for (x, _, box), gamma in zip(_lammps_shears(tmp_path, positions, cell, types,
                                                 [(direction, GAMMA, 1), (direction, -GAMMA, 1)]), (GAMMA, -GAMMA)):
        affine = sheared(positions, cell, direction, gamma)[0]
        d = _minimum_image(x - affine, box)
        measured.append(d - d.mean(axis=0))
    slope = (measured[0] - measured[1]) / (2 * GAMMA)  # the second order in gamma cancels
    u = u - u.mean(axis=0)  # a uniform translation is free: compare both with their mean removed
    error = np.linalg.norm(slope - u) / np.linalg.norm(u)
    assert error < 0.02, error
    assert np.corrcoef(np.linalg.norm(slope, axis=1), np.linalg.norm(u, axis=1))[0, 1] > 0.999


def test_response_is_odd_in_the_shear_and_solves_the_hessian_system(pot, glass):
    positions, cell, types, h, solver = glass
    xi = force_mismatch(pot, positions, cell, types, "xy")
    u = response(solver, xi)
    np.testing.assert_allclose(force_mismatch(pot, positions, cell, types, "-xy"), -xi, atol=1e-6)
    np.testing.assert_allclose(response(solver, -xi), -u, rtol=1e-10, atol=1e-10)
    residual = h @ u.ravel() + (xi - xi.mean(axis=0)).ravel()
    assert np.abs(residual).max() < 1e-8 * np.abs(xi).max()
    np.testing.assert_allclose(pot.masses[types - 1] @ u, 0, atol=1e-7)  # the centre of mass stays


def test_every_mode_together_gives_the_whole_response_and_the_lowest_most_of_it(pot, glass):
    positions, cell, types, h, solver = glass
    masses = pot.masses[types - 1]
    n = 3 * len(types) - 3
    eigenvalues, vectors = low_modes(dynamical_matrix(h, masses), n, "dense")
    xi = force_mismatch(pot, positions, cell, types, "xz")
    u = response(solver, xi)
    np.testing.assert_allclose(low_mode_response(xi, eigenvalues, vectors, masses), u,
                               atol=1e-8 * np.abs(u).max())
    drive = mode_drive(xi, eigenvalues, vectors, masses)
    assert drive.sum() == pytest.approx(sum(np.sum((vectors[:, k] / np.repeat(np.sqrt(masses), 3)) ** 2)
                                            * ((vectors[:, k] @ (xi.ravel() / np.repeat(np.sqrt(masses), 3)))
                                               / eigenvalues[k]) ** 2 for k in range(n)), rel=1e-9)
    one = slice(0, 1)  # with a single mode there are no cross terms: the drive is |u_low|^2 itself
    np.testing.assert_allclose(mode_drive(xi, eigenvalues[one], vectors[:, one], masses),
                               np.sum(low_mode_response(xi, eigenvalues[one], vectors[:, one], masses) ** 2, axis=1),
                               rtol=1e-10)
    low = max(1, n // 100)
    part = low_mode_response(xi, eigenvalues[:low], vectors[:, :low], masses)
    assert 0.1 * np.linalg.norm(u) < np.linalg.norm(part) < np.linalg.norm(u)  # 1% of modes, much of u
    features = response_features(u, part, mode_drive(xi, eigenvalues[:low], vectors[:, :low], masses))
    assert features.shape == (len(types), 3) and np.all(features >= 0)


def test_the_affine_shear_is_the_directions_simple_shear():
    cell = np.array([[10.0, 0, 0], [0.3, 11.0, 0], [0.2, -0.4, 12.0]])
    for d in ("xy", "xz", "yz", "-xy", "-xz", "-yz"):
        _, new = sheared(np.zeros((1, 3)), cell, d, 0.01)
        assert np.allclose(np.triu(new, 1), 0) and np.allclose(np.diag(new), np.diag(cell))
        f = np.linalg.solve(cell, new).T  # new = cell F^T
        assert np.allclose(0.5 * (f + f.T) - np.eye(3), frames.applied_strain(d, 0.01))


def test_the_response_job_writes_each_directions_features_through_the_records(pot, glass, tmp_path):
    from jobs.response import ResponseJob
    from store import records

    from conftest import planned_params, run_on_a_quench

    positions, cell, types, _, solver = glass
    params = planned_params("response", {"features": {"sets": ["study19", "study19+response"],
                                                      "low_mode_fraction": 0.01, "eigensolver": "dense"}})
    store = run_on_a_quench(ResponseJob, tmp_path, positions, cell, types, "response", {
        **params, "quench_key": "q", "potential": POTENTIAL, "directions": ["xy", "-xy", "xz"]})
    features = records.read_checked(store, "k", ("features",))["features"]
    assert features.shape == (3, len(types), 3) and features.dtype == np.float32
    u = response(solver, force_mismatch(pot, positions, cell, types, "xz"))
    np.testing.assert_allclose(features[2, :, 0], np.linalg.norm(u, axis=1), rtol=1e-5)
    np.testing.assert_array_equal(features[0], features[1])  # |u| and the rest are blind to the sign


def test_a_feature_set_selects_its_columns_of_the_graph():
    from kernels.features import (
        FEATURE_NAMES,
        FEATURE_SETS,
        LYS_NAMES,
        PATH_NAMES,
        RESPONSE_NAMES,
        SOFTENING_NAMES,
        columns_of,
        needs_lys,
        needs_response,
        set_holding,
    )

    assert not needs_response(["study19"]) and not needs_response(["study19"], ["participation_fraction"])
    assert needs_response(["study19", "study19+response"]) and needs_response(columns=["response_u_A"])
    assert needs_lys(columns=["-lys_dtau_c_GPa"]) and not needs_lys(["study19+response"])
    assert set_holding("lys_dtau_c_GPa") == "lys" and set_holding("participation_fraction") == "study19"
    both = FEATURE_NAMES + RESPONSE_NAMES
    assert list(columns_of("study19", both)) == list(range(19))
    assert list(columns_of("response", both)) == [19, 20, 21]
    assert list(columns_of("study19+lys", FEATURE_NAMES + LYS_NAMES)) == list(range(20))
    with pytest.raises(ValueError, match="no columns \\['response_u_A'"):
        columns_of("response", FEATURE_NAMES)
    from campaign.schema import COLUMNS
    from campaign.schema import FEATURE_SETS as NAMED
    both = both + LYS_NAMES + SOFTENING_NAMES + PATH_NAMES
    assert set(NAMED) == set(FEATURE_SETS) and COLUMNS == both  # the schema (lowest layer) names them too
