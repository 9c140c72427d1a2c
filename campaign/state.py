"""What is done, failed or pending: derived from the plan and the store's records alone."""
from __future__ import annotations

import collections
import json
import os

import zarr

from campaign.tasks import Task
from store import layout, records

DONE, FAILED, PENDING = "done", "failed", "pending"


def task_states(plan: list[Task], store_path: str) -> dict[str, str]:
    """State of every planned task by key."""
    recs = records.read_all(store_path)
    states = {}
    for t in plan:
        status = recs.get(t.key, {}).get("status")
        states[t.key] = DONE if status == records.DONE else FAILED if status == records.FAILED else PENDING
    return states


def by_stage(plan: list[Task], states: dict[str, str]) -> dict[str, collections.Counter]:
    out: dict[str, collections.Counter] = {}
    for t in plan:
        out.setdefault(t.STAGE, collections.Counter())[states[t.key]] += 1
    return out


def init_store(store_path: str, cfg: dict, plan: list[Task], science_hash: str, code_version: str) -> None:
    """Create the store (or check an existing one) and every parent group tasks write under,
    so that concurrent tasks only ever create their own groups."""
    meta = os.path.join(store_path, "zarr.json")
    if os.path.exists(store_path) and not os.path.exists(meta):
        if os.listdir(store_path):
            raise layout.StoreError(f"{store_path} exists but is not a Zarr store (no zarr.json); "
                                    "choose another 'store' path")
    if os.path.exists(meta):
        try:
            with open(meta) as f:
                attrs = json.load(f).get("attributes", {})
        except ValueError as e:
            raise layout.StoreError(f"{meta} is corrupt ({e}); the store cannot be resumed") from None
        if attrs.get("layout", layout.LAYOUT_VERSION) != layout.LAYOUT_VERSION:
            raise layout.StoreError(f"{store_path} has store layout {attrs.get('layout')}, this code writes "
                                    f"layout {layout.LAYOUT_VERSION}")
    root = zarr.open_group(store_path, mode="a")
    root.attrs.update({"layout": layout.LAYOUT_VERSION, "preset": cfg["preset"], "config": cfg,
                       "science_hash": science_hash, "code_version": code_version})
    root.require_group("tasks")
    for t in plan:
        parent = t.path.rsplit("/", 1)[0] if "/" in t.path else ""
        if parent:
            root.require_group(parent)
