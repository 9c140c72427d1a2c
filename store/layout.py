"""Where everything lives in the campaign's Zarr v3 store, and how it is written.

Layout 2. A task's data lives in a group named by its key, under a readable place:

    liquid/<key>                          the liquid task
    specimens/s{k:03d}/quenched/<key>     quench of specimen k
    specimens/s{k:03d}/shear/{d}/<key>    AQS shear of specimen k in direction d
    specimens/s{k:03d}/labels/{d}/<key>   first-event labels of that shear
    specimens/s{k:03d}/structure/<key>    Voronoi cells and participation fractions
    specimens/s{k:03d}/elastic/<key>      per-atom stress and stiffness
    specimens/s{k:03d}/response/<key>     its linear response to each shear
    specimens/s{k:03d}/softening/<key>    its mode softening under each shear
    specimens/s{k:03d}/lys/{d}/r{i}/<key> local yield stress of its regions i, i+1, ... sheared in d
    specimens/s{k:03d}/graphs/{d}/<key>   the graph of specimen k sheared in d
    training/{cv,final,baseline,compare}/.../<key>
    tasks/<key>                           the task's record (store.records)

so no two tasks ever write the same group, and a task's data can only be read on
behalf of the key that wrote it. Every chunk carries a crc32c checksum: a damaged
chunk fails its read with a StoreError naming the array and the chunk. Chunk keys
are flat (``c.0.0``, no nested directories), and per-step arrays are sharded: one
file holds many strain steps (see :class:`StepWriter`).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import time
import uuid
from typing import Any, Literal

import numpy as np
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

LAYOUT_VERSION = 2
FLAT_KEYS: dict[str, Any] = {"name": "default", "separator": "."}  # c.0.0 files, not c/0/0 directories
SHARD_BYTES = 64 * 2**20  # uncompressed bytes of one shard of a per-step array (an upper bound)
ROW_CHUNK_BYTES = 4096  # per-step rows at least this large are inner chunks of their own


class StoreError(RuntimeError):
    """The store is missing, corrupt, or lacks data a task needs; the message names it."""


def open_root(path: str, mode: Literal["r", "r+", "a", "w", "w-"] = "r") -> zarr.Group:
    """The store's root group; StoreError if it is missing, broken, or of another layout."""
    try:
        root = zarr.open_group(path, mode=mode)
    except Exception as e:  # zarr raises several types for a missing or broken group
        raise StoreError(f"cannot open the Zarr store {path}: {e}") from None
    check_layout(path, root.attrs.get("layout"))
    return root


def check_layout(path: str, found) -> None:
    """StoreError unless a store's ``layout`` attribute is this code's (None: a new store)."""
    if found is not None and found != LAYOUT_VERSION:
        raise StoreError(f"{path} has store layout {found}; this code reads and writes layout {LAYOUT_VERSION} "
                         "(data bound to task keys, checksummed chunks). Launch into a new store (--store)")


def beside(store_path: str, suffix: str) -> str:
    """A folder beside the store: ``smoke.zarr`` -> ``smoke<suffix>`` (``.logs``, ``.report``, ``.export``)."""
    base = os.path.abspath(store_path).rstrip(os.sep)
    return (base[:-5] if base.endswith(".zarr") else base) + suffix


def _beside(store_path: str, suffix: str, name: str) -> str:
    return os.path.join(beside(store_path, suffix), name)


def log_path(store_path: str, name: str) -> str:
    """LAMMPS logs and job output live beside the store: ``smoke.zarr`` -> ``smoke.logs/NAME``."""
    return _beside(store_path, ".logs", name)


def progress_path(store_path: str, job_key: str) -> str:
    """Where a running job says how far it is: ``smoke.logs/progress/<job key>.json``."""
    return _beside(store_path, ".logs", os.path.join("progress", f"{job_key}.json"))


