"""Jobs: every task as a program, ``mpiexec -n RANKS python -m jobs SPEC``.

A job declares the params it reads as a frozen dataclass (``Params``, built by ``jobs.common.Params.of``
from the spec: a missing, undeclared or mistyped name is an error), reads its inputs from the store through
their records (checked against their sha256),
computes, writes its own group and then its record from rank 0, with the resource usage of
every rank that ran it. The MD jobs (liquid, quench, shear, elastic, lys: ``Job.EVERY_RANK``)
run LAMMPS on an explicit mpi4py communicator through ``jobs.lmp``, the one seam to it; the
compute jobs (labels, structure, response, softening, graph, learning, baselines) never import LAMMPS,
not even through ``python -m jobs``: it must not share a process with OVITO or freud, and a
GPU node need not have it.
"""
