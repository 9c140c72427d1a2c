"""The launch loop: which tasks go to the cluster when, as what job, and what their outcomes change.

``Dispatcher(...).run()`` submits every group of tasks (``Task.batch``: e.g. the folds of one grid point)
whose inputs are done, reads each job's ``Outcome`` as it comes back, runs again the inputs a job found
damaged, and submits what that made ready, until nothing waits that can run. ``spec`` and ``group_spec``
are the JSON a job is started with (``python -m jobs SPEC``), also for benches and tests.
"""
from __future__ import annotations

import collections
import hashlib
import time

from campaign import state
from campaign.cluster import declares_gpu_pool, lost
from campaign.execute import execute
from campaign.outcome import Outcome
from campaign.resources import GPU, resources
from campaign.version import code_version
from store import records
from store.layout import StoreError

MAX_RERUNS = 2  # times one launch runs again an input found damaged (a failing disk would loop)


def spec(task, store: str, cfg: dict, threads: int = 1) -> dict:
    """The spec of one task's job, what ``jobs.common.Spec`` is rebuilt from: its params are the task's own
    and its runtime options under ``cfg`` (the job's ``Params``)."""
    return {"stage": task.STAGE, "job": task.JOB, "key": task.key, "store": store, "code_version": code_version(),
            "params": {**task.params(), **task.runtime(cfg)}, "path": task.path, "described": task.described(),
            "threads": threads}


def groups_of(tasks: list, cfg: dict) -> list[list]:
    """Tasks as submissions: one per batch (``Task.batch``; e.g. the folds of one grid point)."""
    groups: dict = {}
    for t in tasks:
        groups.setdefault(t.batch(cfg), []).append(t)
    return list(groups.values())


def group_spec(group: list, store: str, cfg: dict) -> dict:
    """One job's spec for a group of tasks (usually a group of one): with several, each keeps its record."""
    first = group[0]
    out = spec(first, store, cfg, first.cores(cfg)[1])
    batch = first.batch_params(group)
    if batch:
        members = [t.key for t in group]
        out["key"] = "batch-" + hashlib.sha256(" ".join(members).encode()).hexdigest()[:16]
        out["members"] = members
        out["params"].update(batch)
    return out


def describe(task, summary: dict) -> str:
    """The task's line about its summary; nothing where the summary lacks what it shows."""
    try:
        return task.describe(summary)
    except (KeyError, TypeError, ValueError):
        return ""


def run(client, cfg: dict, tasks: list, todo: list, states: dict, store: str, out, held) -> int:
    """Run ``todo`` on ``client`` with a progress board on ``out`` (``Dispatcher``); returns the tasks that
    failed or could not run."""
    from campaign.progress import Board

    board = Board(store, len(todo), out, held)
    try:
        return Dispatcher(board, client, cfg, tasks, todo, states, store, held).run()
    finally:
        board.close()


