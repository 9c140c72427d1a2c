"""The specimens' stages: liquid, quench, shear and its labels, elastic and structural features,
and the graph of each (specimen, direction)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from campaign.config import compared_scores, keyed, n_snapshots, runtime_keys
from campaign.tasks import Section, Task, optional, upstream
from kernels import modes
from kernels.features import needs_response, needs_softening


def low_modes_bytes(eigensolver: str, atoms: int) -> float:
    """Memory of a specimen's low-mode solve (``kernels.modes.low_modes``): the dense solvers (and auto up to
    SHIFT_INVERT_MAX_DOF degrees of freedom) hold the (3N)² float64 dynamical matrix, its factor and the
    sparse Hessian, 1.65 dense copies in all (the rehearsal at 10,000 atoms: structure and response jobs
    peaked at 11.2 GiB, the matrix is 6.7 GiB); the sparse ones a few kB per atom."""
    dof = 3 * atoms
    dense = eigensolver in ("dense", "shift-invert", "torch") or (
        eigensolver == "auto" and dof <= modes.SHIFT_INVERT_MAX_DOF)
    return 1.65 * 8 * dof**2 if dense else 20_000 * atoms


def microstates(cfg: dict) -> list[int]:
    """Snapshot index of each specimen: a seeded permutation's prefix, so adding
    specimens keeps the earlier ones."""
    order = np.random.default_rng(cfg["seed"]).permutation(n_snapshots(cfg))
    return [int(i) for i in order[: cfg["quench"]["specimens"]]]


def _section(cfg: dict, name: str, leave_out: tuple = ()) -> Section:
    """Config section ``name`` less its runtime keys and ``leave_out``."""
    return Section.of({k: v for k, v in cfg[name].items() if k not in leave_out and k not in runtime_keys(name)})


def _per_specimen(cls, cfg: dict, planned: dict, **fields) -> list:
    """One task of ``cls`` per quenched specimen, reading its quench, with the system and ``fields``."""
    return [cls(quench_key=q.key, specimen=q.specimen, system=Section.of(cfg["system"]), **fields)
            for q in planned["quench"]]


@dataclass(frozen=True)
class Liquid(Task):
    """Melt and equilibrate the liquid, storing every microstate."""
    STAGE: ClassVar[str] = "liquid"
    VERSION: ClassVar[int] = 1
    JOB: ClassVar[str] = "jobs.liquid:LiquidJob"
    PLACE: ClassVar[str] = "liquid"
    LABEL: ClassVar[str] = "liquid"
    system: Section
    liquid: Section
    minimize: Section
    seed: int

    @staticmethod
    def describe(summary):
        return f"{summary['mean_temperature_K']:.0f} K, {summary['mean_density_per_A3']:.4f} atoms/A^3"

    @classmethod
    def plan(cls, cfg, planned):
        return [cls(system=Section.of(cfg["system"]), liquid=Section.of(cfg["liquid"]),
                    minimize=Section.of(keyed(cfg, "minimize")), seed=cfg["seed"])]


@dataclass(frozen=True)
class Quench(Task):
    """Quench microstate ``microstate`` into specimen ``specimen``."""
    STAGE: ClassVar[str] = "quench"
    VERSION: ClassVar[int] = 1
    JOB: ClassVar[str] = "jobs.quench:QuenchJob"
    PLACE: ClassVar[str] = "specimens/s{specimen:03d}/quenched"
    LABEL: ClassVar[str] = "quench s{specimen:03d}"
    liquid_key: str = upstream()
    specimen: int
    microstate: int
    system: Section
    quench: Section
    liquid_state: Section
    minimize: Section

    @staticmethod
    def describe(summary):
        return f"{summary['energy_per_atom_eV']:.4f} eV/atom, {summary['density_per_A3']:.4f} atoms/A^3"

    @classmethod
    def plan(cls, cfg, planned):
        liquid, = planned["liquid"]
        state = Section.pick(cfg["liquid"], ("temperature_K", "pressure_bar"))
        return [cls(liquid_key=liquid.key, specimen=k, microstate=m, system=Section.of(cfg["system"]),
                    quench=_section(cfg, "quench", leave_out=("specimens",)), liquid_state=state,
                    minimize=Section.of(keyed(cfg, "minimize")))
                for k, m in enumerate(microstates(cfg))]

    def runtime(self, cfg) -> dict:
        return {"checkpoint_ps": cfg["quench"]["checkpoint_ps"]}


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
    JOB: ClassVar[str] = "jobs.shear:ShearJob"
    PLACE: ClassVar[str] = "specimens/s{specimen:03d}/shear/{direction}"
    LABEL: ClassVar[str] = "shear s{specimen:03d} {direction}"
    quench_key: str = upstream()
    specimen: int
    direction: str
    system: Section
    shear: Section          # max_strain, strain_step
    d2min_cutoff_A: float
    minimize: Section

    @staticmethod
    def describe(summary):
        end = "max strain" if summary["reached_max_strain"] else "its stop rule"
        return f"{summary['steps']} steps to strain {summary['final_strain']:.4f} ({end})"

    @classmethod
    def plan(cls, cfg, planned):
        return [cls(quench_key=q.key, specimen=q.specimen, direction=d, system=Section.of(cfg["system"]),
                    shear=_section(cfg, "shear", leave_out=("directions",)),
                    d2min_cutoff_A=cfg["labels"]["d2min_cutoff_A"], minimize=Section.of(keyed(cfg, "minimize")))
                for q in planned["quench"] for d in cfg["shear"]["directions"]]

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
    JOB: ClassVar[str] = "jobs.labels:LabelsJob"
    PLACE: ClassVar[str] = "specimens/s{specimen:03d}/labels/{direction}"
    LABEL: ClassVar[str] = "labels s{specimen:03d} {direction}"
    RESOURCES: ClassVar[str] = "serial"
    shear_key: str = upstream()
    specimen: int
    direction: str
    strain_step: float
    thresholds_A2: tuple
    min_group_size: int
    event: str              # anywhere | cluster (kernels.labels)
    positive: str           # above | cluster: which atoms of a cluster event are labelled
    d2min_cutoff_A: float   # neighbours that join a cluster

    @staticmethod
    def describe(summary):
        fired = ["-" if s is None or s != s else f"{s:.4f}" for s in summary["first_strain"]]
        return f"first events at strain {' '.join(fired)} ({' '.join(map(str, summary['event_atoms']))} atoms)"

    @classmethod
    def plan(cls, cfg, planned):
        lab = cfg["labels"]
        return [cls(shear_key=s.key, specimen=s.specimen, direction=s.direction,
                    strain_step=cfg["shear"]["strain_step"], thresholds_A2=tuple(lab["thresholds_A2"]),
                    min_group_size=lab["min_group_size"], event=lab["event"], positive=lab["positive"],
                    d2min_cutoff_A=lab["d2min_cutoff_A"])
                for s in planned["shear"]]


@dataclass(frozen=True)
class Elastic(Task):
    """Per-atom stress and relaxed stiffness of specimen ``specimen`` (LAMMPS)."""
    STAGE: ClassVar[str] = "elastic"
    VERSION: ClassVar[int] = 1
    JOB: ClassVar[str] = "jobs.elastic:ElasticJob"
    PLACE: ClassVar[str] = "specimens/s{specimen:03d}/elastic"
    LABEL: ClassVar[str] = "elastic s{specimen:03d}"
    quench_key: str = upstream()
    specimen: int
    system: Section
    elastic: Section
    minimize: Section

    @staticmethod
    def describe(summary):
        return f"C44 C55 C66 = {summary['C44_GPa']:.1f} {summary['C55_GPa']:.1f} {summary['C66_GPa']:.1f} GPa"

    @classmethod
    def plan(cls, cfg, planned):
        return _per_specimen(cls, cfg, planned, minimize=Section.of(keyed(cfg, "minimize")),
                             elastic=Section.pick(cfg["features"], ("stiffness_strain", "stiffness_ftol")))


@dataclass(frozen=True)
class Structure(Task):
    """Voronoi cells and low-mode participation fractions of specimen ``specimen`` (no LAMMPS)."""
    STAGE: ClassVar[str] = "structure"
    VERSION: ClassVar[int] = 1
    JOB: ClassVar[str] = "jobs.structure:StructureJob"
    PLACE: ClassVar[str] = "specimens/s{specimen:03d}/structure"
    LABEL: ClassVar[str] = "structure s{specimen:03d}"
    RESOURCES: ClassVar[str] = "threads"
    quench_key: str = upstream()
    specimen: int
    system: Section
    structure: Section

    @staticmethod
    def describe(summary):
        return (f"{summary['icosahedral_fraction']:.1%} <0,0,12,0>, {summary['mean_neighbours']:.1f} Voronoi "
                f"neighbours, {summary['n_low_modes']} low modes")

    @classmethod
    def plan(cls, cfg, planned):
        return _per_specimen(cls, cfg, planned, structure=Section.pick(
            cfg["features"], ("face_area_fraction", "low_mode_fraction", "eigensolver")))

    def memory_bytes(self, cfg: dict) -> float:
        return super().memory_bytes(cfg) + low_modes_bytes(dict(self.structure)["eigensolver"],
                                                           cfg["system"]["n_atoms"])

    @property
    def wants_gpu(self) -> bool:
        """On a GPU worker when the cluster has them if its eigensolver may be the GPU's (auto, torch): a dense
        eigh of the 30,000² dynamical matrix of 10,000 atoms takes 20 s on an H200 (issue 22); the Voronoi
        cells and the Hessian are computed on that worker's CPU."""
        return dict(self.structure)["eigensolver"] in ("auto", "torch")


