"""The campaign's task graph, derived from the configuration and the registered stages."""
from __future__ import annotations

import campaign.stages  # noqa: F401  (registers every stage)
from campaign.tasks import STAGES, Task


def plan(cfg: dict) -> list[Task]:
    """Every task of the campaign, upstream before downstream: each stage's ``plan``, in the
    order the stages were defined, given the tasks planned before it."""
    planned: dict[str, list[Task]] = {}
    for stage, cls in STAGES.items():
        planned[stage] = cls.plan(cfg, planned)
    return [t for tasks in planned.values() for t in tasks]
