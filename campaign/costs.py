"""``python -m campaign costs``: what each stage of a store's campaign cost, from its tasks' records
(every done record states its wall seconds, ranks, threads, CPU seconds and peak resident memory) and
from the store's files: tasks, wall seconds (sum, mean and largest), core-hours (wall × ranks ×
threads, what an allocation is charged), CPU-hours, peak resident memory of a task (largest rank, and
all ranks together), and bytes and files on disk per task. A training job that trains several folds
states each fold's share of its wall time."""
from __future__ import annotations

import os
import sys

from campaign.plan import plan as make_plan
from store import layout, records


def disk_usage(path: str) -> tuple[int, int]:
    """(files and directories, bytes) under ``path``."""
    files = size = 0
    for root, dirs, names in os.walk(path):
        files += len(dirs) + len(names)
        size += sum(os.path.getsize(os.path.join(root, n)) for n in names)
    return files, size


def stage_costs(cfg: dict) -> dict:
    """{stage: {tasks, done, wall_s, mean_wall_s, max_wall_s, core_hours, cpu_hours, peak_rss_MiB,
    peak_rss_MiB_all_ranks, bytes_per_task, files_per_task, code_versions}} over the plan's done tasks."""
    store = os.path.abspath(cfg["store"])
    recs = records.read_all(store)
    stages: dict = {}
    for t in make_plan(cfg):
        row = stages.setdefault(t.STAGE, {"tasks": 0, "done": 0, "walls": [], "core_s": 0.0, "cpu_s": 0.0,
                                          "rss": 0.0, "rss_all": 0.0, "bytes": 0, "files": 0, "codes": set()})
        row["tasks"] += 1
        rec = recs.get(t.key)
        if not rec or rec.get("status") != records.DONE:
            continue
        row["done"] += 1
        row["codes"].add(rec.get("code_version"))
        wall = float(rec.get("seconds") or 0.0)
        row["walls"].append(wall)
        row["core_s"] += wall * rec.get("ranks", 1) * rec.get("threads", 1)
        row["cpu_s"] += float(rec.get("cpu_seconds") or 0.0) / rec.get("stacked", 1)  # a stack's job: its share
        row["rss"] = max(row["rss"], float(rec.get("peak_rss_MiB") or 0.0))
        row["rss_all"] = max(row["rss_all"], float(rec.get("peak_rss_MiB_all_ranks") or 0.0))
        files, size = disk_usage(os.path.join(store, rec["path"]))
        row["files"] += files
        row["bytes"] += size
    out = {}
    for stage, row in stages.items():
        n, walls = row["done"], row["walls"]
        out[stage] = {"tasks": row["tasks"], "done": n, "wall_s": round(sum(walls), 1),
                      "mean_wall_s": round(sum(walls) / n, 1) if n else None, "max_wall_s": max(walls, default=None),
                      "core_hours": round(row["core_s"] / 3600, 4), "cpu_hours": round(row["cpu_s"] / 3600, 4),
                      "peak_rss_MiB": round(row["rss"], 1), "peak_rss_MiB_all_ranks": round(row["rss_all"], 1),
                      "bytes_per_task": round(row["bytes"] / n) if n else None,
                      "files_per_task": round(row["files"] / n, 1) if n else None,
                      "code_versions": sorted(c for c in row["codes"] if c)}
    return out


def costs(cfg: dict, json_path: str | None = None, out=None) -> int:
    """Print the cost table (and write it with its provenance to ``json_path``); 0."""
    from campaign.config import science_hash
    out = out or sys.stdout
    table = stage_costs(cfg)
    print(f"store {os.path.abspath(cfg['store'])}: preset {cfg['preset']}, {cfg['system']['n_atoms']} atoms", file=out)
    width = max(len(stage) for stage in table)

    def show(v, fmt):
        return format(v, fmt) if v is not None else format("-", fmt.split(".")[0])

    print(f"{'stage':<{width}} {'done':>9} {'wall s':>9} {'mean s':>8} {'max s':>8} {'core-h':>8} {'cpu-h':>8} "
          f"{'RSS MiB':>8} {'MB/task':>8} {'files/task':>10}", file=out)
    for stage, r in table.items():
        mb = None if r["bytes_per_task"] is None else r["bytes_per_task"] / 1e6
        print(f"{stage:<{width}} {r['done']:>4}/{r['tasks']:<4} {r['wall_s']:>9.1f} {show(r['mean_wall_s'], '>8.1f')} "
              f"{show(r['max_wall_s'], '>8.1f')} {r['core_hours']:>8.3f} {r['cpu_hours']:>8.3f} "
              f"{r['peak_rss_MiB']:>8.0f} {show(mb, '>8.2f')} {show(r['files_per_task'], '>10.1f')}", file=out)
    total = sum(r["core_hours"] for r in table.values())
    print(f"total {total:.2f} core-hours (wall x ranks x threads of every done task)", file=out)
    if json_path:
        layout.write_json(json_path, {"preset": cfg["preset"], "atoms": cfg["system"]["n_atoms"],
                                      "config": science_hash(cfg),
                                      "code": sorted({c for r in table.values() for c in r["code_versions"]}),
                                      "units": "seconds, core-hours, MiB, bytes", "stages": table,
                                      "total_core_hours": round(total, 3)})
        print(f"wrote {json_path}", file=out)
    return 0
