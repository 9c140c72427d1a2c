"""What is done, failed or pending: derived from the plan and the store's records alone."""
from __future__ import annotations

import collections
import json
import os

import zarr

from campaign.tasks import Task
from store import layout, lock, records

DONE, FAILED = records.DONE, records.FAILED  # a task's state is its record's status, or
PENDING = "pending"                           # pending: no record (or one that does not serve)


def task_states(plan: list[Task], store_path: str, cfg: dict) -> dict[str, str]:
    """State of every planned task by key. A done record that does not serve ``cfg`` (a shear
    stopped before the largest threshold of ``cfg`` could fire) counts as pending."""
    recs = records.read_all(store_path)
    states = {}
    for t in plan:
        rec = recs.get(t.key, {})
        status = rec.get("status")
        if status == records.DONE:
            states[t.key] = DONE if t.covers(rec, cfg) else PENDING
        else:
            states[t.key] = FAILED if status == records.FAILED else PENDING
    return states


def by_stage(plan: list[Task], states: dict[str, str]) -> dict[str, collections.Counter]:
    out: dict[str, collections.Counter] = {}
    for t in plan:
        out.setdefault(t.STAGE, collections.Counter())[states[t.key]] += 1
    return out


def check_store(store_path: str) -> None:
    """StoreError unless ``store_path`` is absent, empty, or a Zarr store of this layout."""
    meta = os.path.join(store_path, "zarr.json")
    if os.path.exists(store_path) and not os.path.exists(meta):
        if set(os.listdir(store_path)) - {lock.NAME}:
            raise layout.StoreError(f"{store_path} exists but is not a Zarr store (no zarr.json); "
                                    "choose another 'store' path")
    if os.path.exists(meta):
        try:
            with open(meta) as f:
                attrs = json.load(f).get("attributes", {})
        except ValueError as e:
            raise layout.StoreError(f"{meta} is corrupt ({e}); the store cannot be resumed") from None
        layout.check_layout(store_path, attrs.get("layout"))


def init_store(store_path: str, cfg: dict, plan: list[Task], science_hash: str, code_version: str) -> None:
    """Create the store (or check an existing one) and every parent group tasks write under,
    so that concurrent tasks only ever create their own groups. The root's attributes index the
    store: every configuration launched into it by science hash, the latest one, and the
    graph keys of each (what ``store.graphs.load_graph`` reads)."""
    check_store(store_path)
    root = zarr.open_group(store_path, mode="a")
    configs = dict(root.attrs.get("configs", {}))
    graphs = {f"s{t.specimen:03d}/{t.direction}": t.key for t in plan if t.STAGE == "graph"}
    configs[science_hash] = {"preset": cfg["preset"], "config": cfg, "graphs": graphs,
                             "first_launched": configs.get(science_hash, {}).get("first_launched")
                             or layout.timestamp()}
    root.attrs.update({"layout": layout.LAYOUT_VERSION, "preset": cfg["preset"], "config": cfg,
                       "science_hash": science_hash, "code_version": code_version, "configs": configs})
    root.require_group(records.TASKS)
    for t in plan:
        root.require_group(t.place)
