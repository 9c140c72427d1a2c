"""Launch or resume a campaign: run every planned task that has no completion record."""
from __future__ import annotations

import collections
import hashlib
import os
import sys
import time

from campaign import config as config_mod
from campaign import state
from campaign.cluster import declares_gpu_pool, lost, open_cluster
from campaign.execute import execute
from campaign.plan import plan as make_plan
from campaign.progress import Board
from campaign.resources import GPU, check_memory, resources
from campaign.values import duration_seconds
from campaign.version import code_version
from kernels import memory
from store import layout, records
from store.layout import StoreError
from store.lock import StoreLock

MAX_RERUNS = 2  # times one launch runs again an input found damaged (a failing disk would loop)


def _spec(task, store: str, threads: int) -> dict:
    return {"stage": task.STAGE, "job": task.JOB, "key": task.key, "store": store, "code_version": code_version(),
            "params": task.params(), "path": task.path, "described": task.described(), "threads": threads}


def _describe(task, summary: dict) -> str:
    """The task's line about its summary; nothing where the summary lacks what it shows."""
    try:
        return task.describe(summary)
    except (KeyError, TypeError, ValueError):
        return ""


def launch(cfg: dict, dry_run: bool = False, out=None) -> int:
    """Run what is missing or failed. Returns the number of tasks that failed or could not run.

    One launcher per store: the store's lock (``store.lock``) is held from before anything is
    written until the report is; a second launch is refused with the holder's name."""
    out = out or sys.stdout
    store = os.path.abspath(cfg["store"])
    state.check_store(store)
    tasks = make_plan(cfg)
    print(f"campaign {cfg['preset']}  config {config_mod.science_hash(cfg)}  code {code_version()}", file=out)
    check_memory(_groups(tasks, cfg), cfg)
    if dry_run:
        _report_plan(tasks, store, cfg, out, dry_run=True)
        return 0
    stale_after = duration_seconds(cfg["cluster"]["lock_stale_after"])
    with StoreLock(store, stale_after, out=out) as held:
        states, todo = _report_plan(tasks, store, cfg, out)
        state.init_store(store, cfg, tasks, config_mod.science_hash(cfg), code_version())
        if not todo:
            _remove_leftovers(store, out)
            return 0
        for t in todo:  # done, but not enough for this configuration (a shear stopped early): run again
            rec = records.read(store, t.key)
            if rec is not None and rec["status"] == records.DONE:
                records.remove(store, t.key)
        with open_cluster(cfg) as client:
            print(f"dashboard: {client.dashboard_link}", file=out, flush=True)
            unfinished = _run(client, cfg, tasks, todo, states, store, out, held)
        _remove_leftovers(store, out)
        if unfinished == 0:
            from campaign.report import build
            build(cfg, out=out)
    return unfinished


def _remove_leftovers(store: str, out) -> None:
    """Under the lock, once this launcher's jobs have ended: the half-written files of killed writes."""
    removed = layout.remove_leftovers(store)
    if removed:
        print(f"removed {removed} temporary files left by writes that were killed", file=out)


def _report_plan(tasks: list, store: str, cfg: dict, out, dry_run: bool = False):
    """(states, tasks to run), printed: how much is done, and with --dry-run what would run."""
    states = state.task_states(tasks, store, cfg) if os.path.isdir(store) else {t.key: state.PENDING for t in tasks}
    todo = [t for t in tasks if states[t.key] != state.DONE]
    print(f"store {store}: {len(tasks) - len(todo)} of {len(tasks)} tasks done, {len(todo)} to run", file=out)
    if dry_run:
        for t in todo:
            print(f"  would run  {t.label:<22} {t.key}  ({states[t.key]})", file=out)
        _report_memory(todo, cfg, out)
    return states, todo


def _report_memory(todo: list, cfg: dict, out) -> None:
    """--dry-run: each grid point's training step as ``kernels.memory`` predicts it, and its stacks on a GPU."""
    points: dict = {}
    for t in todo:
        if t.STAGE == "train" and not t.conv:  # the stacked GAT (a PyG convolution is not modelled)
            points.setdefault((t.layers, t.width, t.heads), []).append(t)
    if not points:
        return
    atoms, batch, budget = cfg["system"]["n_atoms"], cfg["train"]["batch_graphs"], cfg["train"]["gpu_memory_GiB"]
    print(f"training memory, predicted (kernels.memory; {atoms} atoms x {batch} graphs a model and step, "
          f"{memory.EDGES_PER_NODE:g} edges per atom): a step of the stacked folds, one fold's, the graphs held:",
          file=out)
    for (layers, width, heads), folds in points.items():
        n = len(folds) if cfg["train"]["stack_folds"] else 1
        held = memory.data_bytes(sum(len(t.fit_on + t.stop_on + t.held_out) * len(t.directions) for t in folds[:n]),
                                 atoms)

        def step(k):  # called within this iteration only
            return memory.step_bytes(layers, width, heads, k * batch * atoms, k) + held  # noqa: B023

        if budget:
            plan = f"stacks {memory.plan(layers, width, heads, atoms, batch, n, budget * memory.GiB - held)} within " \
                   f"train.gpu_memory_GiB {budget:g}"
        else:
            plan = (
                f"all {n} stacked on a GPU of {(step(n) + memory.MARGIN[1]) / (1 - memory.MARGIN[0]) / 1e9:.0f} GB "
                "or more, else smaller stacks"
            )
        print(f"  L{layers}-M{width}-N{heads}  {n} folds {(step(n) - held) / memory.GiB:.2f} GiB, one "
              f"{(step(1) - held) / memory.GiB:.2f} GiB, graphs {held / memory.GiB:.2f} GiB: {plan}", file=out)


