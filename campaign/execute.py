"""Run one task as an MPI program; called on a Dask worker, returns the outcome as data."""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

from campaign.outcome import Outcome
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

    A spec may stand for several tasks (``members``, e.g. the stacked folds of a grid
    point), each with its own record. Returns its ``Outcome``; never raises for a failed
    job: every member that did not finish has a failure record when this returns.
    """
    store, key = spec["store"], spec["key"]
    members = spec.get("members", [key])
    recs = records.read_all_keys(store, members)
    if all(recs.get(m, {}).get("status") == records.DONE for m in members):
        # Dask re-ran a task whose record was written before its worker died: nothing to do
        return Outcome.done(recs, members, 0.0)
    out_path = layout.log_path(store, f"{spec['stage']}-{key}.out")
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    for member in members:
        records.remove(store, member)  # an earlier failure's record must not speak for this run
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
    with contextlib.suppress(FileNotFoundError):  # a job's progress ends with it, however it ended
        os.remove(layout.progress_path(store, key))
    recs = records.read_all_keys(store, members)
    done = {m: recs.get(m, {}).get("status") == records.DONE for m in members}
    if all(done.values()):  # every record written: done, whatever the launcher's exit status
        return Outcome.done(recs, members, seconds)
    if code != -1:
        with open(out_path, errors="replace") as f:
            reason = f"exit status {code}; output ends:\n{f.read()[-TAIL:]}"
    for m in members:
        if not done[m] and m not in recs:
            recs[m] = records.write(store, m, records.FAILED, spec["code_version"], stage=spec["stage"],
                                    reason=reason)
    failed = [m for m in members if not done[m]]
    return Outcome.failed({m: records.DONE if done[m] else records.FAILED for m in members}, seconds,
                          recs[failed[0]].get("reason", reason),
                          {k for m in failed for k in recs[m].get("damaged_inputs", [])})
