"""What every job shares: its spec, rank-0 store access, and the record it writes last."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from store import layout, records


@dataclass
class Spec:
    """One task as the campaign hands it to a job (JSON on the command line)."""

    stage: str
    key: str
    store: str
    code_version: str
    params: dict
    threads: int = 1
    members: list | None = None  # the tasks this job stands for, when more than one

    def __post_init__(self):
        self.members = self.members or [self.key]

    @property
    def log_path(self) -> str:
        return layout.log_path(self.store, f"{self.stage}-{self.key}.log")


def wrap(positions: np.ndarray, cell: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Positions (N,3) Å mapped into the periodic cell."""
    s = (positions - origin) @ np.linalg.inv(cell)
    s -= np.floor(s)
    return origin + s @ cell


class Job:
    """Base of the LAMMPS jobs: rank 0 owns the store, every rank runs LAMMPS."""

    def __init__(self, spec: Spec, comm):
        self.spec, self.comm, self.p = spec, comm, spec.params
        self.rank0 = comm.Get_rank() == 0
        self.t0 = time.time()
        if self.rank0:
            os.makedirs(os.path.dirname(spec.log_path), exist_ok=True)

    def root(self, mode: str = "r"):
        return layout.open_root(self.spec.store, mode)

    def read_on_rank0(self, path: str, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Arrays read by rank 0 and broadcast; a StoreError reaches every rank."""
        data, error = None, None
        if self.rank0:
            try:
                data = layout.read(self.root(), path, names)
            except layout.StoreError as e:
                error = str(e)
        data, error = self.comm.bcast((data, error), root=0)
        if error:
            raise layout.StoreError(error)
        return data

    def fresh_group(self, path: str, **attrs):
        """Rank 0: the task's own group, emptied, stamped with the task key."""
        g = self.root("r+").require_group(path)
        for name in list(g.array_keys()) + list(g.group_keys()):
            del g[name]
        g.attrs.update({"task": self.spec.key, **attrs})
        return g

    def finish(self, path: str, **summary) -> None:
        """Rank 0: the completion record, written last."""
        if self.rank0:
            g = layout.group(self.root(), path)
            records.write(self.spec.store, self.spec.key, records.DONE, self.spec.code_version,
                          stage=self.spec.stage, path=path, seconds=round(time.time() - self.t0, 3),
                          ranks=self.comm.Get_size(), threads=self.spec.threads,
                          checksums=records.checksums(g), summary=summary)
