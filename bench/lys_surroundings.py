"""Local yield stress against its surroundings: the frozen shell's width, and the periodic box.

    python bench/lys_surroundings.py --store small.zarr --preset small [--specimen 0 --direction xy]
                                     [--regions 0 1] [--shells 7.6 11.4 15.2] [--replicate 2]

A region of the campaign's 2^3 grid in a 1,000-atom box sees its own periodic images across a gap
of L − 2R (4.8 Å at R = 10 Å, L = 24.8 Å): its surroundings are thin. Here the quenched specimen is
replicated ``--replicate`` times along each axis (the same glass, periodic with the old box) and the
same regions (same centres, same atoms) are sheared there with frozen shells of each ``--shells``
width, so that nothing but the surroundings changes; Δτ_c is printed beside the 1,000-atom box's
(the campaign's own lys task of that graph, when the store has it). Runs the campaign's job
(``jobs.lys``, one rank) in a scratch store beside the store (``<store>.lys-surroundings``, reused).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time

import numpy as np
from local_yield import write_done  # bench/, beside this file

from campaign import config, plan
from campaign.dispatch import spec
from campaign.stages.lys import PROTOCOL
from campaign.tasks import Section
from kernels.lys import gather
from store import layout, records


def replicated(q: dict, n: int) -> dict:
    """The quench's arrays (types (N,), positions (N, 3) Å, cell (3, 3) Å, origin (3,) Å) tiled n × n × n."""
    shifts = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3) @ q["cell"]
    return {"types": np.tile(q["types"], n ** 3), "cell": q["cell"] * n, "origin": q["origin"],
            "positions": (q["positions"][None] + shifts[:, None]).reshape(-1, 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", required=True)
    p.add_argument("--preset", default="small")
    p.add_argument("--config")
    p.add_argument("--specimen", type=int, default=0)
    p.add_argument("--direction", default="xy")
    p.add_argument("--regions", type=int, nargs="+", default=[0, 1], help="regions of the 2^3 grid (C order)")
    p.add_argument("--shells", type=float, nargs="+", default=[7.6, 11.4, 15.2], help="frozen shell widths (Å)")
    p.add_argument("--replicate", type=int, default=2)
    args = p.parse_args()
    store, n = os.path.abspath(args.store), args.replicate
    cfg = config.load(args.preset, args.config, {"store": store, "lys": {"regions_per_axis": 2, "regions_per_task": 8}})
    tasks = plan.plan(cfg)
    quench = next(t for t in tasks if t.STAGE == "quench" and t.specimen == args.specimen)
    own = next(t for t in tasks if t.STAGE == "lys" and t.specimen == args.specimen and t.direction == args.direction)
    big = replicated(records.read_checked(store, quench.key, ("types", "positions", "cell", "origin")), n)
    scratch = layout.beside(store, ".lys-surroundings")
    key = f"replica{n}-{quench.key}"
    if records.read(scratch, key) is None:  # the replicated glass, as a done quench the job can read
        write_done(scratch, key, "quench", f"replicas/{key}", big)
    small = np.full(8, np.nan)
    if records.read(store, own.key) is not None:
        done = records.read_checked(store, own.key, ("region", "dtau_c_GPa"))
        small = gather(8, [(done["region"], done["dtau_c_GPa"])])
    print(
        f"specimen {args.specimen} {args.direction}: {len(big['types'])} atoms, box {np.diag(big['cell']).round(1)} Å;"
        f" regions of {cfg['lys']['radius_A']} Å; Δτ_c in GPa"
    )
    print(
        f"{'region':>6} {'1,000-atom box':>15} "
        + " ".join(f"{'shell ' + format(s, 'g') + ' Å':>13}" for s in args.shells)
    )
    for r in args.regions:
        # the same centre on the grid of the big box, n times finer along each axis
        first = int(np.ravel_multi_index(np.unravel_index(r, (2, 2, 2)), (2 * n,) * 3))
        cells = []
        for shell in args.shells:
            task = dataclasses.replace(
                own,
                quench_key=key,
                lys=Section.pick({**cfg["lys"], "shell_A": shell}, PROTOCOL),
                shape=(2 * n,) * 3,
                first=first,
                count=1,
            )
            t0 = time.time()
            if records.read(scratch, task.key) is None:
                res = subprocess.run([sys.executable, "-m", "jobs", json.dumps(spec(task, scratch, cfg))])
                if res.returncode != 0:
                    raise SystemExit(
                        f"region {r} shell {shell} failed: see {layout.log_path(scratch, f'lys-{task.key}.log')}"
                    )
            out = records.read_checked(scratch, task.key, ("dtau_c_GPa",))
            cells.append(f"{out['dtau_c_GPa'][0]:>8.3f} ({time.time() - t0:>3.0f} s)")
        print(f"{r:>6} {small[r]:>15.3f} " + " ".join(f"{c:>13}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
