"""LAMMPS's view of the test systems that several test modules share: the potential file, a 256-atom
Cu64Zr36 glass-like configuration (random, minimum distance 2 Å, density 0.06 /Å³, slightly triclinic box,
minimised by LAMMPS CG), a 501-atom fcc Cu crystal with a <100> split-dumbbell self-interstitial, and the
potential with an asymmetric density table. LAMMPS runs in a subprocess, once a session: no test process
imports lammps (freud segfaults when loaded after it). The fixtures are registered by conftest.py."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from kernels.eam import parse_eam_fs

# The head of a driver script run in a fresh interpreter: numpy, MPI before LAMMPS, and
# open_lammps(positions, cell, types, potential, *more commands) -> an instance holding the Cu-Zr glass.
OPEN_LAMMPS = r"""
import sys
import numpy as np
import mpi4py.MPI  # noqa: F401  (MPI before LAMMPS)
import lammps


def open_lammps(positions, cell, types, potential, *commands):
    (lx, _, _), (xy, ly, _), (xz, yz, lz) = cell.tolist()
    lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    for line in ["units metal", "atom_style atomic", "atom_modify map array", "boundary p p p",
                 f"region box prism 0 {lx!r} 0 {ly!r} 0 {lz!r} {xy!r} {xz!r} {yz!r}", "create_box 2 box"]:
        lmp.command(line)
    n = len(positions)
    lmp.create_atoms(n, list(range(1, n + 1)), types.tolist(), positions.ravel().tolist())
    for line in ["pair_style eam/fs", f"pair_coeff * * {potential} Cu Zr", "neighbor 1.0 bin",
                 "neigh_modify delay 0 every 1 check yes", *commands]:
        lmp.command(line)
    return lmp
"""


def _potential_path():
    spec = importlib.util.find_spec("lammps")           # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "share", "lammps", "potentials",
                        "CuZr_mm.eam.fs")
    return path if os.path.exists(path) else None


POTENTIAL = _potential_path()

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


def setfl_text(pot, rhor):
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


@pytest.fixture(scope="session")
def pot():
    with open(POTENTIAL) as f:
        return parse_eam_fs(f.read())


@pytest.fixture(scope="session")
def asymmetric(pot, tmp_path_factory):
    """(path, EamFs) of the potential with f_{Cu→Zr} (Cu block, Zr array) scaled by 1.25: in the
    distributed file f_{Cu→Zr} = f_{Zr→Cu}, which cannot tell the density-index convention apart."""
    rhor = pot.rhor.copy()
    rhor[0, 1] *= 1.25
    text = setfl_text(pot, rhor)
    path = tmp_path_factory.mktemp("potential") / "CuZr_asym.eam.fs"
    path.write_text(text)
    return str(path), parse_eam_fs(text)


@pytest.fixture(scope="session")
def lammps_runs(asymmetric, tmp_path_factory):
    """One LAMMPS subprocess for every system, once a session: {job/key: array}, plus the inputs."""
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


def glass_of(lammps_runs, tag="min"):
    """(positions, cell, types) of the glass, at the start or at LAMMPS's minimum."""
    positions = lammps_runs["glass/positions"] if tag == "start" else lammps_runs[f"glass/{tag}_x"]
    return positions, lammps_runs["glass/cell"], lammps_runs["glass/types"]
