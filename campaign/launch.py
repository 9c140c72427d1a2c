"""Launch or resume a campaign: run every planned task that has no completion record."""
from __future__ import annotations

import os
import sys
import time

from campaign import config as config_mod
from campaign import state
from campaign.cluster import RESOURCE, open_cluster
from campaign.execute import execute
from campaign.plan import plan as make_plan
from campaign.version import code_version


def _spec(task, store: str, threads: int) -> dict:
    return {"stage": task.STAGE, "key": task.key, "store": store, "code_version": code_version(),
            "params": task.params(), "threads": threads}


def _describe(outcome: dict) -> str:
    summary = outcome.get("summary") or {}
    if "first_strain" in summary:
        fired = ["-" if s is None or s != s else f"{s:.4f}" for s in summary["first_strain"]]
        return f"first events at strain {' '.join(fired)} ({' '.join(map(str, summary['event_atoms']))} atoms)"
    if "density_per_A3" in summary:
        return f"{summary['energy_per_atom_eV']:.4f} eV/atom, {summary['density_per_A3']:.4f} atoms/A^3"
    if "mean_temperature_K" in summary:
        return f"{summary['mean_temperature_K']:.0f} K, {summary['mean_density_per_A3']:.4f} atoms/A^3"
    return ""


def launch(cfg: dict, dry_run: bool = False, out=sys.stdout) -> int:
    """Run what is missing or failed. Returns the number of tasks that failed or could not run."""
    store = os.path.abspath(cfg["store"])
    tasks = make_plan(cfg)
    states = state.task_states(tasks, store) if os.path.isdir(store) else {t.key: state.PENDING for t in tasks}
    todo = [t for t in tasks if states[t.key] != state.DONE]
    print(f"campaign {cfg['preset']}  config {config_mod.science_hash(cfg)}  code {code_version()}", file=out)
    print(f"store {store}: {len(tasks) - len(todo)} of {len(tasks)} tasks done, {len(todo)} to run", file=out)
    if dry_run:
        for t in todo:
            print(f"  would run  {t.label:<18} {t.key}  ({states[t.key]})", file=out)
        return 0
    if not todo:
        return 0
    state.init_store(store, cfg, tasks, config_mod.science_hash(cfg), code_version())
    with open_cluster(cfg) as client:
        print(f"dashboard: {client.dashboard_link}", file=out, flush=True)
        return _run(client, cfg, todo, states, store, out)


def _run(client, cfg, todo, states, store, out) -> int:
    from distributed import as_completed

    waiting = {t.key: t for t in todo}
    running = {}
    blocked = 0
    finished = 0
    t0 = time.time()

    def submit_ready():
        for key, t in list(waiting.items()):
            if all(states.get(d) == state.DONE for d in t.deps):
                del waiting[key]
                ranks, threads = t.cores(cfg)
                fut = client.submit(execute, _spec(t, store, threads), ranks, threads, cfg["mpi"]["launcher"],
                                    key=f"{t.STAGE}-{t.key}", pure=False, resources={RESOURCE: ranks * threads})
                running[fut] = t
                ready.add(fut)

    ready = as_completed()
    submit_ready()
    for fut in ready:
        t = running.pop(fut)
        outcome = fut.result()
        states[t.key] = outcome["status"]
        finished += 1
        line = f"[{finished:>3}/{len(todo)}] {outcome['status']:<6} {t.label:<18} {outcome['seconds']:7.1f} s"
        if outcome["status"] == state.DONE:
            print(f"{line}  {_describe(outcome)}", file=out, flush=True)
        else:
            print(f"{line}  {outcome['reason'].strip().splitlines()[-1][:200]}", file=out, flush=True)
        submit_ready()
    blocked = len(waiting)
    failed = sum(1 for t in todo if states[t.key] == state.FAILED)
    print(f"finished in {time.time() - t0:.1f} s: {finished - failed} done, {failed} failed, "
          f"{blocked} not run (an upstream task failed)", file=out)
    return failed + blocked
