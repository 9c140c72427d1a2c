"""What every job shares: its spec, rank-0 store access, and the record it writes last."""
from __future__ import annotations

import os
import resource
import socket
import time
from dataclasses import dataclass

import numpy as np

from store import layout, records


@dataclass
class Spec:
    """One task as the campaign hands it to a job (JSON on the command line)."""

    stage: str
    job: str                  # "module:Class" of the job (the task class's JOB)
    key: str
    store: str
    code_version: str
    params: dict
    path: str = ""            # the group of the task's data (store.layout, from the task)
    described: dict | None = None  # the task's fields, as its record keeps them
    threads: int = 1
    members: list | None = None  # the tasks this job stands for, when more than one

    def __post_init__(self):
        self.members = self.members or [self.key]

    @property
    def log_path(self) -> str:
        return layout.log_path(self.store, f"{self.stage}-{self.key}.log")


class DamagedInput(records.Damaged):
    """A task's input is not the data its record describes; its record has been moved aside."""

    def __init__(self, key: str, problems: list[str]):
        self.key, self.problems = key, problems
        layout.StoreError.__init__(self, f"input {key} is damaged: {'; '.join(problems)}. Its record was moved "
                                   "aside (damaged/): the launcher runs it again, then this task")


def read_input(store: str, key: str, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Arrays of input ``key``, checked against its record (``store.records.read_checked``); an
    input that is not what its record describes (a damaged chunk, a changed file) has its record
    moved aside, so that it runs again, and raises DamagedInput."""
    try:
        return records.read_checked(store, key, names)
    except records.Damaged as e:
        records.move_aside(store, key, e.problems)
        raise DamagedInput(key, e.problems) from None


class Progress:
    """How far a running job is, in its own terms: written beside the store (``store.layout.progress_path``)
    at most every ``every_s`` seconds, atomically, with the job's host and pid so that a reader can
    tell a live job's progress from a dead one's. Removed by the launcher when the job ends."""

    def __init__(self, spec: Spec, every_s: float = 5.0):
        self.path = layout.progress_path(spec.store, spec.key)
        self.every_s, self.last = every_s, 0.0
        self.started = time.time()
        self.first = None  # (time, done) of the first report: a resumed job starts part way

    def __call__(self, done: float, total: float, unit: str, force: bool = False, **now) -> None:
        """``done`` of ``total`` ``unit`` (steps, epochs, ...), and what else is worth showing now."""
        t = time.time()
        if self.first is None:
            self.first = (t, done)
        if not force and t - self.last < self.every_s:
            return
        self.last = t
        layout.write_json(self.path, {"host": socket.gethostname(), "pid": os.getpid(), "started": self.started,
                                      "first": self.first, "time": t, "done": done, "total": total, "unit": unit,
                                      "now": now})


class Job:
    """Base of the jobs: rank 0 owns the store (and reports progress); the LAMMPS jobs run on every rank."""

    EVERY_RANK = False  # True: every rank runs the job to its end and calls finish (LAMMPS); False: rank 0 alone

    def __init__(self, spec: Spec, comm):
        self.spec, self.comm, self.p = spec, comm, spec.params
        self.rank0 = comm.Get_rank() == 0
        self.t0 = time.time()
        self.progress = Progress(spec) if self.rank0 else (lambda *args, **kwargs: None)
        if self.rank0:
            os.makedirs(os.path.dirname(spec.log_path), exist_ok=True)

    def root(self, mode: str = "r"):
        return layout.open_root(self.spec.store, mode)

    def input(self, key: str, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Rank 0: arrays of input ``key``, checked against its record (:func:`read_input`)."""
        return read_input(self.spec.store, key, names)

    def input_on_rank0(self, key: str, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Arrays of input ``key`` read and checked by rank 0 and broadcast; its error reaches every rank."""
        data, error = None, None
        if self.rank0:
            try:
                data = self.input(key, names)
            except layout.StoreError as e:
                error = e
        data, error = self.comm.bcast((data, error), root=0)
        if error is not None:
            raise error
        return data

    def fresh_group(self, path: str | None = None, **attrs):
        """Rank 0: the task's own group (``spec.path`` unless given), emptied, stamped with its key."""
        path = path or self.spec.path
        g = self.root("r+").require_group(path)
        layout.remove_leftovers(os.path.join(self.spec.store, path))  # of this task's killed run
        for name in list(g.array_keys()) + list(g.group_keys()):
            del g[name]
        g.attrs.update({"task": path.rsplit("/", 1)[-1], **attrs})
        return g

    def finish(self, fields: dict | None = None, **summary) -> None:
        """The completion record with ``summary`` (and record ``fields``), written last by rank 0 with the
        resource usage of every rank that ran the job (collective where ``EVERY_RANK``)."""
        usage = self.comm.gather(own_usage(), root=0) if self.EVERY_RANK else [own_usage()]
        if self.rank0:
            write_record(self, self.spec.key, self.spec.path, self.spec.described, summary, usage=usage,
                         **(fields or {}))


def own_usage() -> tuple[float, float]:
    """(peak resident memory in MiB, CPU seconds user + system) of this process so far, all its threads."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_maxrss / 1024.0, ru.ru_utime + ru.ru_stime  # Linux counts ru_maxrss in KiB


def usage_fields(usage: list[tuple[float, float]]) -> dict:
    """Record fields of the ranks' (peak RSS MiB, CPU s): the largest rank's peak, the sum of the ranks' peaks
    (an upper bound of the job's memory on one node) and the CPU seconds of all ranks."""
    peaks, cpu = zip(*usage)
    return {"peak_rss_MiB": round(max(peaks), 1), "peak_rss_MiB_all_ranks": round(sum(peaks), 1),
            "cpu_seconds": round(sum(cpu), 2)}


def write_record(job: Job, key: str, path: str, described: dict | None, summary: dict,
                 usage: list | None = None, **fields) -> None:
    """The done record of task ``key`` whose data is the group ``path``: checksums read back; wall seconds,
    ranks, threads and the resource usage of ``usage`` (every rank's :func:`own_usage`; default this process's)."""
    g = layout.group(job.root(), path)
    fields = {"seconds": round(time.time() - job.t0, 3), "ranks": job.comm.Get_size(), "threads": job.spec.threads,
              **usage_fields(usage or [own_usage()]), **fields}
    records.write(job.spec.store, key, records.DONE, job.spec.code_version, stage=job.spec.stage, path=path,
                  params=described, checksums=records.checksums(g), summary=summary, **fields)
