"""``python -m campaign status``: done, failed and pending tasks per stage; what runs now, how far
it is, and when the campaign should end (``campaign.progress``)."""
from __future__ import annotations

import os
import sys
import time

from campaign import progress, state
from campaign.plan import plan as make_plan
from campaign.values import duration_seconds
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
    stages = state.by_stage(tasks, states)
    width = max([10] + [len(s) for s in stages])
    print(f"{'stage':<{width}} {'done':>6} {'failed':>6} {'pending':>7}", file=out)
    for stage, counts in stages.items():
        print(f"{stage:<{width}} {counts[state.DONE]:>6} {counts[state.FAILED]:>6} {counts[state.PENDING]:>7}",
              file=out)
    holder = lock.read_holder(store)
    alive = progress.launcher(store, duration_seconds(cfg["cluster"]["lock_stale_after"]))
    if alive is not None:
        print(f"launch running: {lock.describe(alive)}", file=out)
    elif holder is not None:
        print(f"no launch running: a dead launcher's lock remains ({lock.describe(holder)}); the next "
              "launch takes it over", file=out)
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
    if alive is not None:
        _print_running(cfg, tasks, states, recs, alive, out)
    return int(any(states[t.key] == state.FAILED or (states[t.key] == state.PENDING and t.key in damaged)
                   for t in tasks))


def watch(cfg: dict, every_s: float = 10.0, out=None) -> int:
    """``status`` again every ``every_s`` seconds until interrupted (the screen cleared between on a
    terminal)."""
    out = out or sys.stdout
    if not every_s > 0:
        raise ValueError(f"--watch takes a number of seconds above 0, not {every_s}")
    try:
        while True:
            if out.isatty():
                out.write("\x1b[H\x1b[2J")  # home and clear: the one control sequence a refresh needs
            print(time.strftime("%Y-%m-%d %H:%M:%S"), file=out)
            status(cfg, out)
            out.flush()
            time.sleep(every_s)
    except KeyboardInterrupt:
        return 0


def _print_running(cfg: dict, tasks: list, states: dict, recs: dict, holder: dict, out) -> None:
    """What the live launcher ``holder`` runs now (with its progress, host and SLURM job) and when
    the campaign should end."""
    rows = progress.running(os.path.abspath(cfg["store"]), holder)
    where = {}
    if cfg["cluster"]["kind"] == "slurm":
        from campaign.slurm import running_tasks

        for dask_key, w in (running_tasks(cfg) or {}).items():
            job = f"SLURM job {w['job']}" if w["job"] else "no SLURM job"
            where[dask_key] = f"{job} on {w['host']} (worker {w['name']})"
    reporting = sum("done" in r for r in rows)
    print(f"submitted now: {len(rows)} job(s), {reporting} of them reporting progress", file=out)
    for row in rows:
        print(progress.describe(row, where.get(row["dask_key"], "")), file=out)
    left = [t for t in tasks if states[t.key] != state.DONE]
    per_stage = progress.stage_seconds(tasks, recs)
    seconds, unknown = progress.estimate_end(cfg, left, per_stage, rows)
    end = time.strftime("%Y-%m-%d %H:%M", time.localtime(time.time() + seconds))
    print(f"campaign: {len(tasks) - len(left)} of {len(tasks)} tasks done; estimated end in about "
          f"{progress.clock(seconds)} ({end})" + (f", not counting {', '.join(unknown)} (none finished yet "
                                                    "to measure)" if unknown else ""), file=out)