def running_path(store_path: str) -> str:
    """The launcher's list of the jobs it is running now: ``smoke.logs/running.json``."""
    return _beside(store_path, ".logs", "running.json")


def timestamp() -> str:
    """Local time as records, the lock and the store's index write it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def write_json(path: str, data) -> None:
    """A small JSON file written whole or not at all (a temporary file moved into place)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"  # unique across hosts sharing the file system
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


# A write killed half-way leaves its temporary file: Zarr's ``<name>.<hex>.partial``, ours ``<name>.<hex>.tmp``.
LEFTOVER = re.compile(r"\.[0-9a-f]{32}\.(partial|tmp)$")


def remove_leftovers(path: str) -> int:
    """Delete the temporary files of killed writes under directory ``path``; returns how many.

    Only where no live process writes (the launcher, holding the lock, after its jobs ended; a job
    in its own task's group): the files are otherwise harmless, but Zarr warns at each one it lists."""
    removed = 0
    for folder, subfolders, files in os.walk(path):
        if "launch_lock" in subfolders:  # the lock's heartbeat writes there while the launcher runs
            subfolders.remove("launch_lock")
        for name in files:
            if LEFTOVER.search(name):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(folder, name))
                    removed += 1
    return removed


def read_json(path: str):
    """A file of :func:`write_json`, or None if it is absent or unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def checkpoint_path(store_path: str, name: str) -> str:
    """A running task's restart file, beside the store: ``smoke.zarr`` -> ``smoke.checkpoints/NAME``.
    Named by the task's key, so it can only resume that task; removed when the task finishes."""
    return _beside(store_path, ".checkpoints", name)


# --- places: where a stage keeps its tasks' groups -------------------------------

def task_path(place: str, key: str) -> str:
    """The group of the task with ``key``: its place, then its key."""
    return f"{place}/{key}"


# --- reading ---------------------------------------------------------------------

def group(root: zarr.Group, path: str) -> zarr.Group:
    """An existing group, or StoreError naming it."""
    try:
        node = root[path]
    except KeyError:
        raise StoreError(f"store {root.store}: group '{path}' is missing") from None
    if not isinstance(node, zarr.Group):
        raise StoreError(f"store {root.store}: '{path}' is not a group")
    return node


def damaged_chunk(arr: zarr.Array) -> tuple | None:
    """Index of the first chunk (a shard, for a sharded array: one file either way) of ``arr``
    that cannot be read (a failed checksum), or None."""
    files = arr.shards or arr.chunks  # the shape of what one file holds
    grid = [max(1, math.ceil(s / c)) for s, c in zip(arr.shape, files)]
    for index in np.ndindex(*grid):
        region = tuple(slice(i * c, (i + 1) * c) for i, c in zip(index, files))
        try:
            arr[region]
        except Exception:
            return index
    return None


def read_array(arr: zarr.Array | zarr.Group, where: str) -> np.ndarray:
    """All of ``arr``; StoreError naming ``where`` and the damaged chunk if a read fails (or a group
    stands where the array should)."""
    if not isinstance(arr, zarr.Array):
        raise StoreError(f"'{where}' is a group, not an array")
    try:
        return np.asarray(arr[...])
    except Exception as e:
        chunk = damaged_chunk(arr)
        at = f" (chunk file c.{'.'.join(map(str, chunk))})" if chunk is not None else ""
        raise StoreError(f"array '{where}' is damaged{at}: {e}") from None


