"""What a task's job came to, as the data a Dask worker hands back to the launcher (``campaign.execute``,
``campaign.cluster.lost``) and the launch loop reads (``campaign.dispatch``)."""
from __future__ import annotations

from dataclasses import dataclass, field

from store import records


@dataclass(frozen=True)
class Outcome:
    """``status`` done or failed (``store.records``); ``members``: each task's key the job stood for, its
    status; ``seconds`` of the job; for a done job each member's record ``summaries``; for a failed one the
    ``reason`` (its first failed member's) and ``damaged_inputs``, the keys of inputs the job found not to
    be what their records describe (their records moved aside)."""
    status: str
    members: dict[str, str]
    seconds: float = 0.0
    summaries: dict[str, dict] = field(default_factory=dict)
    reason: str = ""
    damaged_inputs: tuple[str, ...] = ()

    @classmethod
    def done(cls, recs: dict[str, dict], members: list[str], seconds: float) -> Outcome:
        """Every member done, by its record in ``recs``."""
        return cls(records.DONE, {m: records.DONE for m in members}, seconds,
                   summaries={m: recs[m].get("summary", {}) for m in members})

    @classmethod
    def failed(cls, members: dict[str, str], seconds: float, reason: str, damaged_inputs=()) -> Outcome:
        return cls(records.FAILED, members, seconds, reason=reason, damaged_inputs=tuple(sorted(damaged_inputs)))

    def summary(self, key: str) -> dict:
        """Member ``key``'s record summary ({} unless it is done)."""
        return self.summaries.get(key, {})
