"""Tasks: frozen dataclasses whose content hash is their identity in the store.

A task's key hashes its stage, the stage's version (bumped when the stage's
science changes) and its fields, which include the keys of the tasks it
reads from; so changing any upstream parameter changes every key downstream.
Its data lives in the group ``<place>/<key>`` (``store.layout``), so data is bound
to the key that wrote it; its record holds its fields (``described``).
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

    @property
    def path(self) -> str:
        """The group of this task's data: its readable place, then its key."""
        return layout.task_path(self.place, self.key)

    def described(self) -> dict:
        """Everything the key hashes, as stored in the record (``campaign show KEY``)."""
        return json.loads(json.dumps({"stage": self.STAGE, "version": self.VERSION, **asdict(self)}))

    def covers(self, record: dict, cfg: dict) -> bool:
        """Whether a done record of this task serves ``cfg`` (a shear stopped early may not)."""
        return True

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
    def place(self) -> str:
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
    def place(self) -> str:
        return layout.specimen_place(self.specimen, "quenched")


def stop_rule(cfg: dict) -> dict | None:
    """When a shear may end before ``shear.max_strain`` (``shear.early_stop``): once the largest
    threshold has had its first event, which means every smaller one has had its own."""
    if not cfg["shear"]["early_stop"]:
        return None
    return {"threshold_A2": max(cfg["labels"]["thresholds_A2"]), "min_group_size": cfg["labels"]["min_group_size"],
            "event": cfg["labels"]["event"]}


@dataclass(frozen=True)
class Shear(Task):
    """AQS shear of specimen ``specimen`` in ``direction``, with the D2min of every step.

    The key is the trajectory's (no threshold in it): a shear stopped early holds the first
    steps of that trajectory, and serves every configuration whose labels it covers.
    """
    STAGE: ClassVar[str] = "shear"
    VERSION: ClassVar[int] = 2
    quench_key: str
    specimen: int
    direction: str
    system: Section
    shear: Section          # max_strain, strain_step
    d2min_cutoff_A: float
    minimize: Section

    @property
    def deps(self):
        return (self.quench_key,)

    @property
    def label(self) -> str:
        return f"shear s{self.specimen:03d} {self.direction}"

    @property
    def place(self) -> str:
        return layout.specimen_place(self.specimen, "shear", self.direction)

    def runtime(self, cfg) -> dict:
        return {"stop": stop_rule(cfg)}

    def covers(self, record: dict, cfg: dict) -> bool:
        """A shear that reached max_strain serves every threshold; one that stopped when at least g
        atoms exceeded t serves thresholds up to t with groups of up to g atoms (a cluster of them
        serves both event definitions, atoms anywhere only the 'anywhere' one)."""
        summary = record.get("summary", {})
        if summary.get("reached_max_strain"):
            return True
        done, want = summary.get("stopped_on"), stop_rule(cfg)
        return bool(done and want and want["threshold_A2"] <= done["threshold_A2"]
                    and want["min_group_size"] <= done["min_group_size"]
                    and done.get("event", "anywhere") in (want["event"], "cluster"))


@dataclass(frozen=True)
class Labels(Task):
    """First-event labels of one shear for every threshold, from its stored D2min."""
    STAGE: ClassVar[str] = "labels"
    VERSION: ClassVar[int] = 1
    shear_key: str
    specimen: int
    direction: str
    strain_step: float
    thresholds_A2: tuple
    min_group_size: int
    event: str              # anywhere | cluster (kernels.labels)
    positive: str           # above | cluster: which atoms of a cluster event are labelled
    d2min_cutoff_A: float   # neighbours that join a cluster

    @property
    def deps(self):
        return (self.shear_key,)

    def cores(self, cfg):
        return 1, 1

    @property
    def label(self) -> str:
        return f"labels s{self.specimen:03d} {self.direction}"

    @property
    def place(self) -> str:
        return layout.specimen_place(self.specimen, "labels", self.direction)


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
    def place(self) -> str:
        return layout.specimen_place(self.specimen, "elastic")


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
    def place(self) -> str:
        return layout.specimen_place(self.specimen, "structure")


