"""kernels.softening: the path derivative of the dynamical matrix and the predicted first instability."""
import math

import numpy as np
import pytest

from kernels import eam, modes
from kernels import softening as S
from kernels.continuation import specimen_softening
from kernels.response import HessianSolver, force_mismatch, response, sheared

from lammps_systems import POTENTIAL, glass_of  # the fixtures pot and lammps_runs: conftest.py


@pytest.fixture(scope="module")
def glass(pot, lammps_runs):
    """The LAMMPS-minimised glass: positions, cell, types, masses, and u of its xy shear."""
    positions, cell, types = glass_of(lammps_runs)
    types = types.astype(int)
    masses = pot.masses[types - 1]
    h = eam.hessian(pot, positions, cell, types)
    u = response(HessianSolver(h, masses), force_mismatch(pot, positions, cell, types, "xy"))
    return positions, cell, types, masses, u


@pytest.fixture(scope="module")
def smooth(pot):
    return S.smooth_potential(pot)


def test_the_smoothed_tables_stay_on_the_exact_ones(pot, smooth, glass):
    """Refitted r·φ and densities within 2e-7 of the tables, F(ρ) within 1e-5 eV, where they are refitted;
    energies and forces at the glass's minimum as good as equal."""
    r = np.arange(pot.nr) * pot.dr
    for (a, b), lowest in S.SMOOTH_R_MIN_A.items():
        i, j = pot.elements.index(a), pot.elements.index(b)
        assert np.abs(smooth.z2r_spline[i, j, :, 6] - pot.z2r[i, j])[r >= lowest].max() < 2e-7
        assert np.abs(smooth.rhor_spline[i, j, :, 6] - pot.rhor[i, j])[r >= lowest].max() < 2e-7
    rho = np.arange(pot.nrho) * pot.drho
    assert np.abs(smooth.frho_spline[..., 6] - pot.frho)[:, rho >= S.SMOOTH_RHO_MIN].max() < 1e-5
    positions, cell, types, _, _ = glass
    e_exact, f_exact = eam.energy_forces(pot, positions, cell, types)
    e_smooth, f_smooth = eam.energy_forces(smooth, positions, cell, types)
    assert abs(e_smooth.sum() - e_exact.sum()) / len(types) < 1e-6  # eV per atom
    assert np.abs(f_smooth - f_exact).max() < 2e-4  # eV/Å


def test_the_path_derivative_is_physics_on_smoothed_tables_and_noise_on_the_exact_ones(pot, smooth, glass):
    """Halving δ moves D′ by less than 1 % on the smoothed tables; on the exact ones (10 digits on a
    7.6e-4 Å grid) by tens of percent, and its norm comes out several times too large."""
    positions, cell, types, _, u = glass

    def change(p):
        d1 = S.path_derivative(p, positions, cell, types, "xy", u, 1e-4).toarray()
        d2 = S.path_derivative(p, positions, cell, types, "xy", u, 5e-5).toarray()
        return np.linalg.norm(d1 - d2) / np.linalg.norm(d1), np.linalg.norm(d1)

    (smooth_change, smooth_norm), (exact_change, exact_norm) = change(smooth), change(pot)
    assert smooth_change < 0.01
    assert exact_change > 0.1 and exact_norm > 3 * smooth_norm


def test_the_path_derivative_is_the_derivative_of_the_forces_along_the_path(smooth, glass):
    """D′w against −d/dγ of a central difference of the forces along M^-½w, at x(γ) = F(γ)x₀ + γu."""
    positions, cell, types, masses, u = glass
    w = np.random.default_rng(0).standard_normal(positions.shape)
    scale = np.sqrt(masses)[:, None]
    eps = delta = 5e-4

    def hessian_times_w(gamma):
        x, c = sheared(positions, cell, "xy", gamma)
        x = x + gamma * u
        plus = eam.energy_forces(smooth, x + eps * w / scale, c, types)[1]
        minus = eam.energy_forces(smooth, x - eps * w / scale, c, types)[1]
        return -(plus - minus) / (2 * eps) / scale

    by_forces = (hessian_times_w(delta) - hessian_times_w(-delta)) / (2 * delta)
    analytic = (S.path_derivative(smooth, positions, cell, types, "xy", u) @ w.reshape(-1)).reshape(-1, 3)
    assert np.linalg.norm(by_forces - analytic) / np.linalg.norm(analytic) < 0.01