@dataclass(frozen=True)
class _AtRest(Task):
    """A specimen's computation on the Hessian of its quenched glass at rest, for each of its shears
    (no LAMMPS): one Hessian, its lowest modes and one factorisation serve every direction."""
    RESOURCES: ClassVar[str] = "threads"
    quench_key: str = upstream()
    specimen: int
    system: Section
    eigensolver: str
    directions: tuple

    @classmethod
    def _plan(cls, cfg: dict, planned: dict, **fields) -> list:
        return _per_specimen(cls, cfg, planned, eigensolver=cfg["features"]["eigensolver"],
                             directions=tuple(cfg["shear"]["directions"]), **fields)

    def memory_bytes(self, cfg: dict) -> float:
        return super().memory_bytes(cfg) + low_modes_bytes(self.eigensolver, cfg["system"]["n_atoms"])


@dataclass(frozen=True)
class Response(_AtRest):
    """The linear response of specimen ``specimen`` to each of its shears (kernels.response): |u|, its
    low-mode part and the mode drive per atom and direction."""
    STAGE: ClassVar[str] = "response"
    VERSION: ClassVar[int] = 1
    JOB: ClassVar[str] = "jobs.response:ResponseJob"
    PLACE: ClassVar[str] = "specimens/s{specimen:03d}/response"
    LABEL: ClassVar[str] = "response s{specimen:03d}"
    low_mode_fraction: float

    @classmethod
    def plan(cls, cfg, planned):
        if not needs_response(cfg["features"]["sets"], compared_scores(cfg)):
            return []
        return cls._plan(cfg, planned, low_mode_fraction=cfg["features"]["low_mode_fraction"])

    @staticmethod
    def describe(summary):
        return (f"mean |u| {summary['mean_u_A']:.2f} A per unit strain, "
                f"{summary['seconds_per_direction']:.2f} s a direction")


