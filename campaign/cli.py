"""``python -m campaign``: launch, resume and inspect a campaign."""
from __future__ import annotations

import argparse
import signal
import sys
import traceback

from campaign import config as config_mod


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--preset", default=None, choices=config_mod.PRESETS,
                        help="packaged preset (default: smoke, or the one the config file names)")
    common.add_argument("--config", metavar="FILE", help="YAML file overriding keys of the preset")
    common.add_argument(
        "--store", metavar="PATH", help="Zarr store (default: the config's 'store', else ./PRESET.zarr)"
    )
    common.add_argument("--cores", type=int, metavar="N", help="cores of the local cluster (cluster.cores)")
    common.add_argument("--cluster", choices=("local", "slurm"),
                        help="where tasks run (cluster.kind): this machine, or SLURM worker jobs")
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    p = argparse.ArgumentParser(prog="python -m campaign", description=(
        "Campaign manager for the Lee & Ryu (2022) STZ study: melt, quench and AQS-shear Cu64Zr36 glasses "
        "with LAMMPS, label the first D2min events, compute the 19 per-atom features (optionally the linear response "
        "and the local yield stress too) and graphs, run the GAT grid search, final models and baselines (optionally "
        "an outer-CV comparison of models and single scores), and report; all resumable from one Zarr store."))
    from campaign.version import code_version
    p.add_argument("--version", action="version", version=f"stz-campaign {code_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    launch = sub.add_parser("launch", parents=[common], help="run what is missing or failed (resumes a store)")
    launch.add_argument("--dry-run", action="store_true", help="print what would run, run nothing")
    status = sub.add_parser("status", parents=[common], help=(
        "done / failed / pending tasks per stage, what runs now (progress, host, SLURM job, time left) "
        "and the campaign's estimated end; exit status 1 if a task failed or its data was found damaged"))
    status.add_argument("--watch", nargs="?", const=10.0, type=float, metavar="SECONDS",
                        help="refresh every SECONDS (default 10) until interrupted")
    config = sub.add_parser("config", parents=[common], help=(
        "print the merged, validated configuration; with --explain, what keys mean"))
    config.add_argument("--explain", nargs="?", const="", metavar="KEY", help=(
        "a key's meaning, unit, default, accepted values and value in this configuration; a section "
        "name ('shear') explains its keys, no name every key"))
    config.add_argument("--markdown", action="store_true", help="with --explain: a Markdown table")
    sub.add_parser("report", parents=[common], help="write the HTML and Markdown report of the store's results")
    costs = sub.add_parser("costs", parents=[common], help=(
        "what each stage cost, from its done tasks' records and files: tasks, wall seconds, core-hours, "
        "CPU-hours, peak resident memory, bytes and files per task"))
    costs.add_argument("--json", metavar="FILE", help="also write the table, with its provenance, here")
    sub.add_parser("verify", parents=[common], help=(
        "re-read every done task's data against its record's checksums; damaged tasks and their "
        "dependants are moved aside (damaged/) so that the next launch runs them again"))
    show = sub.add_parser("show", parents=[common], help=(
        "a task's record and full parameters; with two keys, the parameters in which they differ"))
    show.add_argument("keys", nargs="+", metavar="KEY", help="task key (or a unique prefix of one); one or two")
    export = sub.add_parser("export", parents=[common], help=(
        "one sheared specimen's atoms with D2min, labels, features (and a model's scores) as extended XYZ "
        "and a LAMMPS dump, for OVITO"))
    export.add_argument("--specimen", type=int, required=True, metavar="K", help="specimen number")
    export.add_argument("--direction", required=True, help="shear direction, e.g. xy or -yz")
    export.add_argument("--threshold", type=float, metavar="A2", help="D2min threshold (default train.threshold_A2)")
    export.add_argument("--model", metavar="NAME", help=(
        "a final model or baseline whose predicted probabilities to add, e.g. opt-mcc (test specimens only), "
        "or a compared row, e.g. gat_edges-study19 (every specimen)"))
    export.add_argument("--steps", action="store_true", help=(
        "write every stored step of the shear to the frames file (default: the step before the first event "
        "and the event's)"))
    return p


def _load(args) -> dict:
    overrides = {}
    if args.store:
        overrides["store"] = args.store
    if args.cores is not None:
        overrides["cluster"] = {"cores": args.cores}
    if args.cluster is not None:
        overrides.setdefault("cluster", {})["kind"] = args.cluster
    preset = args.preset or "smoke"
    return config_mod.load(preset, args.config, overrides)


def _glued(argv: list[str]) -> list[str]:
    """``--direction -yz`` as ``--direction=-yz``: argparse takes a value starting with '-' for an option."""
    out = []
    for a in argv:
        if out and out[-1] == "--direction" and a.startswith("-"):
            out[-1] = f"--direction={a}"
        else:
            out.append(a)
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(_glued(sys.argv[1:] if argv is None else argv))
    if args.command != "launch":
        # `status | head` ends quietly. Not for launch: the launcher holds sockets (the dashboard,
        # TLS connections to workers) whose peers may go away, and a write to one must be an
        # error its code handles, not a signal that kills the campaign's scheduler
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        cfg = _load(args)
        if args.command == "config":
            if args.explain is not None:
                from campaign.schema import explain
                print(explain(args.explain, cfg, markdown=args.markdown))
            else:
                print(config_mod.dump(cfg), end="")
            return 0
        if args.command == "status":
            from campaign.status import status, watch
            return watch(cfg, args.watch) if args.watch else status(cfg)
        if args.command == "verify":
            from campaign.verify import verify
            return 1 if verify(cfg) else 0
        if args.command == "show":
            from campaign.verify import show
            if len(args.keys) > 2:
                raise ValueError("show takes one key, or two to compare")
            return show(cfg, args.keys)
        if args.command == "export":
            from campaign.export import export
            export(cfg, args.specimen, args.direction, args.threshold, args.model, steps=args.steps)
            return 0
        if args.command == "costs":
            from campaign.costs import costs
            return costs(cfg, args.json)
        if args.command == "report":
            from campaign.report import build
            build(cfg)
            return 0
        from campaign.launch import launch
        return 1 if launch(cfg, dry_run=args.dry_run) else 0
    except KeyboardInterrupt:
        print("interrupted: finished tasks are kept; launch again to resume", file=sys.stderr)
        return 130
    except Exception as e:  # every error reaches the user as one line, --debug shows where
        if args.debug:
            traceback.print_exc()
        else:
            print(f"error: {e}", file=sys.stderr)
        return 1
