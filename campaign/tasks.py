"""Tasks: frozen dataclasses whose content hash is their identity in the store.

A stage is one task class (``campaign/stages/``) and one job (``jobs/``). The class says
everything the campaign needs to know about it, and nothing else has to be told:

- its fields: what the result depends on (the key hashes them, with the stage and its
  ``VERSION``, bumped when the stage's science changes); fields made with :func:`upstream`
  hold the keys of the tasks it reads, so its dependency edges are derived from them, and
  changing any upstream parameter changes every key downstream;
- ``plan(cfg, planned)``: its tasks for a configuration, given the tasks of the stages before it;
- ``JOB``: the program that computes it ("module:Class" under ``jobs/``);
- ``PLACE`` and ``LABEL``: templates over its fields for its readable place in the store
  (``store.layout.task_path`` puts its data in ``<place>/<key>``) and its name in logs;
- ``RESOURCES``: the cores it runs with; ``runtime(cfg)``: options that change how, not
  what, it computes (not in its key).

Defining the class registers the stage (``STAGES``, in definition order: upstream first).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import ClassVar

from store import layout

STAGES: dict[str, type[Task]] = {}  # stage name -> task class, upstream stages first


class Section(tuple):
    """A config section frozen as sorted (key, value) pairs, so a task stays immutable."""

    @classmethod
    def of(cls, mapping: dict) -> Section:
        return cls(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in mapping.items()))

    @classmethod
    def pick(cls, mapping: dict, keys) -> Section:
        """The ``keys`` of ``mapping`` (a config section) as a Section."""
        return cls.of({k: mapping[k] for k in keys})

    def dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self}


def upstream(holds: str = "key"):
    """A field holding keys of tasks this one reads: ``key`` (one key), ``keys`` (a tuple of
    them), ``rows`` (rows ending in a key, like ((specimen, direction, key), ...)) or ``groups``
    ((name, (key, ...)), ...)."""
    return field(metadata={"upstream": holds})


def optional(holds: str | None = None):
    """A field a stage gained later, None unless set: while None it is left out of the key (and of
    the record), so the tasks that do not use it keep their keys. ``holds``: as ``upstream``."""
    return field(default=None, metadata={"optional": True, **({"upstream": holds} if holds else {})})


def _keys_in(value, holds: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if holds == "key":
        return (value,)
    if holds == "keys":
        return tuple(value)
    if holds == "rows":
        return tuple(row[-1] for row in value)
    return tuple(k for _, keys in value for k in keys)


class _Fields(dict):
    """A task's fields and properties by name, for formatting its templates."""

    def __init__(self, task):
        super().__init__()
        self.task = task

    def __missing__(self, name):
        return getattr(self.task, name)


# cores a task runs with: (MPI ranks, threads per rank) from the config's mpi section
# peak resident memory of a job (docs/rehearsal.md: 136-162 MiB for every MD job at 10,000 atoms on one
# rank, LAMMPS and Python included): a process, plus what grows with the atoms of a specimen
PROCESS_BYTES = 256 * 2**20
ATOM_BYTES = 4096

RESOURCES = {
    "mpi": lambda r, t: (r, t),        # a LAMMPS program: mpi.ranks ranks of mpi.threads threads
    "threads": lambda r, t: (1, t),    # one process of mpi.threads threads
    "serial": lambda r, t: (1, 1),     # one process, one thread
    "pool": lambda r, t: (1, r * t),   # one process using all of a task's cores as threads
}


