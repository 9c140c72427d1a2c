"""What every job shares: its spec, rank-0 store access, and the record it writes last."""
from __future__ import annotations

import dataclasses
import os
import resource
import socket
import time
import types
import typing
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


class ParamsError(layout.StoreError):
    """A task's params do not fit its job's ``Params``: the task class and the job are out of step."""


# lists in JSON, tuples when a task hands them over in one process
Seq = list | tuple


@dataclass(frozen=True, kw_only=True)
class Params:
    """A job's parameters, declared as the fields of a frozen dataclass (each job's ``Params``): built from
    the params the campaign sends (``campaign.dispatch.spec``: the task's fields, its sections flattened, and
    its runtime options) by ``of``, which refuses a missing name, a name the job does not declare and a value
    of the wrong type. The job reads them as attributes (``self.p.quench_key``)."""

    @classmethod
    def of(cls, given: dict) -> Params:
        declared = {f.name: f for f in dataclasses.fields(cls)}
        required = {n for n, f in declared.items()
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        missing, unknown = sorted(required - given.keys()), sorted(given.keys() - declared.keys())
        hints = typing.get_type_hints(cls)
        wrong = [f"{n} = {given[n]!r} (not {hints[n]})" for n in sorted(given.keys() & declared.keys())
                 if not _fits(given[n], hints[n])]
        if missing or unknown or wrong:
            raise ParamsError(f"{cls.__qualname__}: " + "; ".join(
                f"{what}: {', '.join(names)}" for what, names in
                (("missing", missing), ("not declared by the job", unknown), ("wrong type", wrong)) if names))
        return cls(**given)


def _fits(value, hint) -> bool:
    """Whether ``value`` is of the annotation ``hint`` (a class, or a union of classes and None; an int is
    a float, a bool is no number)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return any(_fits(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, typing.get_origin(hint) or hint)


@dataclass(frozen=True, kw_only=True)
class SystemParams(Params):
    """The ``system`` section every job on a specimen's atoms is given."""
    n_atoms: int
    cu_fraction: float
    potential: str            # the eam/fs file's name (kernels.eam.potential_file)
    timestep_ps: float


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
    Params: typing.ClassVar[type[Params]] = Params  # each job declares the params it reads

    def __init__(self, spec: Spec, comm):
        self.spec, self.comm = spec, comm
        self.p: typing.Any = self.Params.of(spec.params)  # the job's own Params
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
