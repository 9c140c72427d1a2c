"""Tasks: frozen dataclasses whose content hash is their identity in the store.

A task's key hashes its stage, the stage's version (bumped when the stage's
science changes) and its fields, which include the keys of the tasks it
reads from; so changing any upstream parameter changes every key downstream.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

from store import layout


class Section(tuple):
    """A config section frozen as sorted (key, value) pairs, so a task stays immutable."""

    @classmethod
    def of(cls, mapping: dict) -> "Section":
        return cls(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in mapping.items()))

    def dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self}


@dataclass(frozen=True)
class Task:
    STAGE: ClassVar[str]
    VERSION: ClassVar[int]

    @property
    def key(self) -> str:
        body = json.dumps({"stage": self.STAGE, "version": self.VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    @property
    def deps(self) -> tuple[str, ...]:
        """Keys of the tasks whose outputs this one reads."""
        return ()

    def cores(self, cfg: dict) -> tuple[int, int]:
        """(MPI ranks, threads per rank) this task runs with."""
        return cfg["mpi"]["ranks"], cfg["mpi"]["threads"]

    wants_gpu: ClassVar[bool] = False  # runs on a GPU worker when the cluster has them

    def runtime(self, cfg: dict) -> dict:
        """Parameters that change how, not what, it computes (not part of its key)."""
        return {}

    def params(self) -> dict:
        """What the job needs: sections flattened, ``minimize`` kept as a mapping."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "minimize":
                out["minimize"] = value.dict()
            elif isinstance(value, Section):
                out.update(value.dict())
            else:
                out[f.name] = value
        return out


@dataclass(frozen=True)
class Liquid(Task):
    """Melt and equilibrate the liquid, storing every microstate."""
    STAGE: ClassVar[str] = "liquid"
    VERSION: ClassVar[int] = 1
    system: Section
    liquid: Section
    minimize: Section
    seed: int

    @property
    def label(self) -> str:
        return "liquid"

    @property
    def path(self) -> str:
        return "liquid"


@dataclass(frozen=True)
class Quench(Task):
    """Quench microstate ``microstate`` into specimen ``specimen``."""
    STAGE: ClassVar[str] = "quench"
    VERSION: ClassVar[int] = 1
    liquid_key: str
    specimen: int
    microstate: int
    system: Section
    quench: Section
    liquid_state: Section
    minimize: Section

    @property
    def deps(self):
        return (self.liquid_key,)

    @property
    def label(self) -> str:
        return f"quench s{self.specimen:03d}"

    def runtime(self, cfg) -> dict:
        return {"checkpoint_ps": cfg["quench"]["checkpoint_ps"]}

    @property
    def path(self) -> str:
        return layout.quenched_path(self.specimen)


@dataclass(frozen=True)
class Shear(Task):
    """AQS shear of specimen ``specimen`` in ``direction``, with D2min and labels."""
    STAGE: ClassVar[str] = "shear"
    VERSION: ClassVar[int] = 1
    quench_key: str
    specimen: int
    direction: str
    system: Section
    shear: Section
    labels: Section
    minimize: Section

    @property
    def deps(self):
        return (self.quench_key,)

    @property
    def label(self) -> str:
        return f"shear s{self.specimen:03d} {self.direction}"

    @property
    def path(self) -> str:
        return layout.shear_path(self.specimen, self.direction)


@dataclass(frozen=True)
class Elastic(Task):
    """Per-atom stress and relaxed stiffness of specimen ``specimen`` (LAMMPS)."""
    STAGE: ClassVar[str] = "elastic"
    VERSION: ClassVar[int] = 1
    quench_key: str
    specimen: int
    system: Section
    elastic: Section
    minimize: Section

    @property
    def deps(self):
        return (self.quench_key,)

    @property
    def label(self) -> str:
        return f"elastic s{self.specimen:03d}"

    @property
    def path(self) -> str:
        return f"{layout.specimen_path(self.specimen)}/elastic"


