"""Task records: the store's only notion of what is done.

A task writes its data first and its record last. A record is the attribute
set of the Zarr group ``tasks/<key>``, written in one atomic file write, so
a killed task leaves either no record or a whole one.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
import warnings

import numpy as np
import zarr

DONE, FAILED = "done", "failed"


def _meta_path(store_path: str, key: str) -> str:
    return os.path.join(store_path, "tasks", key, "zarr.json")


def checksums(g: zarr.Group) -> dict[str, str]:
    """sha256 of every array's bytes under group g, read back from the store."""
    out = {}
    for path, arr in sorted(g.arrays()):
        out[path] = hashlib.sha256(np.ascontiguousarray(arr[...]).tobytes()).hexdigest()
    for name, sub in sorted(g.groups()):
        out.update({f"{name}/{p}": h for p, h in checksums(sub).items()})
    return out


def write(store_path: str, key: str, status: str, code_version: str, **fields) -> dict:
    """Write the record of task ``key``; returns it."""
    record = {"key": key, "status": status, "code_version": code_version,
              "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": socket.gethostname(), **fields}
    root = zarr.open_group(store_path, mode="r+")
    root.require_group("tasks").create_group(key, attributes=record, overwrite=True)
    return record


def _read(store_path: str, key: str) -> dict | None:
    path = _meta_path(store_path, key)
    try:
        with open(path) as f:
            return json.load(f)["attributes"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as e:
        warnings.warn(f"ignoring unreadable task record {path} ({e}); the task will run again")
        return None


def read_all(store_path: str) -> dict[str, dict]:
    """Every readable record by key; an unreadable one is reported and treated as absent."""
    d = os.path.join(store_path, "tasks")
    keys = [n for n in os.listdir(d) if os.path.isdir(os.path.join(d, n))] if os.path.isdir(d) else []
    return read_all_keys(store_path, keys)


def read_all_keys(store_path: str, keys: list[str]) -> dict[str, dict]:
    """Records of the given keys that exist and are readable."""
    out = {}
    for key in keys:
        rec = _read(store_path, key)
        if rec is not None and "status" in rec:
            out[key] = rec
    return out


def remove(store_path: str, key: str) -> None:
    shutil.rmtree(os.path.dirname(_meta_path(store_path, key)), ignore_errors=True)
