"""Task records: the store's only notion of what is done.

A task writes its data first and its record last. A record is the attribute set of
the Zarr group ``tasks/<key>``: its ``zarr.json`` is written to a temporary file and
moved into place with ``os.replace``, so a killed task leaves either no record or a
whole one, on every Zarr version. A done record names the group of the task's data
(``path``), the task's parameters (``params``) and a sha256 of every array it wrote
(``checksums``), so it can prove which data it describes: :func:`damage` re-reads them.

A record found damaged (by ``campaign verify``, or by a job reading its input) is moved
to ``damaged/<key>``: the task counts as not done, and the next launch runs it again.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import warnings

import numpy as np
import zarr

from store import layout

DONE, FAILED = "done", "failed"
TASKS, DAMAGED = "tasks", "damaged"


def _meta_path(store_path: str, key: str, where: str = TASKS) -> str:
    return os.path.join(store_path, where, key, "zarr.json")


def _write_json(path: str, attributes: dict) -> None:
    """A Zarr v3 group's metadata, written whole or not at all."""
    layout.write_json(path, {"zarr_format": 3, "node_type": "group", "attributes": attributes})


def checksums(g: zarr.Group) -> dict[str, str]:
    """sha256 of every array's bytes under group g, read back from the store."""
    out = {}
    for path, arr in sorted(g.arrays()):
        out[path] = digest(layout.read_array(arr, f"{g.path}/{path}"))
    for name, sub in sorted(g.groups()):
        out.update({f"{name}/{p}": h for p, h in checksums(sub).items()})
    return out


def digest(data: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest()


def write(store_path: str, key: str, status: str, code_version: str, **fields) -> dict:
    """Write the record of task ``key``; returns it."""
    record = {"key": key, "status": status, "code_version": code_version,
              "time": layout.timestamp(), "host": socket.gethostname(), **fields}
    _write_json(_meta_path(store_path, key), json.loads(json.dumps(record)))
    if status == DONE:
        clear_damaged(store_path, key)
    return record


def _read(store_path: str, key: str, where: str = TASKS) -> dict | None:
    path = _meta_path(store_path, key, where)
    try:
        with open(path) as f:
            return json.load(f)["attributes"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as e:
        warnings.warn(f"ignoring unreadable task record {path} ({e}); the task will run again", stacklevel=2)
        return None


def read(store_path: str, key: str) -> dict | None:
    """The record of ``key``, or None."""
    rec = _read(store_path, key)
    return rec if rec is not None and "status" in rec else None


def _keys(store_path: str, where: str) -> list[str]:
    d = os.path.join(store_path, where)
    return [n for n in os.listdir(d) if os.path.isdir(os.path.join(d, n))] if os.path.isdir(d) else []


def read_all(store_path: str) -> dict[str, dict]:
    """Every readable record by key; an unreadable one is reported and treated as absent."""
    return read_all_keys(store_path, _keys(store_path, TASKS))


def read_all_keys(store_path: str, keys: list[str]) -> dict[str, dict]:
    """Records of the given keys that exist and are readable."""
    out = {}
    for key in keys:
        rec = read(store_path, key)
        if rec is not None:
            out[key] = rec
    return out


def remove(store_path: str, key: str) -> None:
    shutil.rmtree(os.path.dirname(_meta_path(store_path, key)), ignore_errors=True)


def damage(store_path: str, record: dict) -> list[str]:
    """What is wrong with a done record's data: one line per array that is missing, unreadable
    (a failed chunk checksum) or not the bytes the record's sha256 names. Empty: sound."""
    try:
        g = layout.group(layout.open_root(store_path), record["path"])
    except layout.StoreError as e:
        return [str(e)]
    problems = []
    for name, want in sorted(record.get("checksums", {}).items()):
        try:
            data = layout.read_array(g[name], f"{record['path']}/{name}")
        except KeyError:
            problems.append(f"array '{record['path']}/{name}' is missing")
            continue
        except layout.StoreError as e:
            problems.append(str(e))
            continue
        if digest(data) != want:
            problems.append(f"array '{record['path']}/{name}' is not the data its record describes (sha256 differs)")
    return problems


class Damaged(layout.StoreError):
    """A done task's data is not what its record describes; ``problems`` says how."""

    def __init__(self, key: str, problems: list[str]):
        self.key, self.problems = key, problems
        super().__init__(f"the data of task {key} is damaged: {'; '.join(problems)}")

    def __reduce__(self):  # picklable with its fields (Dask and MPI move exceptions between processes)
        return type(self), (self.key, self.problems)


def read_checked(store_path: str, key: str, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Arrays ``names`` of the done task ``key``'s data, each checked against the record's sha256.
    StoreError if the task is not done; Damaged if its data is not what its record describes."""
    rec = read(store_path, key)
    if rec is None or rec["status"] != DONE:
        raise layout.StoreError(f"task {key} has no completion record in {store_path}")
    unlisted = [n for n in names if n not in rec.get("checksums", {})]
    if unlisted:  # asked for what the task never wrote: a mistake of the reader, not damage
        raise layout.StoreError(f"task {key} ({rec.get('stage')}) wrote no array {', '.join(unlisted)}")
    problems = []
    try:
        data = layout.read(layout.open_root(store_path), rec["path"], names)
    except layout.StoreError as e:
        data, problems = {}, [str(e)]
    for name, value in data.items():
        if digest(value) != rec.get("checksums", {}).get(name):
            problems.append(f"array '{rec['path']}/{name}' is not the data its record describes (sha256 differs)")
    if problems:
        raise Damaged(key, problems)
    return data


def move_aside(store_path: str, key: str, problems: list[str]) -> None:
    """Retire a done record whose data is damaged: it moves to ``damaged/<key>`` with the problems,
    so the task counts as not done and the next launch runs it again."""
    rec = _read(store_path, key)
    if rec is None:
        return
    parent = os.path.join(store_path, DAMAGED, "zarr.json")
    if not os.path.exists(parent):
        _write_json(parent, {})
    _write_json(_meta_path(store_path, key, DAMAGED), {**rec, "damage": problems,
                                                       "found": layout.timestamp()})
    remove(store_path, key)


def damaged(store_path: str) -> dict[str, dict]:
    """Records moved aside as damaged, by key (a task run again since then keeps its entry
    here until it is done again; ``status`` shows only those not done)."""
    out = {}
    for key in _keys(store_path, DAMAGED):
        rec = _read(store_path, key, DAMAGED)
        if rec is not None:
            out[key] = rec
    return out


def clear_damaged(store_path: str, key: str) -> None:
    shutil.rmtree(os.path.dirname(_meta_path(store_path, key, DAMAGED)), ignore_errors=True)
