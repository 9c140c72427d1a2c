"""The learning stages: cross-validation of the L x M x N grid, the final models (Table 1, the
threshold sweep, the imbalance strategies) and the non-graph baselines, all on one split."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from campaign.cluster import declares_gpu_pool
from campaign.config import runtime_keys, split_sizes
from campaign.schema import METRICS
from campaign.stages.lys import lys_covers_all
from campaign.tasks import PROCESS_BYTES, Section, Task, optional, upstream
from kernels import memory
from kernels.features import STUDY, needs_lys, needs_response, needs_softening
from kernels.split import fold_sets, split_specimens


def split(cfg: dict) -> tuple[list[int], list[int], list[int]]:
    """(train, validation, test) specimens."""
    return split_specimens(cfg["quench"]["specimens"], split_sizes(cfg), cfg["split"]["seed"])


def graphs_of(planned: dict, specimens=None) -> tuple:
    """((specimen, direction, graph key), ...) of ``specimens`` (None: every one), in specimen order."""
    wanted = None if specimens is None else set(specimens)
    return tuple(sorted(((g.specimen, g.direction, g.key) for g in planned["graph"]
                         if wanted is None or g.specimen in wanted), key=lambda row: row[0]))


def feature_field(feature_set: str) -> str | None:
    """A task's ``feature_set`` field: None for the study's 19 (a field left out of the key, so the
    study's tasks keep theirs), else the set's name."""
    return None if feature_set == STUDY else feature_set


def responses_of(planned: dict, feature_set: str | None) -> tuple | None:
    """A task's ``responses`` field: ((specimen, response key), ...) when ``feature_set`` needs the
    linear response (joined to the graphs as they are read), else None."""
    if not needs_response([feature_set or STUDY]):
        return None
    return tuple((t.specimen, t.key) for t in planned["response"])


def softenings_of(planned: dict, feature_set: str | None) -> tuple | None:
    """A task's ``softenings`` field: ((specimen, softening key), ...) when ``feature_set`` needs the mode
    softening, else None."""
    if not needs_softening([feature_set or STUDY]):
        return None
    return tuple((t.specimen, t.key) for t in planned["softening"])


def lys_of(planned: dict, feature_set: str | None) -> tuple | None:
    """A task's ``lys`` field: ((specimen, direction, lys key), ...) of every batch of regions when
    ``feature_set`` needs the local yield stress, else None."""
    if not needs_lys([feature_set or STUDY]) or not planned["lys"]:
        return None
    return tuple((t.specimen, t.direction, t.key) for t in planned["lys"])


def joined(planned: dict, feature_set: str | None) -> dict:
    """The fields a learning task of ``feature_set`` needs beside its graphs: feature_set, responses,
    softenings, lys."""
    return {"feature_set": feature_field(feature_set or STUDY), "responses": responses_of(planned, feature_set),
            "softenings": softenings_of(planned, feature_set),
            "lys": lys_of(planned, feature_set)}


def steps_per_epoch(folds: list[tuple], cfg: dict) -> int:
    """Batches per epoch of folds trained together: enough for the largest training set (graphs of
    every direction of its fitted-on specimens), the same for every fold, stacked or alone."""
    largest = max(len(fit_on) for _, fit_on, _ in folds) * len(cfg["shear"]["directions"])
    return -(-largest // cfg["train"]["batch_graphs"])


def train_options(cfg: dict) -> dict:
    """The train options that change what a training computes; the threshold is a field of its own."""
    return {k: v for k, v in cfg["train"].items() if k != "threshold_A2" and k not in runtime_keys("train")}


def describe_metrics(summary: dict) -> str:
    """A trained (or fitted) model's test metrics, from its record's summary."""
    text = " ".join(f"{m} {summary[m]:.3f}" if summary[m] is not None else f"{m} -"
                    for m in ("recall", "precision", "mcc", "auc"))
    text = f"{summary['point']}: {text}" if summary.get("point") else text
    return text + (
        f" (went on from epoch {summary['resumed_from_epoch']})" if summary.get("resumed_from_epoch") else ""
    )


GRAPH_BYTES_PER_ATOM = 19 * 8 + 2 * 8 * 15 + 8  # a graph as read: float64 features, int64 edges, labels


class _Learning:
    """Training tasks: one process using the task's cores as threads, on a GPU worker when there are any."""
    RESOURCES: ClassVar[str] = "pool"
    wants_gpu: ClassVar[bool] = True
    describe = staticmethod(describe_metrics)

    def runtime(self, cfg) -> dict:
        return {"device": cfg["train"]["device"], "checkpoint_epochs": cfg["train"]["checkpoint_epochs"],
                "gpu_memory_GiB": cfg["train"]["gpu_memory_GiB"]}

    def memory_bytes(self, cfg: dict) -> float:
        """A process holding every graph it reads, as read (numpy) and prepared (``kernels.memory.data_bytes``),
        and, unless the cluster has GPU workers to train on, one fold's training step
        (``kernels.memory.step_bytes``)."""
        atoms = cfg["system"]["n_atoms"]
        graph = memory.data_bytes(1, atoms) + GRAPH_BYTES_PER_ATOM * atoms
        grid = cfg["grid"]  # a final model's point is chosen when it runs: the grid's largest, to be safe
        layers, width, heads = (getattr(self, name, max(grid[axis])) for name, axis in
                                (("layers", "layers"), ("width", "width"), ("heads", "heads")))
        step = memory.step_bytes(layers, width, heads, cfg["train"]["batch_graphs"] * atoms, 1)
        return PROCESS_BYTES + len(self.graphs) * graph + (0 if declares_gpu_pool(cfg) else step)


@dataclass(frozen=True)
class TrainFold(_Learning, Task):
    """Cross-validation fold ``fold`` of grid point (layers, width, heads): trained on ``fit_on``,
    early-stopped on ``stop_on``, scored on ``held_out`` (as a final model is on train, validation
    and test). With ``train.stack_folds`` the folds of one point run as one job (``launch``)."""
    STAGE: ClassVar[str] = "train"
    VERSION: ClassVar[int] = 2
    JOB: ClassVar[str] = "jobs.learn:TrainFoldsJob"
    PLACE: ClassVar[str] = "training/cv/{point}/fold{fold}"
    LABEL: ClassVar[str] = "train {point} f{fold}"
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
    graphs: tuple = upstream("rows")  # ((specimen, direction, graph key), ...) of train + validation
    feature_set: str | None = optional()  # the columns it trains on; None: the study's 19
    responses: tuple | None = optional("rows")  # ((specimen, response key), ...) if the set needs them
    softenings: tuple | None = optional("rows")  # ((specimen, softening key), ...) if the set needs them
    quenches: tuple | None = optional("rows")   # ((specimen, quench key), ...): bond vectors on the edges
    lys: tuple | None = optional("rows")        # ((specimen, direction, lys key), ...) if the set needs them
    conv: str | None = optional()  # a PyG convolution's name (kernels.pyg_stack); None: the stacked GAT

    @property
    def point(self) -> str:
        return f"L{self.layers}-M{self.width}-N{self.heads}"

    STACK: ClassVar[str] = "train {point}"  # the folds stacked into one job (a template over its fields)

    def batch(self, cfg) -> str:
        """With ``train.stack_folds`` the folds of one grid point train as one stacked model."""
        return self.fill(self.STACK) if cfg["train"]["stack_folds"] else self.key

    @classmethod
    def batch_params(cls, batch) -> dict:
        """``jobs.learn.TrainFoldsJob`` takes a list of folds (one, unless stacked)."""
        return {"folds": [t.fold for t in batch], "fold_keys": [t.key for t in batch],
                "fold_paths": {t.key: t.path for t in batch},
                "fold_described": {t.key: t.described() for t in batch},
                "held_out": [list(t.held_out) for t in batch], "fit_on": [list(t.fit_on) for t in batch],
                "stop_on": [list(t.stop_on) for t in batch]}

    @classmethod
    def plan(cls, cfg, planned):
        train, val, _ = split(cfg)
        folds = fold_sets(train + val, cfg["split"]["folds"], cfg["split"]["fractions"], cfg["split"]["seed"])
        graphs, grid = graphs_of(planned, train + val), cfg["grid"]
        return [cls(layers=L, width=M, heads=N, fold=f, held_out=held, fit_on=fit_on, stop_on=stop_on,
                    directions=tuple(cfg["shear"]["directions"]), threshold_A2=cfg["train"]["threshold_A2"],
                    train=Section.of(train_options(cfg)), steps_per_epoch=steps_per_epoch(folds, cfg), graphs=graphs,
                    **joined(planned, cfg["features"]["sets"][0]))
                for L in grid["layers"] for M in grid["width"] for N in grid["heads"]
                for f, (held, fit_on, stop_on) in enumerate(folds)]


STRATEGIES = {"focal": {"loss": "focal", "sampling": "none"},
              "undersample": {"loss": "weighted_ce", "sampling": "undersample"},
              "oversample": {"loss": "weighted_ce", "sampling": "oversample"}}


def _split_section(cfg: dict) -> Section:
    train, val, test = split(cfg)
    return Section.of({"train": train, "val": val, "test": test})


@dataclass(frozen=True)
class Final(_Learning, Task):
    """The grid point of best mean CV ``select_metric``, retrained and evaluated on the test specimens."""
    STAGE: ClassVar[str] = "final"
    VERSION: ClassVar[int] = 2
    JOB: ClassVar[str] = "jobs.learn:FinalJob"
    PLACE: ClassVar[str] = "training/final/{name}"
    LABEL: ClassVar[str] = "final {name}"
    name: str
    select_metric: str
    cv_keys: tuple = upstream("groups")  # ((point, (fold keys...)), ...)
    split: Section          # train, val, test specimen ids
    directions: tuple
    threshold_A2: float
    train: Section
    bootstrap: int
    graphs: tuple = upstream("rows")     # ((specimen, direction, graph key), ...) of every specimen
    feature_set: str | None = optional()  # as TrainFold's
    responses: tuple | None = optional("rows")
    softenings: tuple | None = optional("rows")
    lys: tuple | None = optional("rows")

    @classmethod
    def plan(cls, cfg, planned):
        cv_keys = {}
        for t in planned["train"]:
            cv_keys.setdefault(t.point, []).append(t.key)
        cv_keys = tuple((p, tuple(k)) for p, k in cv_keys.items())
        opts, threshold, sweep = train_options(cfg), cfg["train"]["threshold_A2"], cfg["report"]["sweep_metric"]
        graphs, parts = graphs_of(planned), _split_section(cfg)

        def final(name, metric, t, **changes):
            return cls(name=name, select_metric=metric, cv_keys=cv_keys, split=parts,
                       directions=tuple(cfg["shear"]["directions"]), threshold_A2=t,
                       train=Section.of({**opts, **changes}), bootstrap=cfg["report"]["bootstrap"], graphs=graphs,
                       **joined(planned, cfg["features"]["sets"][0]))

        return ([final(f"opt-{m}", m, threshold) for m in METRICS]
                + [final(f"sweep-{sweep}-t{t:g}", sweep, t) for t in cfg["labels"]["thresholds_A2"] if t != threshold]
                + [final(f"strategy-{s}", sweep, threshold, **STRATEGIES[s]) for s in cfg["report"]["strategies"]])


@dataclass(frozen=True)
class Baseline(Task):
    """A non-graph scorer (random, logistic regression, boosted trees) on the same split."""
    STAGE: ClassVar[str] = "baseline"
    VERSION: ClassVar[int] = 2
    JOB: ClassVar[str] = "jobs.baseline:BaselineJob"
    PLACE: ClassVar[str] = "training/baseline/{name}"
    LABEL: ClassVar[str] = "baseline {name}"
    RESOURCES: ClassVar[str] = "pool"
    describe = staticmethod(describe_metrics)

    def memory_bytes(self, cfg: dict) -> float:
        """A process holding every graph it reads (features, edges, labels)."""
        return PROCESS_BYTES + len(self.graphs) * GRAPH_BYTES_PER_ATOM * cfg["system"]["n_atoms"]
    name: str
    kind: str
    split: Section
    directions: tuple
    threshold_A2: float
    bootstrap: int
    seed: int
    graphs: tuple = upstream("rows")  # ((specimen, direction, graph key), ...) of every specimen
    feature_set: str | None = optional()  # the columns it is fitted on; None: the study's 19
    responses: tuple | None = optional("rows")  # as TrainFold's
    softenings: tuple | None = optional("rows")  # as TrainFold's
    lys: tuple | None = optional("rows")        # as TrainFold's

    @classmethod
    def plan(cls, cfg, planned):
        graphs, parts = graphs_of(planned), _split_section(cfg)
        return [cls(name=f"{kind}-t{t:g}" + ("" if fs == STUDY else f"-{fs}"), kind=kind,
                    split=parts, directions=tuple(cfg["shear"]["directions"]), threshold_A2=t,
                    bootstrap=cfg["report"]["bootstrap"], seed=cfg["train"]["seed"], graphs=graphs,
                    **joined(planned, fs))
                for fs in cfg["features"]["sets"] for kind in cfg["report"]["baselines"]
                for t in cfg["labels"]["thresholds_A2"]
                if (kind != "random" or fs == cfg["features"]["sets"][0])  # random scores read no feature
                and (lys_covers_all(cfg) or not needs_lys([fs]))]  # (a subset's is the comparison's only)
