"""The slurm tier's SLURM: the settings of its worker jobs, a tiny campaign, the queue, and the session
fixture ``slurm`` (registered by conftest.py) that probes the cluster once, when a slurm test first runs:
it skips the test where no SLURM answers, and fails it where .ci/run started one (STZ_REQUIRE_SLURM)."""
import os
import shutil
import subprocess

import pytest

SLURM = {"interface": "lo", "cores": 2, "jobs": 1, "memory": "4GB", "walltime": "00:30:00",
         "worker_lifetime_margin": "1m"}

TINY = {  # one 250-atom liquid: a job of seconds
    "system": {"n_atoms": 250},
    "liquid": {"discard_ps": 1.0, "equilibration_ps": 5.0, "snapshot_interval_ps": 1.0},
    "quench": {"specimens": 5, "rate_K_per_s": 1.0e15},
}


def unavailable() -> str | None:
    """Why the tests cannot run on this machine's SLURM, or None when they can."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "no SLURM here: sinfo/sbatch not on PATH (start one with: bash .ci/slurm.sh up)"
    res = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    if res.returncode != 0:
        return f"sinfo fails ({res.stderr.strip()}): is slurmctld running? (bash .ci/slurm.sh up)"
    if "idle" not in res.stdout.split():
        return f"no idle SLURM node (sinfo: {' '.join(res.stdout.split()) or 'no nodes'})"
    cpus = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True).stdout.split()
    if max((int(c.rstrip("+")) for c in cpus), default=0) < SLURM["cores"]:
        return f"the tests' worker jobs need a node of {SLURM['cores']} CPUs; sinfo says {' '.join(cpus)}"
    return None


@pytest.fixture(scope="session")
def slurm() -> dict:
    """SLURM's worker-job settings, once the cluster answered (probed once a session)."""
    reason = unavailable()
    if reason and os.environ.get("STZ_REQUIRE_SLURM"):  # CI started a cluster: its absence is a failure
        pytest.fail(f"STZ_REQUIRE_SLURM is set but {reason}", pytrace=False)
    if reason:
        pytest.skip(reason)
    return SLURM


def squeue() -> list[tuple[str, str, str]]:
    """(job id, name, state) of every job in the queue."""
    out = subprocess.run(["squeue", "-h", "-o", "%i %j %T"], capture_output=True, text=True).stdout
    return [tuple(line.split()) for line in out.splitlines() if line.strip()]
