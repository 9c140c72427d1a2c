"""The local yield stress stage (beyond the study): batches of regions of each (specimen, direction)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from campaign.config import keyed, lys_count, lys_directions
from campaign.tasks import Section, Task, upstream

# the lys keys a region's result reads
PROTOCOL = ("radius_A", "shell_A", "strain_step", "max_strain", "departure_GPa", "refine")


def lys_specimens(cfg: dict, planned: dict) -> list[int]:
    """The specimens whose local yield stress is computed: the first ``lys.specimens`` (0: every one)."""
    return sorted(q.specimen for q in planned["quench"])[:lys_count(cfg)]


def lys_covers_all(cfg: dict) -> bool:
    """Whether the local yield stress is computed for every specimen (else only for a subset)."""
    return lys_count(cfg) == cfg["quench"]["specimens"]


@dataclass(frozen=True)
class LocalYield(Task):
    """Regions ``first`` .. ``first + count - 1`` of the ``shape`` grid of specimen ``specimen``, each
    sheared locally in ``direction`` to its first plastic event (``jobs.lys``): τ_0, τ_c, Δτ_c."""
    STAGE: ClassVar[str] = "lys"
    # 2: the first event as a departure from the elastic response, refined; own volume. 3: the refined
    # curve starts from step k's stress (2 read LAMMPS's stale one, of step k + 1)
    VERSION: ClassVar[int] = 3
    JOB: ClassVar[str] = "jobs.lys:LocalYieldJob"
    PLACE: ClassVar[str] = "specimens/s{specimen:03d}/lys/{direction}/r{first}"
    LABEL: ClassVar[str] = "lys s{specimen:03d} {direction} r{first}"
    quench_key: str = upstream()
    specimen: int
    direction: str
    system: Section
    lys: Section            # the protocol (PROTOCOL keys)
    minimize: Section
    shape: tuple            # regions along a, b, c
    first: int
    count: int

    @staticmethod
    def describe(summary):
        mean = summary["mean_dtau_c_GPa"]
        return (f"{summary['yielded']}/{summary['regions']} regions yielded, mean residual strength "
                f"{'-' if mean is None else f'{mean:.2f}'} GPa, {summary['seconds_per_region']:.1f} s a region")

    @classmethod
    def plan(cls, cfg, planned):
        lys = cfg["lys"]
        n = lys["regions_per_axis"]
        if not n:
            return []
        shape, total, size = (n, n, n), n ** 3, lys["regions_per_task"]
        wanted = set(lys_specimens(cfg, planned))
        return [cls(quench_key=q.key, specimen=q.specimen, direction=d, system=Section.of(cfg["system"]),
                    lys=Section.pick(lys, PROTOCOL), minimize=Section.of(keyed(cfg, "minimize")), shape=shape,
                    first=first, count=min(size, total - first))
                for q in planned["quench"] if q.specimen in wanted
                for d in lys_directions(cfg) for first in range(0, total, size)]
