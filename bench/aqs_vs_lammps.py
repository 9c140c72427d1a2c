"""Benchmark: this project's AQS shear job against the same shear as a plain LAMMPS input script.

Both shear the same quenched specimen by the same tilt steps with the same minimiser
settings (``minimize.*``: the preset's style unless ``--style``; at 10,000 atoms use
``--preset rehearsal``, whose FIRE converges where CG stalls) on the same MPI ranks; the project's run
includes its per-step gathers, D2min and Zarr writes and its process start. The two run
alternately ``--repeats`` times (a shared machine's noise hits both alike); prints each pair,
the median ratio and its range (target: the project at >= 0.95 of plain LAMMPS speed), then
the smoke campaign's wall time and a no-op relaunch's.

Usage: python bench/aqs_vs_lammps.py [--preset smoke] [--atoms 1000] [--steps 40] [--ranks 1] [--repeats 3] [--style cg]
       [--skip-campaign] [--json FILE]
Quick (the default tier's test): --atoms 250 --steps 3 --repeats 1 --skip-campaign
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from campaign import config, plan, state
from campaign.dispatch import spec
from campaign.execute import execute, launcher_command
from jobs.lmp import MASSES, potential_path
from store import layout, records


def write_data(path: str, q: dict) -> None:
    """A LAMMPS data file of the quenched specimen (orthogonal box)."""
    (lx, _, _), (_, ly, _), (_, _, lz) = q["cell"].tolist()
    o = q["origin"].tolist()
    with open(path, "w") as f:
        f.write(f"bench\n\n{len(q['types'])} atoms\n2 atom types\n\n")
        f.write(f"{o[0]!r} {o[0] + lx!r} xlo xhi\n{o[1]!r} {o[1] + ly!r} ylo yhi\n{o[2]!r} {o[2] + lz!r} zlo zhi\n")
        f.write("0.0 0.0 0.0 xy xz yz\n\nAtoms # atomic\n\n")
        for i, (t, x) in enumerate(zip(q["types"].tolist(), q["positions"].tolist()), start=1):
            f.write(f"{i} {int(t)} {x[0]!r} {x[1]!r} {x[2]!r}\n")


def plain_script(data: str, steps: int, strain_step: float, ly: float, m: dict, potential: str) -> str:
    return f"""units metal
