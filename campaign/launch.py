"""Launch or resume a campaign: run every planned task that has no completion record."""
from __future__ import annotations

import os
import sys

from campaign import config as config_mod
from campaign import state
from campaign.cluster import open_cluster
from campaign.dispatch import groups_of, run
from campaign.plan import plan as make_plan
from campaign.resources import check_memory
from campaign.values import duration_seconds
from campaign.version import code_version
from kernels import memory
from store import layout, records
from store.lock import StoreLock


def launch(cfg: dict, dry_run: bool = False, out=None) -> int:
    """Run what is missing or failed. Returns the number of tasks that failed or could not run.

    One launcher per store: the store's lock (``store.lock``) is held from before anything is
    written until the report is; a second launch is refused with the holder's name."""
    out = out or sys.stdout
    store = os.path.abspath(cfg["store"])
    state.check_store(store)
    tasks = make_plan(cfg)
    print(f"campaign {cfg['preset']}  config {config_mod.science_hash(cfg)}  code {code_version()}", file=out)
    check_memory(groups_of(tasks, cfg), cfg)
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
            unfinished = run(client, cfg, tasks, todo, states, store, out, held)
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