PATH_KEYS = ("continuation_steps", "path_mode_fraction")  # the softening's keys of the path (kernels.continuation)


@dataclass(frozen=True)
class Softening(_AtRest):
    """The mode softening of specimen ``specimen`` under each of its shears (kernels.softening): the
    predicted unstable mode's |ψ*_i|², the per-mode crossing score, and the predicted strains γ* and
    γ_min per direction; D′ once per axis."""
    STAGE: ClassVar[str] = "softening"
    VERSION: ClassVar[int] = 1
    JOB: ClassVar[str] = "jobs.softening:SofteningJob"
    PLACE: ClassVar[str] = "specimens/s{specimen:03d}/softening"
    LABEL: ClassVar[str] = "softening s{specimen:03d}"
    softening: Section  # mode_fraction, path_step, knots_every
    # continuation_steps and path_mode_fraction, when the path is followed (named 'path' until 2026-12-06, which
    # hid Task.path, the task's group in the store: every softening task with it set or not failed to write)
    continuation: Section | None = optional()

    @classmethod
    def plan(cls, cfg, planned):
        if not needs_softening(cfg["features"]["sets"], compared_scores(cfg)):
            return []
        s = cfg["softening"]
        path = Section.pick(s, PATH_KEYS) if s["continuation_steps"] else None
        return cls._plan(cfg, planned, softening=Section.of({k: v for k, v in s.items() if k not in PATH_KEYS}),
                         continuation=path)
    @staticmethod
    def describe(summary):
        gamma = summary["median_gamma_star"]
        return (f"gamma* {gamma:.4f} (median over directions)" if gamma is not None else "no crossing predicted") + \
            f", {summary['seconds_per_direction']:.2f} s a direction"


@dataclass(frozen=True)
class Graph(Task):
    """The graph of specimen ``specimen`` sheared in ``direction``: features, edges, labels."""
    STAGE: ClassVar[str] = "graph"
    VERSION: ClassVar[int] = 2
    JOB: ClassVar[str] = "jobs.graph:GraphJob"
    PLACE: ClassVar[str] = "specimens/s{specimen:03d}/graphs/{direction}"
    LABEL: ClassVar[str] = "graph s{specimen:03d} {direction}"
    RESOURCES: ClassVar[str] = "serial"
    quench_key: str = upstream()
    structure_key: str = upstream()
    elastic_key: str = upstream()
    labels_key: str = upstream()
    specimen: int
    direction: str

    @staticmethod
    def describe(summary):
        return f"{summary['n_edges']} edges, STZ atoms per threshold {summary['positives']}"

    @classmethod
    def plan(cls, cfg, planned):
        of_specimen = {stage: {t.specimen: t for t in planned[stage]}
                       for stage in ("quench", "structure", "elastic")}
        return [cls(quench_key=of_specimen["quench"][lab.specimen].key,
                    structure_key=of_specimen["structure"][lab.specimen].key,
                    elastic_key=of_specimen["elastic"][lab.specimen].key, labels_key=lab.key,
                    specimen=lab.specimen, direction=lab.direction)
                for lab in planned["labels"]]
