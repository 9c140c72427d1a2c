"""Run one job as an MPI program: ``mpiexec -n RANKS python -m jobs 'SPEC_JSON'``.

Exit status 0: done (record written). 3: the job failed and wrote a failure
record with its reason. Anything else: a crash the campaign records itself.
"""
from __future__ import annotations

import ctypes
import importlib
import json
import signal
import sys
import traceback


def _die_with_parent() -> None:
    """Linux: end this rank if the process that started it (mpiexec's proxy) dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def main(argv: list[str]) -> int:
    _die_with_parent()
    from mpi4py import MPI

    from jobs.common import DamagedInput, Spec
    from store import records
    from store.layout import StoreError

    spec = Spec(**json.loads(argv[1]))
    comm = MPI.COMM_WORLD
    damaged = []  # inputs found not to be what their records describe
    try:
        module, name = spec.job.split(":")  # named by the task's class (campaign.tasks)
        job = getattr(importlib.import_module(module), name)(spec, comm)
        job.run()
        return 0
    except DamagedInput as e:
        reason, damaged = f"{type(e).__name__}: {e}", [e.key]
    except (StoreError, RuntimeError) as e:  # incl. jobs.lmp.LammpsFailure (not imported: no LAMMPS needed)
        reason = f"{type(e).__name__}: {e}"
    except Exception:
        reason = traceback.format_exc(limit=5)
    if comm.Get_rank() == 0:
        written = records.read_all_keys(spec.store, spec.members)
        for key in spec.members:
            if written.get(key, {}).get("status") != records.DONE:
                records.write(spec.store, key, records.FAILED, spec.code_version, stage=spec.stage, reason=reason,
                              damaged_inputs=damaged)
        print(reason, file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv))