atom_style atomic
atom_modify map array sort 0 0.0
boundary p p p
read_data {data}
mass 1 {MASSES[1]}
mass 2 {MASSES[2]}
pair_style eam/fs
pair_coeff * * {potential} Cu Zr
neighbor 1.0 bin
neigh_modify every 1 delay 0 check yes
thermo_style custom step pe pxy fnorm
min_style {m.get('style', 'cg')}
minimize {m['etol']} {m['ftol']} {m['maxiter']} {m['maxeval']}
variable i loop {steps}
label step
variable tilt equal {strain_step}*v_i*{ly!r}
change_box all xy final ${{tilt}} remap units box
minimize {m['etol']} {m['ftol']} {m['maxiter']} {m['maxeval']}
next i
jump SELF step
"""


def loop_seconds(log: str) -> float:
    """Seconds LAMMPS spent in its run and minimise loops ('Loop time of ...' lines of its log): what both
    sides share; the rest of a run's wall time is process start, set-up and, for the project, its per-step
    gathers, D2min and writes."""
    with open(log) as f:
        return sum(float(line.split()[3]) for line in f if line.startswith("Loop time of"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="smoke", help="the glass's preset (rehearsal: FIRE, its fast quench)")
    ap.add_argument("--atoms", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--strain-step", type=float, default=1e-4)
    ap.add_argument("--ranks", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--style", choices=("cg", "fire"), default=None, help="minimize.style (default: the preset's)")
    ap.add_argument("--skip-campaign", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    work = tempfile.mkdtemp(prefix="aqs-bench-")
    store = os.path.join(work, "bench.zarr")
    cfg = config.load(args.preset, overrides={
        "store": store, "system": {"n_atoms": args.atoms}, "mpi": {"ranks": args.ranks},
        "minimize": {"style": args.style} if args.style else {},
        "shear": {"directions": ["xy"], "strain_step": args.strain_step, "early_stop": False,
                  "max_strain": args.steps * args.strain_step}})
    args.style = cfg["minimize"]["style"]
    tasks = plan.plan(cfg)
    state.init_store(store, cfg, tasks, config.science_hash(cfg), "bench")
    by_stage = {}
    for t in tasks:
        by_stage.setdefault(t.STAGE, []).append(t)
    print(f"making a {args.atoms}-atom glass (liquid + quench at {cfg['quench']['rate_K_per_s']:.0e} K/s) ...",
          flush=True)
    for t in (by_stage["liquid"][0], by_stage["quench"][0]):
        out = execute(spec(t, store, cfg), args.ranks, 1, "mpiexec")
        assert out.status == "done", out
    quenched = records.read(store, by_stage["quench"][0].key)["path"]
    q = layout.read(layout.open_root(store), quenched, ("types", "positions", "cell", "origin"))
    data = os.path.join(work, "glass.data")
    write_data(data, q)
    script = os.path.join(work, "aqs.in")
    with open(script, "w") as f:
        f.write(plain_script(data, args.steps, args.strain_step, float(q["cell"][1, 1]), cfg["minimize"],
                             potential_path(cfg["system"]["potential"])))
    lmp = os.path.join(os.path.dirname(sys.executable), "lmp")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    shear = by_stage["shear"][0]
    pairs, loops = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        subprocess.run([*launcher_command("mpiexec"), "-n", str(args.ranks), lmp, "-in", script, "-log",
                        os.path.join(work, "plain.log"), "-screen", "none"], check=True, env=env)
        plain = time.perf_counter() - t0
        records.remove(store, shear.key)  # run the job again, not skip it as done
        t0 = time.perf_counter()
        out = execute(spec(shear, store, cfg), args.ranks, 1, "mpiexec")
        ours = time.perf_counter() - t0
        assert out.status == "done", out
        pairs.append((plain, ours))
        loops.append((loop_seconds(os.path.join(work, "plain.log")), loop_seconds(layout.log_path(
            store, f"shear-{shear.key}.log"))))
        print(f"  plain LAMMPS {plain:8.2f} s ({plain / args.steps:.3f} s/step), this project {ours:8.2f} s "
              f"({ours / args.steps:.3f} s/step, process start included): {plain / ours:.3f}; outside LAMMPS's "
              f"loops {plain - loops[-1][0]:.2f} s and {ours - loops[-1][1]:.2f} s", flush=True)
    ratios = [p / o for p, o in pairs]
    print(f"AQS shear, {args.atoms} atoms, {args.steps} steps of {args.strain_step:g}, {args.ranks} rank(s), "
          f"{args.style} ftol {cfg['minimize']['ftol']:g} eV/A: speed relative to plain LAMMPS, median of "
          f"{len(ratios)} alternating runs {np.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f}; "
          "target >= 0.95)")
    # what the project adds, whatever the machine's other load does to LAMMPS's own loops: its time outside
    # them, beside plain LAMMPS's (process start and read_data), against plain LAMMPS's wall time
    added = [(o - lo) - (p - lp) for (p, o), (lp, lo) in zip(pairs, loops)]
    print(f"outside LAMMPS's loops the project adds {np.median(added):.2f} s per run (median; "
          f"{np.median(added) / args.steps:.3f} s a step): plain / (plain + added) = "
          f"{np.median([p / (p + a) for (p, _), a in zip(pairs, added)]):.3f}")
    result = {"atoms": args.atoms, "steps": args.steps, "ranks": args.ranks, "style": args.style,
              "plain_s": [p for p, _ in pairs], "project_s": [o for _, o in pairs], "ratios": ratios,
              "median_ratio": float(np.median(ratios)), "plain_loop_s": [lp for lp, _ in loops],
              "project_loop_s": [lo for _, lo in loops], "project_added_s": added}
    if not args.skip_campaign:
        smoke = os.path.join(work, "smoke.zarr")
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "campaign", "launch", "--store", smoke], check=True,
                       stdout=subprocess.DEVNULL)
        full = time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "campaign", "launch", "--store", smoke], check=True,
                       stdout=subprocess.DEVNULL)
        noop = time.perf_counter() - t0
        print(f"smoke campaign on {os.cpu_count()} cores: {full:.1f} s (target well under 300 s); "
              f"no-op relaunch {noop:.1f} s (target <= 5 s)")
    print(f"(work files in {work})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
