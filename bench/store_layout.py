"""Files, bytes and write time of one shear's arrays: the old layout (layout 1: a chunk file per
strain step and array, nested chunk directories, zstd) against this project's (layout 2:
``store.layout.StepWriter``: shards, flat chunk keys, Blosc-zstd + crc32c).

    python bench/store_layout.py [--steps 401] [--atoms 1000 10000] [--store smoke.zarr]

Prints, per size: files and directories, bytes on disk and milliseconds per strain step for both,
and their ratios. With --store (a finished store of this layout) it also counts the files of
each stage's tasks and projects the `paper` preset's store from them. The arrays are synthetic
(an AQS-like trajectory: a glass's positions under small affine steps plus noise, log-normal
D2min), so the bytes are indicative: real float64 positions compress about as little.
"""
from __future__ import annotations

import argparse
import collections
import os
import shutil
import tempfile
import time

import numpy as np
import zarr

from store import layout, records

SHAPES = lambda n: {"positions": (n, 3), "cell": (3, 3), "origin": (3,), "strain": (), "energy_eV": (),  # noqa: E731
                    "stress_GPa": (6,), "d2min_A2": (n,)}


def rows(n: int, step: int, rng) -> dict:
    base = np.random.default_rng(0).random((n, 3)) * (n / 0.06) ** (1 / 3)
    x = base.copy()
    x[:, 0] += 1e-4 * step * base[:, 1] + rng.normal(0, 1e-3, n)
    return {"positions": x, "cell": np.eye(3) * 20 + 1e-4 * step, "origin": np.zeros(3), "strain": 1e-4 * step,
            "energy_eV": -4.4 * n + step, "stress_GPa": rng.random(6), "d2min_A2": rng.lognormal(-6, 2, n)}


def write_old(g: zarr.Group, n: int, steps: int) -> None:
    arrays = {k: g.create_array(k, shape=(steps, *s), chunks=(1, *s), dtype="float64")
              for k, s in SHAPES(n).items()}
    rng = np.random.default_rng(1)
    for i in range(steps):
        for k, v in rows(n, i, rng).items():
            arrays[k][i] = v


def write_new(g: zarr.Group, n: int, steps: int) -> None:
    writer = layout.StepWriter(g, steps, SHAPES(n))
    rng = np.random.default_rng(1)
    for i in range(steps):
        writer.write(i, **rows(n, i, rng))
    writer.close()


def disk_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def measure(n: int, steps: int) -> None:
    out = {}
    for name, write in (("old", write_old), ("new", write_new)):
        d = tempfile.mkdtemp()
        try:
            g = zarr.open_group(os.path.join(d, "s.zarr"), mode="w").require_group("shear")
            t = time.perf_counter()
            write(g, n, steps)
            seconds = time.perf_counter() - t
            path = os.path.join(d, "s.zarr", "shear")
            out[name] = (layout.count_files(path), disk_bytes(path), 1e3 * seconds / steps)
        finally:
            shutil.rmtree(d)
    (fo, bo, to), (fn, bn, tn) = out["old"], out["new"]
    print(f"{n:>6} atoms x {steps} steps: files {fo:>6} -> {fn:>3} ({fo / fn:.0f}x fewer); "
          f"bytes {bo / 1e6:7.1f} -> {bn / 1e6:7.1f} MB; write {to:6.2f} -> {tn:6.2f} ms/step "
          f"(ratio old/new {to / tn:.2f})")


def project(store: str) -> None:
    """Files per task of each stage in a finished store, and the paper store projected from them."""
    recs = records.read_all(store)
    files = collections.defaultdict(list)
    for rec in recs.values():
        if rec["status"] == records.DONE:
            files[rec["stage"]].append(layout.count_files(os.path.join(store, rec["path"])) + 1
                                       + 2)  # + the group's directory, + the record's directory and file
    per = {stage: float(np.mean(v)) for stage, v in files.items()}
    print("files per task in", store, {k: round(v, 1) for k, v in per.items()})
    # the paper plan's tasks; a paper shear of 401 steps of 10,000 atoms holds 2 shards of positions
    # (96 MB) and 1 of D2min (32 MB) at 64 MiB a shard: the same files as a smoke shear plus one
    from campaign import config, plan
    counts = collections.Counter(t.STAGE for t in plan.plan(config.load("paper", overrides={"mpi": {"ranks": 1}})))
    extra = {"shear": 1, "liquid": 8}  # liquid: 1,000 snapshots of 240 kB positions and velocities: 4 shards each
    total = sum(n * (per.get(stage, 0) + extra.get(stage, 0)) for stage, n in counts.items())
    print("paper plan:", dict(counts))
    print(f"paper store projected: {total:,.0f} files and directories (target < 100,000)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=401)
    p.add_argument("--atoms", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--store", help="a finished store of this layout, for files per task and the projection")
    args = p.parse_args()
    for n in args.atoms:
        measure(n, args.steps)
    if args.store:
        project(args.store)


if __name__ == "__main__":
    main()