def _groups(tasks: list, cfg: dict) -> list[list]:
    """Ready tasks as submissions: one per batch (``Task.batch``; e.g. the folds of one grid point)."""
    groups: dict = {}
    for t in tasks:
        groups.setdefault(t.batch(cfg), []).append(t)
    return list(groups.values())


def _group_spec(group: list, store: str, cfg: dict) -> dict:
    """One job's spec for a group of tasks (usually a group of one)."""
    first = group[0]
    spec = _spec(first, store, first.cores(cfg)[1])
    spec["params"].update(first.runtime(cfg))
    batch = first.batch_params(group)
    if batch:  # a job standing for several tasks, each with its own record
        members = [t.key for t in group]
        spec["key"] = "batch-" + hashlib.sha256(" ".join(members).encode()).hexdigest()[:16]
        spec["members"] = members
        spec["params"].update(batch)
    return spec


def _gpu_pool(client) -> bool:
    """Whether any worker of the cluster offers a GPU resource."""
    workers = client.scheduler_info().get("workers", {}).values()
    return any(GPU in (w.get("resources") or {}) for w in workers)


def _run(client, cfg, tasks, todo, states, store, out, held) -> int:
    board = Board(store, len(todo), out, held)
    try:
        return _run_on(board, client, cfg, tasks, todo, states, store, held)
    finally:
        board.close()


def _run_on(board, client, cfg, tasks, todo, states, store, held) -> int:
    from distributed import as_completed

    by_key = {t.key: t for t in tasks}
    rerun = collections.Counter()  # inputs run again because a job found them damaged
    waiting = {t.key: t for t in todo}
    running = {}
    finished, total = 0, len(todo)
    t0 = time.time()
    gpu = declares_gpu_pool(cfg) or _gpu_pool(client)  # SLURM GPU jobs may still be queued

    def submit_ready():
        if not held.still_held():  # another launcher took the store over: submit nothing more
            return
        ready_now = [t for t in waiting.values() if all(states.get(d) == state.DONE for d in t.deps)]
        for group in _groups(ready_now, cfg):
            for t in group:
                del waiting[t.key]
            first = group[0]
            ranks, threads = first.cores(cfg)
            need = resources(group, cfg, gpu)
            spec = _group_spec(group, store, cfg)
            label = first.label if len(group) == 1 else f"{first.batch(cfg)} x{len(group)}"
            dask_key = f"{first.STAGE}-{label}-{spec['key']}"  # the dashboard groups by stage, shows the label
            fut = client.submit(execute, spec, ranks, threads, cfg["mpi"]["launcher"],
                                key=dask_key, pure=False, resources=need)
            running[fut] = group
            board.started(dask_key, spec["key"], label, first.STAGE)
            ready.add(fut)

    def _requeue_damaged(keys: list[str], group: list) -> bool:
        """A job found inputs not to be what their records describe (it moved those records aside):
        run each again unless it is already queued, running or redone (several jobs may read one
        damaged input), at most MAX_RERUNS times, then the group. False: the group failed as is."""
        nonlocal total
        keys = [k for k in keys if k in by_key]
        in_flight = {t.key for g in running.values() for t in g} | set(waiting)
        redo = [k for k in keys if k not in in_flight and (records.read(store, k) or {}).get("status") != records.DONE]
        if not keys or any(rerun[k] >= MAX_RERUNS for k in redo):
            return False
        rerun.update(redo)
        total += len(redo)
        board.more(len(redo))
        for key in redo:
            states[key] = state.PENDING
            waiting[key] = by_key[key]
            board.line(f"[damaged] {by_key[key].label} ({key}): its data is not what its record describes; "
                       "running it again")
        for t in group:
            states[t.key] = state.PENDING
            waiting[t.key] = t
        return True

    ready = as_completed()
    submit_ready()
    for fut in ready:
        group = running.pop(fut)
        board.ended(fut.key)
        try:
            outcome = fut.result()
        except Exception as e:  # the cluster lost it (its workers died), not the job: record it, go on
            outcome = lost(e, [t.key for t in group], group[0].STAGE, store, code_version())
        if _requeue_damaged(outcome.get("damaged_inputs", []), group):
            submit_ready()
            continue
        for t in group:
            status = outcome["members"][t.key]
            states[t.key] = status
            finished += 1
            line = f"[{finished:>3}/{total}] {status:<6} {t.label:<22} {outcome['seconds']:7.1f} s"
            if status == state.DONE:
                summary = outcome["summary"] if len(group) == 1 else outcome["summaries"].get(t.key, {})
                board.line(f"{line}  {_describe(t, summary)}")
            else:
                board.line(f"{line}  {outcome['reason'].strip().splitlines()[-1][:200]}")
        board.finished(len(group))
        submit_ready()
    blocked = len(waiting)
    failed = sum(1 for t in todo if states[t.key] == state.FAILED)
    board.line(f"finished in {time.time() - t0:.1f} s: {finished - failed} done, {failed} failed, "
               f"{blocked} not run (an upstream task failed)")
    if not held.still_held():
        raise StoreError(f"another launcher took over the lock of {store} while this one ran (was this "
                         "process suspended?); this one stopped submitting tasks, and the other goes on")
    return failed + blocked
