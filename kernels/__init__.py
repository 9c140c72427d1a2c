"""Pure numerical functions of arrays: no I/O, no LAMMPS."""