class Dispatcher:
    """One launch's loop over ``todo`` (tasks of ``tasks`` not done; ``states`` by key, updated as outcomes
    arrive) on a Dask ``client``, printing to ``board`` (``campaign.progress.Board``) while ``held`` (the
    store's lock) is still this launcher's."""

    def __init__(self, board, client, cfg: dict, tasks: list, todo: list, states: dict, store: str, held):
        self.board, self.client, self.cfg, self.store, self.held = board, client, cfg, store, held
        self.states, self.todo = states, todo
        self.by_key = {t.key: t for t in tasks}
        self.waiting = {t.key: t for t in todo}
        self.running: dict = {}  # future: its group
        self.rerun: collections.Counter = collections.Counter()  # inputs run again because found damaged
        self.finished, self.total = 0, len(todo)
        workers = client.scheduler_info().get("workers", {}).values()  # SLURM GPU jobs may still be queued
        self.gpu = declares_gpu_pool(cfg) or any(GPU in (w.get("resources") or {}) for w in workers)
        self.ready = None

    def submit_ready(self) -> None:
        """Submit every waiting group whose inputs are done (nothing once another launcher took the store)."""
        if not self.held.still_held():
            return
        ready_now = [t for t in self.waiting.values() if all(self.states.get(d) == state.DONE for d in t.deps)]
        for group in groups_of(ready_now, self.cfg):
            for t in group:
                del self.waiting[t.key]
            first = group[0]
            ranks, threads = first.cores(self.cfg)
            job = group_spec(group, self.store, self.cfg)
            label = first.label if len(group) == 1 else f"{first.batch(self.cfg)} x{len(group)}"
            dask_key = f"{first.STAGE}-{label}-{job['key']}"  # the dashboard groups by stage, shows the label
            fut = self.client.submit(execute, job, ranks, threads, self.cfg["mpi"]["launcher"], key=dask_key,
                                     pure=False, resources=resources(group, self.cfg, self.gpu))
            self.running[fut] = group
            self.board.started(dask_key, job["key"], label, first.STAGE)
            self.ready.add(fut)

    def requeue_damaged(self, keys, group: list) -> bool:
        """A job found inputs ``keys`` not to be what their records describe (it moved those records
        aside): run each again unless it is already queued, running or redone (several jobs may read one
        damaged input), at most MAX_RERUNS times, then the group. False: the group failed as it is."""
        keys = [k for k in keys if k in self.by_key]
        in_flight = {t.key for g in self.running.values() for t in g} | set(self.waiting)
        redo = [k for k in keys if k not in in_flight
                and (records.read(self.store, k) or {}).get("status") != records.DONE]
        if not keys or any(self.rerun[k] >= MAX_RERUNS for k in redo):
            return False
        self.rerun.update(redo)
        self.total += len(redo)
        self.board.more(len(redo))
        for key in redo:
            self.states[key] = state.PENDING
            self.waiting[key] = self.by_key[key]
            self.board.line(f"[damaged] {self.by_key[key].label} ({key}): its data is not what its record "
                            "describes; running it again")
        for t in group:
            self.states[t.key] = state.PENDING
            self.waiting[t.key] = t
        return True

    def on_done(self, group: list, outcome: Outcome) -> None:
        """Each member's state from the outcome, and its line."""
        for t in group:
            status = outcome.members[t.key]
            self.states[t.key] = status
            self.finished += 1
            line = f"[{self.finished:>3}/{self.total}] {status:<6} {t.label:<22} {outcome.seconds:7.1f} s"
            if status == state.DONE:
                self.board.line(f"{line}  {describe(t, outcome.summary(t.key))}")
            else:
                self.board.line(f"{line}  {outcome.reason.strip().splitlines()[-1][:200]}")
        self.board.finished(len(group))

    def run(self) -> int:
        """Until nothing waits that can run; returns the tasks that failed or could not run (their inputs
        failed). StoreError if another launcher took the store over meanwhile."""
        from distributed import as_completed

        t0 = time.time()
        self.ready = as_completed()
        self.submit_ready()
        for fut in self.ready:
            group = self.running.pop(fut)
            self.board.ended(fut.key)
            try:
                outcome = fut.result()
            except Exception as e:  # the cluster lost it (its workers died), not the job: record it, go on
                outcome = lost(e, [t.key for t in group], group[0].STAGE, self.store, code_version())
            if not self.requeue_damaged(outcome.damaged_inputs, group):
                self.on_done(group, outcome)
            self.submit_ready()
        blocked = len(self.waiting)
        failed = sum(1 for t in self.todo if self.states[t.key] == state.FAILED)
        self.board.line(f"finished in {time.time() - t0:.1f} s: {self.finished - failed} done, {failed} failed, "
                        f"{blocked} not run (an upstream task failed)")
        if not self.held.still_held():
            raise StoreError(f"another launcher took over the lock of {self.store} while this one ran (was this "
                             "process suspended?); this one stopped submitting tasks, and the other goes on")
        return failed + blocked
