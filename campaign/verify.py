"""``campaign verify`` and ``campaign show``: the store's records checked against their data, and explained."""
from __future__ import annotations

import collections
import json
import os
import sys

from campaign.plan import plan as make_plan
from store import layout, records


def dependants(tasks: list, keys: set[str]) -> list:
    """The tasks of ``tasks`` that read, directly or not, from any of ``keys`` (upstream first)."""
    reached, out = set(keys), []
    for t in tasks:  # the plan lists upstream before downstream
        if reached.intersection(t.deps):
            reached.add(t.key)
            out.append(t)
    return out


def verify(cfg: dict, out=None) -> int:
    """Re-read every done task's arrays against its record's sha256 (and every chunk's crc32c).
    Damaged records, and the done records of their dependants, are moved aside (``damaged/``),
    so that the next launch runs exactly those again. Returns the number of damaged tasks."""
    out = out or sys.stdout
    store = os.path.abspath(cfg["store"])
    layout.open_root(store)  # a missing store, or one of another layout, is named
    tasks = make_plan(cfg)
    recs = records.read_all_keys(store, [t.key for t in tasks])
    done = [t for t in tasks if recs.get(t.key, {}).get("status") == records.DONE]
    damaged = {}
    checked = collections.Counter()
    for t in done:
        problems = records.damage(store, recs[t.key])
        checked[t.STAGE] += 1
        if problems:
            damaged[t.key] = problems
            records.move_aside(store, t.key, problems)
            print(f"damaged  {t.label:<22} {t.key}: {problems[0]}" + (f" (+{len(problems) - 1} more)"
                                                                         if len(problems) > 1 else ""), file=out)
    retired = 0
    downstream = dependants(tasks, set(damaged))
    rerun = set(damaged) | {t.key for t in downstream}
    for t in downstream:
        if recs.get(t.key, {}).get("status") == records.DONE and t.key not in damaged:
            upstream = sorted(set(t.deps) & rerun)
            records.move_aside(store, t.key, [f"reads from {', '.join(upstream)}, which is run again"])
            retired += 1
    print(f"verified {len(done)} done tasks ({', '.join(f'{n} {s}' for s, n in checked.items())}): "
          f"{len(damaged)} damaged" + (f", {retired} dependants retired with them; `launch` runs them again"
                                       if damaged else ""), file=out)
    return len(damaged)


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif isinstance(v, list) and v and all(isinstance(x, list) and len(x) == 2 and isinstance(x[0], str)
                                               for x in v):  # a config section: sorted (key, value) pairs
            out.update(_flat({a: b for a, b in v}, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _find(store: str, key: str) -> dict:
    rec = records.read(store, key) or records.damaged(store).get(key)
    if rec is None:
        matches = [k for k in records.read_all(store) if k.startswith(key)]
        if len(matches) == 1:
            return _find(store, matches[0])
        raise layout.StoreError(f"no record of task {key} in {store}" +
                                (f" ({len(matches)} keys start with it)" if matches else ""))
    return rec


def _short(v) -> str:
    text = json.dumps(v)
    return text if len(text) <= 100 else text[:97] + "..."


def show(cfg: dict, keys: list[str], out=None) -> int:
    """Print a task's record and parameters; with two keys, the parameters in which they differ."""
    out = out or sys.stdout
    store = os.path.abspath(cfg["store"])
    recs = [_find(store, k) for k in keys]
    if len(recs) == 1:
        rec = recs[0]
        print(f"{rec['key']}  {rec.get('stage')}  {rec['status']}" + ("  (DAMAGED)" if "damage" in rec else ""),
              file=out)
        for field in ("path", "code_version", "time", "host", "seconds", "reason", "damage"):
            if rec.get(field) is not None:
                print(f"  {field}: {rec[field]}", file=out)
        for name, value in _flat(rec.get("params") or {}).items():
            print(f"  params.{name}: {_short(value)}", file=out)
        for name, value in _flat(rec.get("summary") or {}).items():
            print(f"  summary.{name}: {_short(value)}", file=out)
        return 0
    a, b = (_flat(r.get("params") or {}) for r in recs)
    differ = [n for n in sorted(set(a) | set(b)) if a.get(n) != b.get(n)]
    print(f"{recs[0]['key']} ({recs[0].get('stage')}) and {recs[1]['key']} ({recs[1].get('stage')}) differ in "
          f"{len(differ)} parameter(s)", file=out)
    for n in differ:
        print(f"  {n}: {_short(a.get(n, '(absent)'))}  |  {_short(b.get(n, '(absent)'))}", file=out)
    return 0
