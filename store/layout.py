"""Where everything lives in the campaign's Zarr v3 store, and how it is written.

Each task writes only its own group, and every array is chunked along what
one task (or one strain step of a task) writes, so no two tasks ever write
the same chunk. Paths:

    liquid/                        the liquid task
    specimens/s{k:03d}/quenched    quench task of specimen k
    specimens/s{k:03d}/shear/{d}   shear task of specimen k in direction d
    specimens/s{k:03d}/structure   Voronoi and participation fractions (structure task)
    specimens/s{k:03d}/elastic     per-atom stress and stiffness (elastic task)
    specimens/s{k:03d}/graphs/{d}  the graph of specimen k sheared in d (graph task)
"""
from __future__ import annotations

import os

import zarr
import numpy as np

LAYOUT_VERSION = 1


class StoreError(RuntimeError):
    """The store is missing, corrupt, or lacks data a task needs; the message names it."""


def open_root(path: str, mode: str = "r") -> zarr.Group:
    try:
        return zarr.open_group(path, mode=mode)
    except Exception as e:  # zarr raises several types for a missing or broken group
        raise StoreError(f"cannot open the Zarr store {path}: {e}") from None


def _beside(store_path: str, suffix: str, name: str) -> str:
    base = os.path.abspath(store_path).rstrip(os.sep)
    return os.path.join((base[:-5] if base.endswith(".zarr") else base) + suffix, name)


def log_path(store_path: str, name: str) -> str:
    """LAMMPS logs and job output live beside the store: ``smoke.zarr`` -> ``smoke.logs/NAME``."""
    return _beside(store_path, ".logs", name)


def checkpoint_path(store_path: str, name: str) -> str:
    """A running task's restart file, beside the store: ``smoke.zarr`` -> ``smoke.checkpoints/NAME``.
    Named by the task's key, so it can only resume that task; removed when the task finishes."""
    return _beside(store_path, ".checkpoints", name)


def specimen_path(k: int) -> str:
    return f"specimens/s{k:03d}"


def quenched_path(k: int) -> str:
    return f"{specimen_path(k)}/quenched"


def shear_path(k: int, direction: str) -> str:
    return f"{specimen_path(k)}/shear/{direction}"


def graph_path(k: int, direction: str) -> str:
    return f"{specimen_path(k)}/graphs/{direction}"


def group(root: zarr.Group, path: str) -> zarr.Group:
    """An existing group, or StoreError naming it."""
    try:
        node = root[path]
    except KeyError:
        raise StoreError(f"store {root.store}: group '{path}' is missing") from None
    if not isinstance(node, zarr.Group):
        raise StoreError(f"store {root.store}: '{path}' is not a group")
    return node


def read(root: zarr.Group, path: str, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Arrays of one group as numpy, or StoreError naming what is missing or unreadable."""
    g = group(root, path)
    out = {}
    for name in names:
        try:
            out[name] = g[name][...]
        except KeyError:
            raise StoreError(f"store {root.store}: array '{path}/{name}' is missing") from None
        except Exception as e:
            raise StoreError(f"store {root.store}: array '{path}/{name}' is unreadable: {e}") from None
    return out


def write_arrays(g: zarr.Group, arrays: dict[str, np.ndarray]) -> None:
    """Whole arrays written as one chunk each (a task's small outputs)."""
    for name, data in arrays.items():
        data = np.asarray(data)
        g.create_array(name, data=data, chunks=data.shape or (), overwrite=True)


class StepWriter:
    """Arrays written one row (a strain step, a snapshot) at a time, one chunk per row.

    ``shapes`` maps array name to the shape of one row (e.g. (N, 3)); arrays
    are float64. They are created for ``max_rows`` rows and cut to the rows
    written by ``close``.
    """

    def __init__(self, g: zarr.Group, max_rows: int, shapes: dict[str, tuple]):
        self.arrays = {
            name: g.create_array(name, shape=(max_rows, *shape), chunks=(1, *shape),
                                 dtype="float64", overwrite=True)
            for name, shape in shapes.items()
        }
        self.n = 0

    def write(self, step: int, **values) -> None:
        for name, value in values.items():
            self.arrays[name][step] = value
        self.n = max(self.n, step + 1)

    def close(self) -> None:
        for arr in self.arrays.values():
            arr.resize((self.n, *arr.shape[1:]))
