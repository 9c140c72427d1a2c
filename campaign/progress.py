"""What runs now, how far it is, and when the campaign should end: read beside the store.

Three sources, all files beside the store, so that ``status`` reads them from any process:
the launcher's list of the jobs it runs (``store.layout.running_path``, rewritten at every
submission and completion), each job's own progress (``store.layout.progress_path``, written by
``jobs.common.Progress``), and the launcher's lock (``store.lock``), whose heartbeat says the
launcher is alive. Nothing is shown as running unless the launcher that listed it is alive,
and a job's progress is shown only while its process is (same host) or its report is fresh.
"""
from __future__ import annotations

import collections
import os
import socket
import time

import psutil

from store import layout, lock
from store.records import DONE

STALE_PROGRESS_S = 3600.0  # a report from another host older than this is not trusted as current


def launcher(store: str, stale_after_s: float) -> dict | None:
    """The holder of the store's lock if it is alive, else None."""
    holder = lock.read_holder(store)
    return None if holder is None or lock.is_stale(holder, stale_after_s) else holder


def _alive(report: dict) -> bool:
    if report.get("host") == socket.gethostname():
        return psutil.pid_exists(int(report.get("pid", -1)))
    return time.time() - report.get("time", 0) < STALE_PROGRESS_S


def running(store: str, holder: dict | None) -> list[dict]:
    """The jobs the live launcher ``holder`` (see :func:`launcher`) has submitted: {dask_key, key,
    label, stage, submitted, and once the job reports: host, started, done, total, unit, now, eta_s
    (from this run's own rate: a resumed job starts part way)}. Empty without a live launcher, or
    when the list beside the store is another launcher's."""
    listed = layout.read_json(layout.running_path(store)) or {}
    if holder is None or listed.get("token") != holder.get("token"):
        return []
    rows = []
    for dask_key, job in listed.get("jobs", {}).items():
        row = {"dask_key": dask_key, **job}
        report = layout.read_json(layout.progress_path(store, job["key"]))
        if report and _alive(report):
            row.update({k: report[k] for k in ("host", "started", "done", "total", "unit", "now")})
            (t0, done0), t = report["first"], report["time"]
            rate = (report["done"] - done0) / (t - t0) if t > t0 and report["done"] > done0 else None
            row["eta_s"] = (report["total"] - report["done"]) / rate + (t - time.time()) if rate else None
        rows.append(row)
    return sorted(rows, key=lambda r: r["submitted"])


def stage_seconds(tasks: list, records: dict) -> dict[str, float]:
    """Mean wall seconds of each stage's done tasks in this store (a stacked fold counts its share)."""
    seconds = collections.defaultdict(list)
    for t in tasks:
        rec = records.get(t.key)
        if rec and rec.get("status") == DONE and rec.get("seconds"):
            seconds[t.STAGE].append(rec["seconds"])
    return {stage: sum(v) / len(v) for stage, v in seconds.items()}


def capacity(cfg: dict) -> int:
    """Cores the campaign's tasks share: the local cluster's, or the SLURM CPU jobs'."""
    if cfg["cluster"]["kind"] == "slurm":
        s = cfg["cluster"]["slurm"]
        return s["cores"] * (s["maximum_jobs"] if s["adaptive"] else s["jobs"])
    return cfg["cluster"]["cores"] or os.cpu_count() or 1


def estimate_end(cfg: dict, left: list, per_stage: dict[str, float], now_running: list[dict]) -> tuple:
    """(seconds until the campaign ends, stages with no measured duration yet) for the tasks ``left``
    (not done), from the per-stage durations measured so far: their core-seconds spread over the
    campaign's cores, or, if longer, the longest job running now. A rough guide, not a schedule."""
    unknown = sorted({t.STAGE for t in left if t.STAGE not in per_stage})
    work = sum(per_stage.get(t.STAGE, 0.0) * t.cores(cfg)[0] * t.cores(cfg)[1] for t in left)
    longest = max((r.get("eta_s") or 0.0 for r in now_running), default=0.0)
    return max(work / capacity(cfg), longest), unknown


def clock(seconds: float | None) -> str:
    """Seconds as '3 h 05 min', '12 min', '40 s' ('?' if unknown)."""
    if seconds is None:
        return "?"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"


def describe(row: dict, where: str = "") -> str:
    """One line about a running job; ``where``: e.g. 'SLURM job 8812 on node017 (worker cpu-2)'."""
    line = f"running {row['label']:<22} {row['key']}"
    if where:
        line += f"  {where}"
    elif row.get("host"):
        line += f"  on {row['host']}"
    if "done" in row:
        fraction = row["done"] / row["total"] if row["total"] else 0.0
        line += (f"  {clock(time.time() - row['started'])} elapsed, {row['done']:,} of {row['total']:,} "
                 f"{row['unit']} ({fraction:.0%}), about {clock(row['eta_s'] and max(row['eta_s'], 0))} left")
        if row.get("now"):
            line += "  " + " ".join(f"{k} {v}" for k, v in row["now"].items())
    else:
        line = line.replace("running", "queued ", 1)
        line += f"  submitted {clock(time.time() - row['submitted'])} ago, no progress report yet (waiting for a " \
                "worker, starting, or a short task)"
    return line


class Board:
    """The launcher's side: the jobs it has submitted, published beside the store (``running_path``,
    stamped with the token of the launcher's lock, ``held``), and one line per finished task; on a
    terminal a tqdm line below them says done / submitted / total, elapsed and the estimated end.
    Not on a terminal (SLURM logs, CI) the lines alone, unchanged."""

    def __init__(self, store: str, total: int, out, held):
        self.path, self.out, self.held, self.jobs = layout.running_path(store), out, held, {}
        self.bar = None
        if hasattr(out, "isatty") and out.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, file=out, unit="task", dynamic_ncols=True, leave=False)
        self._publish()  # replaces a dead launcher's list at once

    def started(self, dask_key: str, key: str, label: str, stage: str) -> None:
        self.jobs[dask_key] = {"key": key, "label": label, "stage": stage, "submitted": time.time()}
        self._publish()

    def ended(self, dask_key: str) -> None:
        self.jobs.pop(dask_key, None)
        self._publish()

    def finished(self, n: int) -> None:
        """``n`` tasks finished (done or failed)."""
        if self.bar is not None:
            self.bar.update(n)

    def more(self, n: int) -> None:
        """``n`` more tasks to run than announced (inputs found damaged, run again)."""
        if self.bar is not None:
            self.bar.total += n
            self.bar.refresh()

    def line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.out)
        else:
            print(text, file=self.out, flush=True)

    def _publish(self) -> None:
        if self.held.still_held():  # a launcher taken over must not overwrite its successor's list
            layout.write_json(self.path, {"token": self.held.token, "jobs": self.jobs})
        if self.bar is not None:
            self.bar.set_postfix(submitted=len(self.jobs), refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if (layout.read_json(self.path) or {}).get("token") == self.held.token:
            os.remove(self.path)
