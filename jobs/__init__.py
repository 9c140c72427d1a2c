"""LAMMPS jobs: the only package that talks to LAMMPS.

Each job is an MPI program (``python -m jobs SPEC``) that reads its inputs
from the store, runs LAMMPS on an explicit mpi4py communicator, and writes
its results and then its completion record from rank 0.
"""