@dataclass(frozen=True)
class Task:
    STAGE: ClassVar[str]
    VERSION: ClassVar[int]
    JOB: ClassVar[str]                      # "module:Class" of the job that computes it
    PLACE: ClassVar[str]                    # its place in the store, a template over its fields
    LABEL: ClassVar[str]                    # its name in logs and on the dashboard, a template
    RESOURCES: ClassVar[str] = "mpi"        # a key of RESOURCES
    wants_gpu: ClassVar[bool] = False       # runs on a GPU worker when the cluster has them

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "STAGE" in vars(cls):
            if cls.STAGE in STAGES:
                raise ValueError(f"two task classes of stage '{cls.STAGE}': {STAGES[cls.STAGE].__name__}, "
                                 f"{cls.__name__}")
            STAGES[cls.STAGE] = cls

    @classmethod
    def plan(cls, cfg: dict, planned: dict[str, list[Task]]) -> list[Task]:
        """This stage's tasks for ``cfg``; ``planned`` holds the tasks of the stages before it."""
        raise NotImplementedError(f"stage '{cls.STAGE}' has no plan")

    def _hashed(self) -> dict:
        """What the key hashes: stage, version and fields (optional ones only when set). The fields are
        immutable (numbers, strings, tuples, Sections), so no deep copy (``asdict``) is needed."""
        values = {f.name: getattr(self, f.name) for f in fields(self)
                  if not (f.metadata.get("optional") and getattr(self, f.name) is None)}
        return {"stage": self.STAGE, "version": self.VERSION, **values}

    @cached_property  # a frozen task's key never changes; planning and launching ask for it often
    def key(self) -> str:
        return hashlib.sha256(json.dumps(self._hashed(), sort_keys=True).encode()).hexdigest()[:16]

    @cached_property
    def deps(self) -> tuple[str, ...]:
        """Keys of the tasks whose outputs this one reads (its ``upstream`` fields)."""
        return tuple(k for f in fields(self) if "upstream" in f.metadata
                     for k in _keys_in(getattr(self, f.name), f.metadata["upstream"]))

    def fill(self, template: str) -> str:
        """``template`` with this task's fields and properties filled in."""
        return template.format_map(_Fields(self))

    @property
    def label(self) -> str:
        return self.fill(self.LABEL)

    @property
    def place(self) -> str:
        return self.fill(self.PLACE)

    @property
    def path(self) -> str:
        """The group of this task's data: its readable place, then its key."""
        return layout.task_path(self.place, self.key)

    def cores(self, cfg: dict) -> tuple[int, int]:
        """(MPI ranks, threads per rank) this task runs with."""
        return RESOURCES[self.RESOURCES](cfg["mpi"]["ranks"], cfg["mpi"]["threads"])

    def memory_bytes(self, cfg: dict) -> float:
        """Peak resident memory of this task's job, all its ranks (a model of what was measured, for the
        worker's ``memory`` resource and the check of a SLURM job's request): a process per rank and a
        few kB per atom. Stages that hold more say so."""
        return self.cores(cfg)[0] * PROCESS_BYTES + ATOM_BYTES * cfg["system"]["n_atoms"]

    def runtime(self, cfg: dict) -> dict:
        """Parameters that change how, not what, it computes (not part of its key)."""
        return {}

    def described(self) -> dict:
        """Everything the key hashes, as stored in the record (``campaign show KEY``)."""
        return json.loads(json.dumps(self._hashed()))

    def batch(self, cfg: dict) -> str:
        """Ready tasks of one batch run as one job (default: each alone, its key)."""
        return self.key

    @classmethod
    def batch_params(cls, batch: list[Task]) -> dict:
        """What a job standing for a batch needs beyond the first task's params; {} for a job of
        one task (the default: this stage's jobs run one task each)."""
        return {}

    @staticmethod
    def describe(summary: dict) -> str:
        """One line about a finished task, from its record's summary (the launcher prints it)."""
        return ""

    def covers(self, record: dict, cfg: dict) -> bool:
        """Whether a done record of this task serves ``cfg`` (a shear stopped early may not)."""
        return True

    def params(self) -> dict:
        """What the job needs (its ``Params``, ``jobs.common``): its fields, sections flattened into them
        (``minimize`` kept as a mapping), an optional field left out while unset (as from the key: the
        job's Params default it); a name that two of them share is an error, never one silently replacing
        another."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("optional") and value is None:
                continue
            items = value.dict().items() if isinstance(value, Section) and f.name != "minimize" else [
                (f.name, value.dict() if isinstance(value, Section) else value)]
            for name, v in items:
                if name in out:
                    raise ValueError(f"{type(self).__name__}: parameter '{name}' comes from two of its fields")
                out[name] = v
        return out