def read(root: zarr.Group, path: str, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Arrays of one group as numpy, or StoreError naming what is missing or damaged."""
    g = group(root, path)
    out = {}
    for name in names:
        try:
            arr = g[name]
        except KeyError:
            raise StoreError(f"store {root.store}: array '{path}/{name}' is missing") from None
        out[name] = read_array(arr, f"{path}/{name}")
    return out


# --- writing ---------------------------------------------------------------------

def compressors(dtype: np.dtype) -> list:
    """Per-chunk codecs: a compressor chosen by measurement (bench/store_layout.py), then crc32c.

    Floats: Blosc-zstd with byte shuffle, which groups the exponent bytes of neighbouring
    values (unwrapped positions, D2min, stresses) and compresses them where plain zstd
    gains little. Integers and booleans: zstd.
    """
    if np.dtype(dtype).kind == "f":
        return [BloscCodec(cname="zstd", clevel=3, shuffle="shuffle"), Crc32cCodec()]
    return [ZstdCodec(level=3), Crc32cCodec()]


def create(g: zarr.Group, name: str, shape: tuple, dtype, chunks: tuple, shards: tuple | None = None):
    """An array of the store's kind: flat chunk keys, checksummed chunks, optional shards."""
    return g.create_array(name, shape=shape, dtype=dtype, chunks=chunks, shards=shards,
                          compressors=compressors(dtype), chunk_key_encoding=FLAT_KEYS, overwrite=True)


def write_arrays(g: zarr.Group, arrays: dict[str, np.ndarray]) -> None:
    """Whole arrays written as one chunk (one file) each: a task's small outputs."""
    for name, data in arrays.items():
        data = np.asarray(data)
        arr = create(g, name, data.shape, data.dtype, chunks=data.shape or ())
        arr[...] = data


class StepWriter:
    """Arrays written one row (a strain step, a snapshot) at a time, in few files.

    ``shapes`` maps array name to the shape of one row (e.g. (N, 3)); arrays are float64,
    created for ``max_rows`` rows and cut to the rows written by ``close``. Rows are kept
    in memory and written a shard at a time (at most ``shard_bytes`` per array); a shard
    is one file, whatever the number of steps it holds. Rows of at least ROW_CHUNK_BYTES
    (positions, D2min) are inner chunks of their own, so reading one step reads one chunk;
    smaller rows (cell, strain, energy) make one chunk per shard. A task killed before its
    record is written leaves at most some shards of a group that no record names.
    """

    def __init__(self, g: zarr.Group, max_rows: int, shapes: dict[str, tuple], shard_bytes: int = SHARD_BYTES):
        self.arrays, self.rows, self.buffers = {}, {}, {}
        for name, shape in shapes.items():
            row_bytes = 8 * int(np.prod(shape, dtype=np.int64))
            rows = int(max(1, min(max_rows, shard_bytes // max(row_bytes, 1))))
            full = (max_rows, *shape)
            if row_bytes >= ROW_CHUNK_BYTES:
                arr = create(g, name, full, "float64", chunks=(1, *shape), shards=(rows, *shape))
            else:
                arr = create(g, name, full, "float64", chunks=(rows, *shape))
            self.arrays[name], self.rows[name] = arr, rows
            self.buffers[name] = np.zeros((rows, *shape))
        self.n = 0
        self.flushed = dict.fromkeys(shapes, 0)  # rows of each array already in the store

    def write(self, step: int, **values) -> None:
        """Row ``step`` (steps come in order, 0, 1, 2, ...)."""
        if step != self.n:
            raise ValueError(f"StepWriter: row {step} written after row {self.n - 1}")
        for name, value in values.items():
            self.buffers[name][step - self.flushed[name]] = value
        self.n = step + 1
        for name in values:
            if self.n - self.flushed[name] == self.rows[name]:
                self._flush(name)

    def _flush(self, name: str) -> None:
        start, stop = self.flushed[name], self.n
        if stop > start:
            self.arrays[name][start:stop] = self.buffers[name][: stop - start]
            self.flushed[name] = stop

    def close(self) -> None:
        for name, arr in self.arrays.items():
            self._flush(name)
            arr.resize((self.n, *arr.shape[1:]))


def count_files(path: str) -> int:
    """Files and directories under ``path`` (inodes a file system's quota counts)."""
    return sum(len(dirs) + len(files) for _, dirs, files in os.walk(path))
