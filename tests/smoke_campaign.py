"""The smoke campaign as the slow tests drive it: launches, records, arrays, processes."""
import re
import shutil
import subprocess
import sys

import psutil
import zarr

from campaign import config, plan
from store import records as store_records


def launch(store, *extra, timeout=900):
    return subprocess.run([sys.executable, "-m", "campaign", "launch", "--store", str(store), "--cores", "2", *extra],
                          capture_output=True, text=True, timeout=timeout)


def records(store):
    return store_records.read_all(str(store))


def arrays(store):
    out = {}
    root = zarr.open_group(str(store), mode="r")
    for path, arr in root.members(max_depth=None):
        if isinstance(arr, zarr.Array):
            out[path] = arr[...]
    return out


def group(store, stage, **match):
    """The data group of the smoke plan's task of ``stage`` with the given fields, through its record."""
    task = next(t for t in plan.plan(config.load("smoke", overrides={"store": str(store)}))
                if t.STAGE == stage and all(getattr(t, k) == v for k, v in match.items()))
    return zarr.open_group(str(store), mode="r")[records(store)[task.key]["path"]]


def survivors(store):
    """Processes whose command line names the store: workers, mpiexec, LAMMPS ranks."""
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(str(store) in part for part in (p.info["cmdline"] or [])):
                found.append(p)
        except psutil.Error:
            pass
    return found


def copy_of(store, tmp_path, name):
    copy = tmp_path / name
    shutil.copytree(store, copy)
    return copy


def stages_run(stdout: str) -> list[str]:
    """The stage of every task a launch printed as done ('[ 12/138] done   shear s000 xy ...')."""
    return re.findall(r"^\[\s*\d+/\d+\] done\s+(\S+)", stdout, flags=re.MULTILINE)