@dataclass(frozen=True)
class Structure(Task):
    """Voronoi cells and low-mode participation fractions of specimen ``specimen`` (serial, no LAMMPS)."""
    STAGE: ClassVar[str] = "structure"
    VERSION: ClassVar[int] = 1
    quench_key: str
    specimen: int
    system: Section
    structure: Section

    @property
    def deps(self):
        return (self.quench_key,)

    def cores(self, cfg):
        return 1, cfg["mpi"]["threads"]

    @property
    def label(self) -> str:
        return f"structure s{self.specimen:03d}"

    @property
    def path(self) -> str:
        return f"{layout.specimen_path(self.specimen)}/structure"


@dataclass(frozen=True)
class Graph(Task):
    """The graph of specimen ``specimen`` sheared in ``direction``: features, edges, labels."""
    STAGE: ClassVar[str] = "graph"
    VERSION: ClassVar[int] = 1
    structure_key: str
    elastic_key: str
    shear_key: str
    specimen: int
    direction: str

    @property
    def deps(self):
        return (self.structure_key, self.elastic_key, self.shear_key)

    def cores(self, cfg):
        return 1, 1

    @property
    def label(self) -> str:
        return f"graph s{self.specimen:03d} {self.direction}"

    @property
    def path(self) -> str:
        return layout.graph_path(self.specimen, self.direction)


STAGES = (Liquid, Quench, Shear, Elastic, Structure, Graph)


class _Learning:
    """Training tasks: one process using the task's cores as threads, on a GPU worker when there are any."""
    wants_gpu: ClassVar[bool] = True

    def cores(self, cfg):
        return 1, cfg["mpi"]["ranks"] * cfg["mpi"]["threads"]

    def runtime(self, cfg) -> dict:
        return {"device": cfg["train"]["device"], "checkpoint_epochs": cfg["train"]["checkpoint_epochs"]}


def point_name(layers: int, width: int, heads: int) -> str:
    return f"L{layers}-M{width}-N{heads}"


@dataclass(frozen=True)
class TrainFold(_Learning, Task):
    """Cross-validation fold ``fold`` of grid point (layers, width, heads)."""
    STAGE: ClassVar[str] = "train"
    VERSION: ClassVar[int] = 1
    layers: int
    width: int
    heads: int
    fold: int
    held_out: tuple
    train_val: tuple
    directions: tuple
    threshold_A2: float
    train: Section
    steps_per_epoch: int    # batches per epoch, the same for every fold of the point
    graph_keys: tuple

    @property
    def deps(self):
        return self.graph_keys

    @property
    def point(self) -> str:
        return point_name(self.layers, self.width, self.heads)


    @property
    def label(self) -> str:
        return f"train {self.point} f{self.fold}"

    @property
    def path(self) -> str:
        return f"training/cv/{self.point}/fold{self.fold}"


@dataclass(frozen=True)
class Final(_Learning, Task):
    """The grid point of best mean CV ``select_metric``, retrained and evaluated on the test specimens."""
    STAGE: ClassVar[str] = "final"
    VERSION: ClassVar[int] = 1
    name: str
    select_metric: str
    cv_keys: tuple          # ((point, (fold keys...)), ...)
    split: Section          # train, val, test specimen ids
    directions: tuple
    threshold_A2: float
    train: Section
    bootstrap: int
    graph_keys: tuple

    @property
    def deps(self):
        return tuple(k for _, keys in self.cv_keys for k in keys) + self.graph_keys


    @property
    def label(self) -> str:
        return f"final {self.name}"

    @property
    def path(self) -> str:
        return f"training/final/{self.name}"


@dataclass(frozen=True)
class Baseline(Task):
    """A non-graph scorer (random, logistic regression, boosted trees) on the same split."""
    STAGE: ClassVar[str] = "baseline"
    VERSION: ClassVar[int] = 1
    name: str
    kind: str
    split: Section
    directions: tuple
    threshold_A2: float
    bootstrap: int
    seed: int
    graph_keys: tuple

    @property
    def deps(self):
        return self.graph_keys

    def cores(self, cfg):
        return 1, cfg["mpi"]["ranks"] * cfg["mpi"]["threads"]

    @property
    def label(self) -> str:
        return f"baseline {self.name}"

    @property
    def path(self) -> str:
        return f"training/baseline/{self.name}"


STAGES = STAGES + (TrainFold, Final, Baseline)
