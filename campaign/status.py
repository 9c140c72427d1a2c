"""``python -m campaign status``: done, failed and pending tasks per stage."""
from __future__ import annotations

import os
import sys

from campaign import state
from campaign.plan import plan as make_plan
from store import lock, records


def status(cfg: dict, out=None) -> int:
    """Print the campaign's state; returns 1 if a task failed or was found damaged, else 0."""
    out = out or sys.stdout
    store = os.path.abspath(cfg["store"])
    tasks = make_plan(cfg)
    if os.path.isdir(store):
        state.check_store(store)
    states = state.task_states(tasks, store, cfg)
    print(f"store {store}" + ("" if os.path.isdir(store) else " (not created yet)"), file=out)
    print(f"{'stage':<10} {'done':>6} {'failed':>6} {'pending':>7}", file=out)
    for stage, counts in state.by_stage(tasks, states).items():
        print(f"{stage:<10} {counts[state.DONE]:>6} {counts[state.FAILED]:>6} {counts[state.PENDING]:>7}", file=out)
    holder = lock.read_holder(store)
    if holder is not None:
        print(f"launch running: {lock.describe(holder)}", file=out)
    recs = records.read_all(store) if os.path.isdir(store) else {}
    damaged = records.damaged(store) if os.path.isdir(store) else {}
    for t in tasks:
        if states[t.key] == state.FAILED:
            reason = recs[t.key].get("reason", "").strip().splitlines()
            print(f"failed  {t.label}  {t.key}: {reason[-1] if reason else ''}", file=out)
        elif states[t.key] == state.PENDING and t.key in damaged:
            print(f"damaged {t.label}  {t.key}: {damaged[t.key]['damage'][0]} (runs again at the next launch)",
                  file=out)
        elif states[t.key] == state.PENDING and t.key in recs:
            print(f"short   {t.label}  {t.key}: stopped before this configuration's largest threshold could fire "
                  "(runs again, further, at the next launch)", file=out)
    _print_running(cfg, tasks, out)
    return int(any(states[t.key] == state.FAILED or (states[t.key] == state.PENDING and t.key in damaged)
                   for t in tasks))


def _print_running(cfg: dict, tasks: list, out) -> None:
    """Tasks running now, with the SLURM job of their worker, when a launch on SLURM is running."""
    from campaign.slurm import running_tasks

    running = running_tasks(cfg)
    if running is None:
        return
    labels = {f"{t.STAGE}-{t.key}": t.label for t in tasks}
    print(f"running now: {len(running)} task(s)", file=out)
    for key, where in sorted(running.items()):
        job = f"SLURM job {where['job']}" if where["job"] else "no SLURM job"
        print(f"running {labels.get(key, key.split('-', 1)[0])}  {key.split('-', 1)[-1]}  "
              f"{job} on {where['host']} (worker {where['name']})", file=out)