def test_the_opposite_shear_has_the_opposite_path_derivative(smooth, glass):
    positions, cell, types, _, u = glass
    plus = S.path_derivative(smooth, positions, cell, types, "xy", u)
    minus = S.path_derivative(smooth, positions, cell, types, "-xy", -u)
    assert np.abs((plus + minus).toarray()).max() <= 1e-9 * np.abs(plus.toarray()).max()


def test_the_predicted_crossing_makes_the_subspace_matrix_singular():
    """γ*: the smallest strain at which diag(Λ) + γB has a zero eigenvalue, ψ* its null vector; no
    negative eigenvalue before it. Without softening (B positive) nothing crosses."""
    rng = np.random.default_rng(3)
    k = 12
    lam = np.sort(rng.uniform(0.5, 5.0, k))
    q = np.linalg.qr(rng.standard_normal((30, k)))[0]           # orthonormal "modes" in 30 dof
    a = rng.standard_normal((k, k))
    b = 0.5 * (a + a.T) - 1.0 * np.eye(k)
    gamma, psi, mu = S.subspace_softening(lam, q, b)
    m = lambda g: np.diag(lam) + g * b  # noqa: E731
    assert np.linalg.eigvalsh(m(gamma))[0] == pytest.approx(0.0, abs=1e-9 * lam.max())
    assert np.linalg.eigvalsh(m(0.999 * gamma))[0] > 0
    coefficients = q.T @ psi
    assert np.linalg.norm(m(gamma) @ coefficients) < 1e-9 * lam.max()
    assert np.linalg.norm(psi) == pytest.approx(1.0)
    assert S.subspace_softening(lam, q, np.eye(k))[0] == math.inf
    crossings = S.mode_crossings(lam, np.diag([-1.0] * 6 + [1.0] * 6))
    assert np.allclose(crossings[:6], lam[:6]) and np.all(np.isinf(crossings[6:]))


def test_a_specimens_predictions_are_scores_per_atom_and_differ_with_the_sign_of_the_shear(pot, glass):
    positions, cell, types, _, _ = glass
    out = specimen_softening(pot, positions, cell, types, ["xy", "-xy"], 20, "dense")
    assert out["scores"].shape == (2, len(types), 2)
    assert np.allclose(out["scores"].sum(axis=1), 1.0)
    assert np.all(out["gamma_star"] > 0)
    psi_plus, psi_minus = out["scores"][0, :, 0], out["scores"][1, :, 0]
    assert np.abs(psi_plus - psi_minus).sum() > 0.2  # another zone for the other sign
    assert np.isfinite(out["gamma_star"]).any()


def test_the_softening_job_writes_each_directions_predictions_through_the_records(pot, glass, tmp_path):
    """The job's columns and strains are the kernel's, by direction; the opposite sign has its own."""
    from jobs.softening import SofteningJob
    from store import records

    from conftest import planned_params, run_on_a_quench

    positions, cell, types, _, _ = glass
    directions = ["xy", "-xy", "xz"]
    params = planned_params("softening", {"softening": {"mode_fraction": 0.05}, "features": {
        "sets": ["study19", "study19+softening"], "eigensolver": "dense"}})
    store = run_on_a_quench(SofteningJob, tmp_path, positions, cell, types, "softening", {
        **params, "quench_key": "q", "potential": POTENTIAL, "directions": directions})
    out = records.read_checked(store, "k", ("features", "gamma_star", "gamma_min"))
    assert out["features"].shape == (3, len(types), 2) and out["features"].dtype == np.float32
    n_modes = modes.n_low_modes(len(types), 0.05)
    expected = specimen_softening(pot, positions, cell, types, ["xz"], n_modes, "dense")
    np.testing.assert_allclose(out["features"][2], expected["scores"][0], rtol=1e-5, atol=1e-8)
    assert out["gamma_star"][2] == expected["gamma_star"][0]
    assert not np.allclose(out["features"][0], out["features"][1])  # the sign of the shear matters
    assert records.read(store, "k")["summary"]["n_modes"] == n_modes


