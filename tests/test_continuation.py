"""kernels.continuation: the softening followed along the quasi-static path, against a LAMMPS AQS run."""
import subprocess
import sys

import numpy as np
import pytest

from kernels import continuation as C
from kernels import modes
from kernels.response import sheared
from kernels.softening import smooth_potential

from lammps_systems import OPEN_LAMMPS, POTENTIAL, glass_of  # the fixtures pot and lammps_runs: conftest.py

pytestmark = pytest.mark.skipif(POTENTIAL is None, reason="LAMMPS (with CuZr_mm.eam.fs) not installed")

DIRECTION = "xy"

# argv[1]: input .npz (positions, cell, types, potential, boxes (S,3,3)); argv[2]: output .npz with x (S,N,3)
# and the energy (S,) of each AQS step, each minimised from the last (a real AQS run: change_box remaps).
AQS_DRIVER = OPEN_LAMMPS + r"""
data = dict(np.load(sys.argv[1]))
lmp = open_lammps(data["positions"], data["cell"], data["types"].astype(int), data["potential"], "min_style cg",
                  "thermo_style custom step pe")
xs, energies = [], []
for box in data["boxes"]:
    (_, _, _), (bxy, _, _), (bxz, byz, _) = box.tolist()
    lmp.command(f"change_box all xy final {bxy!r} xz final {bxz!r} yz final {byz!r} remap units box")
    lmp.command("minimize 0 1e-10 100000 1000000")
    nlocal = lmp.extract_global("nlocal")
    order = np.argsort(np.array(lmp.numpy.extract_atom("id")[:nlocal]))
    xs.append(np.array(lmp.numpy.extract_atom("x")[:nlocal])[order])
    energies.append(lmp.get_thermo("pe"))
np.savez(sys.argv[2], x=np.array(xs), energy=np.array(energies))
"""


def _lammps_aqs(tmp_path, positions, cell, types, strains):
    """LAMMPS's minimised positions (S,N,3) Å and energies (S,) eV along an AQS run through ``strains``."""
    boxes = np.array([sheared(positions, cell, DIRECTION, g)[1] for g in strains])
    np.savez(tmp_path / "in.npz", positions=positions, cell=cell, types=types, potential=np.array(POTENTIAL),
             boxes=boxes)
    subprocess.run([sys.executable, "-c", AQS_DRIVER, str(tmp_path / "in.npz"), str(tmp_path / "out.npz")],
                   check=True, timeout=300, cwd=tmp_path)
    out = dict(np.load(tmp_path / "out.npz"))
    return out["x"], out["energy"]


def _non_affine_jump(x, strains, cell):
    """The largest non-affine displacement of an atom (S-1,) Å between consecutive AQS steps, images unwrapped."""
    jumps = []
    for k in range(1, len(strains)):
        affine = sheared(x[k - 1], sheared(x[0], cell, DIRECTION, strains[k - 1])[1], DIRECTION,
                         strains[k] - strains[k - 1])
        d = x[k] - affine[0]
        s = d @ np.linalg.inv(affine[1])
        d = (s - np.round(s)) @ affine[1]
        jumps.append(np.linalg.norm(d - d.mean(axis=0), axis=1).max())
    return np.array(jumps)


@pytest.fixture(scope="module")
def path(pot, lammps_runs):
    positions, cell, types = glass_of(lammps_runs)
    followed = C.follow(pot, smooth_potential(pot), positions, cell, types.astype(int), DIRECTION,
                        modes.n_low_modes(len(types), 0.05), steps=8, eigensolver="dense")
    return positions, cell, types.astype(int), followed


@pytest.mark.slow
def test_the_followed_path_brackets_the_first_instability_of_a_lammps_aqs_run(path, tmp_path):
    """LAMMPS shears the glass in steps of 1e-4 past the estimate: its first jump (an atom moving > 0.1 Å
    non-affinely in one step) comes within one step of the followed estimate, inside the bracket; the
    first-order prediction, from the unstrained glass, lies further off."""
    positions, cell, types, followed = path
    assert np.isfinite(followed.estimate) and len(followed.strains) >= 2
    step = 1e-4
    strains = np.arange(0.0, 1.5 * followed.estimate + 5 * step, step)
    x, _ = _lammps_aqs(tmp_path, positions, cell, types, strains)
    jumps = _non_affine_jump(x, strains, cell)
    assert jumps[:3].max() < 0.01  # elastic at first
    first = strains[1 + np.argmax(jumps > 0.1)]
    assert (jumps > 0.1).any(), "no event in the LAMMPS run"
    assert followed.strains[-1] <= first + step and first - step <= followed.upper
    assert abs(followed.estimate - first) <= 1.5 * step, (followed.estimate, first)
    assert abs(followed.predictions[0] - first) > abs(followed.estimate - first)


@pytest.mark.slow
def test_the_paths_last_equilibrium_is_the_state_lammps_aqs_reaches(path, tmp_path, pot):
    """Newton's equilibrium nearest the instability is LAMMPS's AQS minimum at the same strain (reached
    through the path's strains), to 1e-4 Å; the lowest eigenvalue has fallen along the path towards it."""
    positions, cell, types, followed = path
    x, _ = _lammps_aqs(tmp_path, positions, cell, types, np.array(followed.strains))
    masses = pot.masses[types - 1]
    d = followed.positions - x[-1]
    s = d @ np.linalg.inv(sheared(positions, cell, DIRECTION, followed.strains[-1])[1])
    d = (s - np.round(s)) @ sheared(positions, cell, DIRECTION, followed.strains[-1])[1]
    d -= np.average(d, axis=0, weights=masses)  # the centre of mass: free
    assert np.abs(d).max() < 1e-4, np.abs(d).max()
    assert followed.lowest[-1] < 0.5 * followed.lowest[0]  # not monotonic: other modes cross on the way


def test_newton_relaxes_a_perturbed_glass_back_to_its_minimum(pot, lammps_runs):
    positions, cell, types = glass_of(lammps_runs)
    types = types.astype(int)
    masses = pot.masses[types - 1]
    kicked = positions + np.random.default_rng(1).normal(0, 0.01, positions.shape)
    relaxed, converged, iterations = C.newton_relax(pot, kicked, cell, types, masses)
    assert converged and iterations <= 6
    shift = (relaxed - positions) - np.average(relaxed - positions, axis=0, weights=masses)
    assert np.abs(shift).max() < 1e-5
