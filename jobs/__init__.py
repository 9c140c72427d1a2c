"""Jobs: every task as a program, ``mpiexec -n RANKS python -m jobs SPEC``.

A job reads its inputs from the store through their records (checked against their sha256),
computes, writes its own group and then its record from rank 0. The MD jobs (liquid, quench,
shear, elastic) run LAMMPS on an explicit mpi4py communicator through ``jobs.lmp``, the one
seam to it; the compute jobs (labels, structure, graph, learning, baselines) never import
LAMMPS, which must not share a process with OVITO or freud.
"""
