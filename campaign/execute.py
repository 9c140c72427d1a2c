"""Run one task as an MPI program; called on a Dask worker, returns the outcome as data."""
from __future__ import annotations

import ctypes
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

from store import layout, records

TAIL = 3000  # characters of a crashed job's output kept in its failure record


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the worker thread that started it dies (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def launcher_command(launcher: str) -> list[str]:
    """The MPI launcher as argv; 'mpiexec' is looked up beside this Python first (the mpich wheel)."""
    argv = shlex.split(launcher)
    if argv[0] == "mpiexec":
        beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
        argv[0] = beside if os.path.exists(beside) else (shutil.which("mpiexec") or "mpiexec")
    return argv


def execute(spec: dict, ranks: int, threads: int, launcher: str) -> dict:
    """Run ``python -m jobs SPEC`` under ``launcher -n ranks``.

    Returns {"key", "status": "done"|"failed", "seconds", "reason"}; never raises for a
    failed job, which has a failure record in the store when this returns.
    """
    store, key = spec["store"], spec["key"]
    out_path = layout.log_path(store, f"{spec['stage']}-{key}.out")
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    records.remove(store, key)  # an earlier failure's record must not speak for this run
    cmd = [*launcher_command(launcher), "-n", str(ranks), sys.executable, "-m", "jobs", json.dumps(spec)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    t0 = time.time()
    with open(out_path, "w") as out:
        try:
            code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                  preexec_fn=_die_with_parent).returncode
        except OSError as e:
            code, reason = -1, f"cannot start {cmd[0]}: {e}"
    seconds = round(time.time() - t0, 3)
    rec = records.read_all_keys(store, [key]).get(key)
    if code == 0 and rec and rec["status"] == records.DONE:
        return {"key": key, "status": records.DONE, "seconds": seconds, "summary": rec.get("summary", {})}
    if rec is None or rec["status"] != records.FAILED:
        with open(out_path, errors="replace") as f:
            tail = f.read()[-TAIL:]
        reason = f"exit status {code} without a record; output ends:\n{tail}" if code != -1 else reason
        rec = records.write(store, key, records.FAILED, spec["code_version"], stage=spec["stage"], reason=reason)
    return {"key": key, "status": records.FAILED, "seconds": seconds, "reason": rec["reason"]}