@dataclass(frozen=True)
class Graph(Task):
    """The graph of specimen ``specimen`` sheared in ``direction``: features, edges, labels."""
    STAGE: ClassVar[str] = "graph"
    VERSION: ClassVar[int] = 2
    quench_key: str
    structure_key: str
    elastic_key: str
    labels_key: str
    specimen: int
    direction: str

    @property
    def deps(self):
        return (self.quench_key, self.structure_key, self.elastic_key, self.labels_key)

    def cores(self, cfg):
        return 1, 1

    @property
    def label(self) -> str:
        return f"graph s{self.specimen:03d} {self.direction}"

    @property
    def place(self) -> str:
        return layout.specimen_place(self.specimen, "graphs", self.direction)


STAGES = (Liquid, Quench, Shear, Labels, Elastic, Structure, Graph)


class _Learning:
    """Training tasks: one process using the task's cores as threads, on a GPU worker when there are any."""
    wants_gpu: ClassVar[bool] = True

    def cores(self, cfg):
        return 1, cfg["mpi"]["ranks"] * cfg["mpi"]["threads"]

    def runtime(self, cfg) -> dict:
        return {"device": cfg["train"]["device"], "checkpoint_epochs": cfg["train"]["checkpoint_epochs"]}


def point_name(layers: int, width: int, heads: int) -> str:
    return f"L{layers}-M{width}-N{heads}"


def graph_keys(graphs: tuple) -> tuple[str, ...]:
    """The keys of ((specimen, direction, key), ...)."""
    return tuple(key for _, _, key in graphs)


@dataclass(frozen=True)
class TrainFold(_Learning, Task):
    """Cross-validation fold ``fold`` of grid point (layers, width, heads): trained on ``fit_on``,
    early-stopped on ``stop_on``, scored on ``held_out`` (as a final model is on train, validation
    and test)."""
    STAGE: ClassVar[str] = "train"
    VERSION: ClassVar[int] = 2
    layers: int
    width: int
    heads: int
    fold: int
    held_out: tuple         # specimens the fold is scored on
    fit_on: tuple           # specimens it trains on
    stop_on: tuple          # specimens it early-stops on (an inner split of train + validation)
    directions: tuple
    threshold_A2: float
    train: Section
    steps_per_epoch: int    # batches per epoch, the same for every fold of the point
    graphs: tuple           # ((specimen, direction, graph key), ...) of train + validation

    @property
    def deps(self):
        return graph_keys(self.graphs)

    @property
    def point(self) -> str:
        return point_name(self.layers, self.width, self.heads)

    @property
    def label(self) -> str:
        return f"train {self.point} f{self.fold}"

    @property
    def place(self) -> str:
        return f"training/cv/{self.point}/fold{self.fold}"


@dataclass(frozen=True)
class Final(_Learning, Task):
    """The grid point of best mean CV ``select_metric``, retrained and evaluated on the test specimens."""
    STAGE: ClassVar[str] = "final"
    VERSION: ClassVar[int] = 2
    name: str
    select_metric: str
    cv_keys: tuple          # ((point, (fold keys...)), ...)
    split: Section          # train, val, test specimen ids
    directions: tuple
    threshold_A2: float
    train: Section
    bootstrap: int
    graphs: tuple           # ((specimen, direction, graph key), ...) of every specimen

    @property
    def deps(self):
        return tuple(k for _, keys in self.cv_keys for k in keys) + graph_keys(self.graphs)

    @property
    def label(self) -> str:
        return f"final {self.name}"

    @property
    def place(self) -> str:
        return f"training/final/{self.name}"


@dataclass(frozen=True)
class Baseline(Task):
    """A non-graph scorer (random, logistic regression, boosted trees) on the same split."""
    STAGE: ClassVar[str] = "baseline"
    VERSION: ClassVar[int] = 2
    name: str
    kind: str
    split: Section
    directions: tuple
    threshold_A2: float
    bootstrap: int
    seed: int
    graphs: tuple           # ((specimen, direction, graph key), ...) of every specimen

    @property
    def deps(self):
        return graph_keys(self.graphs)

    def cores(self, cfg):
        return 1, cfg["mpi"]["ranks"] * cfg["mpi"]["threads"]

    @property
    def label(self) -> str:
        return f"baseline {self.name}"

    @property
    def place(self) -> str:
        return f"training/baseline/{self.name}"


STAGES = STAGES + (TrainFold, Final, Baseline)