def test_the_softening_job_follows_the_path_of_each_signed_direction(pot, glass, tmp_path):
    """With continuation_steps the job adds the path's column and strains, each direction's the kernel's
    own (for '-xy' followed from scratch: the sign of the shear reaches the path's response)."""
    from jobs.softening import SofteningJob
    from kernels.continuation import follow
    from store import records

    from conftest import planned_params, run_on_a_quench

    positions, cell, types, _, _ = glass
    params = planned_params("softening", {  # as the campaign hands them to the job: its continuation section flattened
        "features": {"sets": ["study19", "study19+softening_path"], "eigensolver": "dense"},
        "softening": {"mode_fraction": 0.05, "continuation_steps": 2, "path_mode_fraction": 0.05}})
    store = run_on_a_quench(SofteningJob, tmp_path, positions, cell, types, "softening", {
        **params, "quench_key": "q", "potential": POTENTIAL, "directions": ["xy", "-xy"]})
    out = records.read_checked(store, "k", ("features", "gamma_star", "gamma_path", "gamma_upper"))
    assert out["features"].shape == (2, len(types), 3)
    path = follow(pot, S.smooth_potential(pot), positions, cell, types, "-xy", modes.n_low_modes(len(types), 0.05),
                  2, "dense")  # the path's modes those of the first order here, so that both start alike
    assert out["gamma_path"][1] == pytest.approx(path.estimate, rel=1e-6) and out["gamma_upper"][1] == path.upper
    np.testing.assert_allclose(out["features"][1, :, 2], modes.participation_fractions(path.psi), atol=1e-7)
    assert path.predictions[0] == pytest.approx(out["gamma_star"][1], rel=1e-6)
    assert out["gamma_path"][0] != out["gamma_path"][1]


def test_the_reports_onset_section_pairs_each_graphs_prediction_with_its_first_event(tmp_path):
    """Predictions and measured strains paired by (specimen, direction), a shear without an event left out,
    a prediction of no crossing kept (ranked last); a perfect prediction has Spearman +1 and ratio 1."""
    from types import SimpleNamespace

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import zarr

    from campaign import onset
    from campaign.config import load
    from campaign.report import Report
    from store import layout

    root = zarr.open_group(str(tmp_path / "s.zarr"), mode="w")
    cfg = load("smoke")
    cfg["softening"]["continuation_steps"] = 3  # the tasks hold the path's strain too
    row = cfg["labels"]["thresholds_A2"].index(cfg["train"]["threshold_A2"])
    tasks, rng = [], np.random.default_rng(0)
    directions = ("xy", "-xy", "xz")
    for k in range(4):
        strains = rng.uniform(0.002, 0.04, 3)
        strains[2] = np.nan if k == 0 else strains[2]  # no event at this threshold
        g = root.require_group(f"soft{k}")
        layout.write_arrays(g, {"gamma_star": strains.copy(), "gamma_min": 2 * strains, "gamma_path": -strains})
        tasks.append(SimpleNamespace(STAGE="softening", specimen=k, directions=directions, path=g.path))
        for d, strain in zip(directions, strains):
            lab = root.require_group(f"lab{k}{d}")
            first = np.full(len(cfg["labels"]["thresholds_A2"]), np.nan)
            first[row] = strain
            layout.write_arrays(lab, {"first_strain": first})
            tasks.append(SimpleNamespace(STAGE="labels", specimen=k, direction=d, path=lab.path))
    data = SimpleNamespace(root=root, of=lambda stage: [t for t in tasks if t.STAGE == stage],
                           group=lambda t: root[t.path])
    p = onset.pairs(data, cfg)
    assert len(p["first_strain"]) == 11 and np.array_equal(p["gamma_star"], p["first_strain"])
    rep = Report(str(tmp_path / "report"), "stamp")
    onset.section(rep, data, cfg, plt)
    line = next(line for line in rep.md if line.startswith("| γ* (subspace crossing"))
    assert line.split(" | ")[1:2] == ["+1.00"] and " | 1.00 | 1.00 | 0 |" in line
    line = next(line for line in rep.md if line.startswith("| γ_path"))  # ranks them the other way
    assert line.split(" | ")[1:2] == ["-1.00"]
    assert (tmp_path / "report" / "softening_onset.png").exists()

