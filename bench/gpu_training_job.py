"""GPU check: one grid point's training job end to end through ``python -m jobs``, as a GPU worker runs it.

On a store of synthetic graphs (``--nodes`` atoms, 6 specimens x 2 directions; no LAMMPS, no Dask, no
campaign), the 4 stacked folds of one grid point train on ``--device`` with a checkpoint every epoch; the
job is killed (SIGKILL) once its first checkpoint is written and run again, which must go on from it. The
same job on the CPU from scratch gives the reference: every fold's metrics must agree. Prints and writes
(``--json``) the records' device, stacks, predicted and measured peak memory, resumption and metrics.

Usage: python bench/gpu_training_job.py [--device cuda] [--nodes 2000] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import zarr

from kernels import metrics as M
from store import layout, records

SPECIMENS, DIRECTIONS, POINT = 6, ("xy", "-xy"), (2, 10, 6)
FOLDS = [  # (held out, fit on, stop on), as a 4-fold CV over specimens 0-5 would split them
    ([0], [1, 2, 3], [4, 5]), ([1], [0, 2, 3], [4, 5]), ([2], [0, 1, 4], [3, 5]), ([3], [0, 1, 4], [2, 5])]
TRAIN = {"batch_graphs": 2, "early_stop_loss": "training", "epochs": 6, "focal_gamma": 2.0, "learning_rate": 1e-3,
         "loss": "weighted_ce", "patience": 6, "sampling": "none", "sampling_ratio": 1.0, "seed": 0,
         "steps_per_epoch": 3}


def graph_store(path: str, nodes: int) -> list:
    """Synthetic graphs (19 features, ~14 neighbours, ~1% positives at the one threshold) with done records;
    returns the plan's [[specimen, direction, key], ...]."""
    rng = np.random.default_rng(0)
    root = zarr.open_group(path, mode="w")
    root.require_group("tasks")
    graphs = []
    for k in range(SPECIMENS):
        for d in DIRECTIONS:
            key = f"graph{k}{d}"
            src = np.repeat(np.arange(nodes), 7)
            dst = (src + rng.integers(1, nodes, len(src))) % nodes
            x = rng.standard_normal((nodes, 19)).astype(np.float32)
            y = (x[:, 0] + 0.5 * rng.standard_normal(nodes) > 2.3)[None]  # learnable, about 1%
            g = root.require_group(f"graphs/{key}")
            layout.write_arrays(g, {"x": x, "edge_index": np.stack([np.r_[src, dst], np.r_[dst, src]]).astype(np.int64),
                                    "y": y, "thresholds_A2": np.array([0.1]), "first_step": np.array([5]),
                                    "event_d2min_A2": rng.random((1, nodes))})
            records.write(path, key, records.DONE, "bench", stage="graph", path=f"graphs/{key}",
                          checksums=records.checksums(g))
            graphs.append([k, d, key])
    return graphs


def spec(store: str, graphs: list, device: str) -> dict:
    keys = [f"fold{f}" for f in range(len(FOLDS))]
    L, M_, N = POINT
    params = {
        "layers": L,
        "width": M_,
        "heads": N,
        "directions": list(DIRECTIONS),
        "threshold_A2": 0.1,
        **TRAIN,
        "graphs": graphs,
        "feature_set": None,
        "responses": None,
        "softenings": None,
        "lys": None,
        "conv": None,
        "fold": 0,
        "device": device,
        "checkpoint_epochs": 1,
        "gpu_memory_GiB": 0.0,
        "folds": list(range(len(FOLDS))),
        "fold_keys": keys,
        "fold_paths": {k: f"training/cv/L{L}-M{M_}-N{N}/{k}" for k in keys},
        "fold_described": {k: {"stage": "train", "fold": f} for f, k in enumerate(keys)},
        "held_out": [h for h, _, _ in FOLDS],
        "fit_on": [t for _, t, _ in FOLDS],
        "stop_on": [s for _, _, s in FOLDS],
    }
    return {"stage": "train", "job": "jobs.learn:TrainFoldsJob", "key": "batch-bench", "store": store,
            "code_version": "bench", "params": params, "path": params["fold_paths"][keys[0]], "members": keys}


def run_job(job: dict, kill_at_checkpoint: bool = False) -> int | None:
    """``python -m jobs SPEC``; with ``kill_at_checkpoint`` SIGKILLed once its first checkpoint exists."""
    cmd = [sys.executable, "-m", "jobs", json.dumps(job)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    checkpoint = layout.checkpoint_path(job["store"], f"train-{job['key']}.pt")
    while kill_at_checkpoint and proc.poll() is None:
        if os.path.exists(checkpoint):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return None
        time.sleep(0.05)
    err = proc.communicate()[1]
    if proc.returncode != 0:
        raise SystemExit(f"the job failed ({proc.returncode}):\n{err}")
    return proc.returncode


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--nodes", type=int, default=2000)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    out, fields = {}, ("device", "stacked", "predicted_step_GiB", "cuda_peak_GiB", "out_of_memory_retries", "seconds")
    with tempfile.TemporaryDirectory() as tmp:
        for run, device in (("checked", args.device), ("reference", "cpu")):
            store = os.path.join(tmp, f"{run}.zarr")
            job = spec(store, graph_store(store, args.nodes), device)
            t0 = time.time()
            killed = run == "checked" and run_job(job, kill_at_checkpoint=True) is None
            run_job(job)
            recs = [records.read(store, k) for k in job["members"]]
            out[run] = {"device": device, "wall_s": round(time.time() - t0, 2), "killed_then_resumed": killed,
                        "folds": [{**{f: r.get(f) for f in fields}, **r["summary"]} for r in recs]}
    on, cpu = out["checked"]["folds"], out["reference"]["folds"]
    checks = {
        "device_recorded": all(f["device"].startswith(args.device) for f in on),
        "resumed_from_a_checkpoint": out["checked"]["killed_then_resumed"]
                                     and all(f["resumed_from_epoch"] >= 1 for f in on),
        "metrics_equal_to_cpu": all(abs((a[m] or 0) - (b[m] or 0)) < 1e-3 for a, b in zip(on, cpu) for m in M.METRICS),
    }
    out["checks"] = checks
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
