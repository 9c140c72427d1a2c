"""The comparison "What predicts the first STZ" (beyond the study): models and single scores in an
outer, specimen-grouped cross-validation over every specimen, so that each is tested once.

Each model trains on the other folds' specimens and early-stops on an inner share of them (the
final models' protocol), then scores its fold's. The GATs reuse the grid's job (one architecture,
``compare.point``, for every feature set; its outer folds train as one stack); the non-graph models
and the single scores reuse the baselines' job. ``campaign.comparison`` pools the folds into
the report's rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from campaign.config import outer_fold_count
from campaign.stages.learning import Baseline, TrainFold, graphs_of, joined, steps_per_epoch, train_options
from campaign.stages.lys import lys_specimens
from campaign.tasks import Section, optional
from kernels.features import STUDY, needs_lys, set_holding
from kernels.split import fold_sets


def row_specimens(cfg: dict, planned: dict, feature_set: str) -> list[int]:
    """The specimens a row on ``feature_set`` is tested on: every one, or those with a local yield
    stress (``lys.specimens``) where the set holds it."""
    if needs_lys([feature_set]):
        return lys_specimens(cfg, planned)
    return sorted(q.specimen for q in planned["quench"])


def outer_folds(cfg: dict, specimens: list[int]) -> list[tuple[tuple, tuple, tuple]]:
    """(tested, fitted on, stopped on) specimens of each outer fold of ``compare.folds`` (at most one
    fold per specimen) over ``specimens`` (inner shares seeded apart from the grid's)."""
    seed = cfg["split"]["seed"]
    return fold_sets(specimens, outer_fold_count(cfg, len(specimens)), cfg["split"]["fractions"], seed,
                     inner_seed=seed + 100)


@dataclass(frozen=True)
class CompareGNN(TrainFold):
    """Outer fold ``fold`` of a compared GNN on one feature set: the study's GAT (``gat``), the
    direction-aware one (``gat_edges``: each edge carries its bond vector in the shear frame), or
    another PyG convolution (``compare.convs``)."""
    STAGE: ClassVar[str] = "compare-gnn"
    VERSION: ClassVar[int] = 1
    PLACE: ClassVar[str] = "training/compare/{model}/fold{fold}{seed_suffix}"
    LABEL: ClassVar[str] = "compare {model} f{fold}{seed_suffix}"
    STACK: ClassVar[str] = "compare {model}{seed_suffix}"  # the outer folds of one training run as one stack
    repeat: int | None = optional()  # the training's index among compare.seeds (seed train.seed + repeat); None: 0

    @property
    def model(self) -> str:
        """The comparison's row: e.g. gat_edges-study19, or GATv2Conv_edges-study19."""
        return f"{self.conv or 'gat'}{'_edges' if self.quenches else ''}-{self.feature_set or STUDY}"

    @property
    def seed_suffix(self) -> str:
        return f"-seed{self.repeat}" if self.repeat else ""

    @classmethod
    def plan(cls, cfg, planned):
        if not cfg["compare"]["folds"]:
            return []
        layers, width, heads = cfg["compare"]["point"]
        quenches = tuple((q.specimen, q.key) for q in planned["quench"])
        # (conv, with bond vectors): the stacked GAT without and with, then each PyG convolution, with
        # the bond vectors where it takes edge features
        models = [(None, m == "gat_edges") for m in cfg["compare"]["models"] if m in ("gat", "gat_edges")]
        if cfg["compare"]["convs"]:
            from kernels.pyg_stack import takes_edge_features
            models += [(conv, takes_edge_features(conv)) for conv in cfg["compare"]["convs"]]
        options = train_options(cfg)
        # training r of compare.seeds: seed train.seed + r (r = 0 keeps the keys of before compare.seeds)
        runs = [(Section.of({**options, "seed": options["seed"] + r}), r or None)
                for r in range(cfg["compare"]["seeds"])]
        tasks = []
        for fs in cfg["features"]["sets"]:
            specimens = row_specimens(cfg, planned, fs)
            folds = outer_folds(cfg, specimens)
            tasks += [cls(layers=layers, width=width, heads=heads, fold=f, held_out=held, fit_on=fit_on,
                          stop_on=stop_on, directions=tuple(cfg["shear"]["directions"]),
                          threshold_A2=cfg["train"]["threshold_A2"], train=train,
                          steps_per_epoch=steps_per_epoch(folds, cfg), graphs=graphs_of(planned, specimens),
                          quenches=quenches if edges else None, conv=conv, repeat=repeat, **joined(planned, fs))
                      for conv, edges in models for train, repeat in runs
                      for f, (held, fit_on, stop_on) in enumerate(folds)]
        return tasks


@dataclass(frozen=True)
class CompareBaseline(Baseline):
    """Outer fold of a compared non-graph model (logistic, boosted_trees, random) on one feature set,
    or of a single column used as a score as it is (kind ``score:<column>``)."""
    STAGE: ClassVar[str] = "compare-baseline"
    VERSION: ClassVar[int] = 1
    PLACE: ClassVar[str] = "training/compare/{name}"
    LABEL: ClassVar[str] = "compare {name}"

    @property
    def model(self) -> str:
        """The comparison's row: the name less its fold."""
        return self.name.rsplit("/", 1)[0]

    @classmethod
    def plan(cls, cfg, planned):
        if not cfg["compare"]["folds"]:
            return []
        sets, compare = cfg["features"]["sets"], cfg["compare"]
        rows = [(f"{kind}-{fs}", kind, fs) for kind in compare["models"] if kind in ("logistic", "boosted_trees")
                for fs in sets]
        rows += [(f"random-{sets[0]}", "random", sets[0])] if "random" in compare["models"] else []
        # a column is read through the smallest set that holds it; '-c' (negated) is the row c_negated
        rows += [(c.lstrip("-") + ("_negated" if c.startswith("-") else ""), f"score:{c}", set_holding(c.lstrip("-")))
                 for c in compare["scores"]]
        tasks = []
        for row, kind, fs in rows:
            specimens = row_specimens(cfg, planned, fs)  # a score's fs: the smallest set holding its column
            tasks += [cls(name=f"{row}/fold{f}", kind=kind,
                          split=Section.of({"train": fit_on, "val": stop_on, "test": held}),
                          directions=tuple(cfg["shear"]["directions"]), threshold_A2=cfg["train"]["threshold_A2"],
                          bootstrap=0, seed=cfg["train"]["seed"], graphs=graphs_of(planned, specimens),
                          **joined(planned, fs))
                      for f, (held, fit_on, stop_on) in enumerate(outer_folds(cfg, specimens))]
        return tasks
