"""``campaign export``: one sheared specimen's atoms as files OVITO opens, to look at its first STZ.

Writes ``<store>.export/s{K:03d}-{direction}-t{threshold}.xyz`` (extended XYZ, by ASE) and ``.dump``
(LAMMPS text dump) of the quenched specimen (positions Å, the box), with per atom: its type
(1 Cu, 2 Zr), the D²min at the threshold's first event (Å², NaN when none fired), the label
(1: in the first STZ), every feature of its graph (``feature_names``) and the linear response's
when the campaign computes it, and with ``--model`` the model's predicted probability (test
specimens only, NaN elsewhere; a compared row of ``compare`` scores every specimen, or every one of
``lys.specimens`` for a row that reads the local yield stress). Beside them ``…-frames.xyz``, the
shear's own frames as OVITO animates them: the step before the threshold's first event and the event's
step (with ``--steps``, every stored step), each with its cell, strain and per atom its type, label and
D²min against the step before (Å²), so that OVITO can show the displacements and recompute D²min
itself (its Atomic strain modifier, frame offset −1, the shear's d2min cutoff). Every array is read
through its record (checked).
"""
from __future__ import annotations

import os
import sys

import numpy as np

from campaign.config import science_hash
from campaign.plan import plan as make_plan
from campaign.version import code_version
from kernels.features import RESPONSE_NAMES
from kernels.neighbours import wrap
from store import layout, records
from store.graphs import threshold_row


def _task(tasks, stage: str, **match):
    found = [t for t in tasks if t.STAGE == stage and all(getattr(t, k, None) == v for k, v in match.items())]
    if not found:
        raise ValueError(f"the configuration has no {stage} task with {match}")
    return found[0]


def _read(store: str, task, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    rec = records.read(store, task.key)
    if rec is None or rec["status"] != records.DONE:
        raise layout.StoreError(f"{task.label} ({task.key}) is not done: launch the campaign first")
    return records.read_checked(store, task.key, names)


def columns(cfg: dict, specimen: int, direction: str, threshold: float | None, model: str | None) -> dict:
    """{"positions" (N,3) Å, "cell" (3,3) Å, "origin" (3,) Å, "types" (N,), per-atom columns by name}."""
    store = os.path.abspath(cfg["store"])
    tasks = make_plan(cfg)
    threshold = cfg["train"]["threshold_A2"] if threshold is None else threshold
    q = _read(store, _task(tasks, "quench", specimen=specimen), ("positions", "cell", "origin", "types"))
    graph_task = _task(tasks, "graph", specimen=specimen, direction=direction)
    g = _read(store, graph_task, ("x", "y", "thresholds_A2", "event_d2min_A2"))
    row = threshold_row(g["thresholds_A2"], threshold)
    names = layout.group(layout.open_root(store), graph_task.path).attrs["feature_names"]
    out = {
        "positions": wrap(q["positions"], q["cell"], q["origin"]),
        "cell": q["cell"],
        "origin": q["origin"],
        "types": q["types"].astype(int),
        "d2min_A2": g["event_d2min_A2"][row].astype(float),
        "label": g["y"][row].astype(int),
    }
    out.update({name: g["x"][:, k].astype(float) for k, name in enumerate(names)})
    response = [t for t in tasks if t.STAGE == "response" and t.specimen == specimen]
    if response and records.read(store, response[0].key):  # the linear response, when the campaign has it
        features = _read(store, response[0], ("features",))["features"][list(response[0].directions).index(direction)]
        out.update({name: features[:, k].astype(float) for k, name in enumerate(RESPONSE_NAMES)})
    if model is not None:
        final = next((t for t in tasks if _scores_specimen(t, model, specimen)), None)
        if final is None:
            raise ValueError(f"the configuration has no final model or baseline named '{model}', nor a compared "
                             f"row of that name that tested specimen {specimen}")
        ev = _read(store, final, ("score", "specimen", "direction"))
        sel = (ev["specimen"] == specimen) & (ev["direction"] == list(final.directions).index(direction))
        score = np.full(len(out["types"]), np.nan)
        if sel.any():
            score[:] = ev["score"][sel]
        else:
            print(f"note: {model} scored no graph of specimen {specimen} {direction} (not a test specimen, or no "
                  f"event at its threshold): the score is NaN", file=sys.stderr)
        if final.threshold_A2 != threshold:
            print(f"note: {model} was trained at {final.threshold_A2:g} A^2, the labels are at {threshold:g} A^2",
                  file=sys.stderr)
        out["score"] = score
    out["threshold_A2"] = float(g["thresholds_A2"][row])
    out["config"], out["code"] = science_hash(cfg), code_version()
    return out


def _scores_specimen(task, model: str, specimen: int) -> bool:
    """Whether ``task`` is the final model or baseline ``model``, or the outer fold of the compared row
    ``model`` that tested ``specimen`` (a compared row tests every specimen once)."""
    if task.STAGE in ("final", "baseline"):
        return task.name == model
    if task.STAGE == "compare-gnn":
        return task.model == model and specimen in task.held_out
    if task.STAGE == "compare-baseline":
        return task.model == model and specimen in dict(task.split)["test"]
    return False


PER_ATOM_SKIP = ("positions", "cell", "origin", "types", "threshold_A2", "config", "code")


def write_extxyz(path: str, data: dict) -> None:
    """Extended XYZ by ASE: species, positions, the cell (pbc), and every per-atom column."""
    import ase
    import ase.io

    atoms = ase.Atoms(symbols=np.where(data["types"] == 1, "Cu", "Zr"), positions=data["positions"] - data["origin"],
                      cell=data["cell"], pbc=True)
    atoms.set_array("type", data["types"])
    for name, values in data.items():
        if name not in PER_ATOM_SKIP:
            atoms.set_array(name, np.asarray(values))
    atoms.info.update({k: data[k] for k in ("threshold_A2", "config", "code") if k in data})  # provenance
    ase.io.write(path, atoms, format="extxyz")


def write_dump(path: str, data: dict) -> None:
    """A LAMMPS text dump (one frame, triclinic box): id type x y z and every per-atom column."""
    (lx, _, _), (xy, ly, _), (xz, yz, lz) = data["cell"].tolist()
    x0, y0, z0 = data["origin"].tolist()
    lo = [x0 + min(0.0, xy, xz, xy + xz), y0 + min(0.0, yz), z0]
    hi = [x0 + lx + max(0.0, xy, xz, xy + xz), y0 + ly + max(0.0, yz), z0 + lz]
    names = [n for n in data if n not in PER_ATOM_SKIP]
    n = len(data["types"])
    table = np.column_stack([np.arange(1, n + 1), data["types"], data["positions"]] + [data[k] for k in names])
    with open(path, "w") as f:
        f.write(f"ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n{n}\nITEM: BOX BOUNDS xy xz yz pp pp pp\n"
                f"{lo[0]!r} {hi[0]!r} {xy!r}\n{lo[1]!r} {hi[1]!r} {xz!r}\n{lo[2]!r} {hi[2]!r} {yz!r}\n"
                f"ITEM: ATOMS id type x y z {' '.join(names)}\n")
        np.savetxt(f, table, fmt=["%d", "%d"] + ["%.10g"] * (table.shape[1] - 2))


def write_frames(path: str, cfg: dict, specimen: int, direction: str, data: dict, steps: bool) -> str:
    """The shear's frames (module docstring) as a multi-frame extended XYZ, with the types, labels, threshold
    and provenance of ``data`` (``columns``); returns what it wrote, in words."""
    import ase
    import ase.io

    store, tasks = os.path.abspath(cfg["store"]), make_plan(cfg)
    s = _read(store, _task(tasks, "shear", specimen=specimen, direction=direction),
              ("positions", "cell", "origin", "strain", "d2min_A2"))
    threshold = data["threshold_A2"]
    lab = _read(store, _task(tasks, "labels", specimen=specimen, direction=direction), ("thresholds_A2", "first_step"))
    first = int(lab["first_step"][threshold_row(lab["thresholds_A2"], threshold)])
    if steps:
        chosen = range(len(s["strain"]))
    elif first > 0:
        chosen = range(first - 1, first + 1)
    else:
        raise ValueError(f"specimen {specimen} sheared {direction} had no event at {threshold:g} A^2: pass --steps "
                         "for its whole trajectory")
    types = data["types"]
    frames = []
    for k in chosen:
        atoms = ase.Atoms(symbols=np.where(types == 1, "Cu", "Zr"), positions=s["positions"][k] - s["origin"][k],
                          cell=s["cell"][k], pbc=True)
        atoms.set_array("type", types)
        atoms.set_array("label", data["label"])
        atoms.set_array("d2min_A2", s["d2min_A2"][k].astype(float))
        atoms.info.update(step=k, strain=float(s["strain"][k]), first_event_step=first, threshold_A2=threshold,
                          config=data["config"], code=data["code"])
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")
    return f"{len(frames)} frames of the shear (steps {chosen[0]}-{chosen[-1]}, first event at step {first})"


def export(cfg: dict, specimen: int, direction: str, threshold: float | None = None, model: str | None = None,
           out=None, steps: bool = False) -> list[str]:
    """Write the three files; returns their paths."""
    out = out or sys.stdout
    data = columns(cfg, specimen, direction, threshold, model)
    folder = layout.beside(cfg["store"], ".export")
    os.makedirs(folder, exist_ok=True)
    stem = os.path.join(
        folder, f"s{specimen:03d}-{direction}-t{data['threshold_A2']:g}" + (f"-{model}" if model else "")
    )
    write_extxyz(stem + ".xyz", data)
    write_dump(stem + ".dump", data)
    frames = write_frames(stem + "-frames.xyz", cfg, specimen, direction, data, steps)
    fired = int(data["label"].sum())
    print(f"wrote {stem}.xyz and .dump: {len(data['types'])} atoms, {fired} in the first STZ at "
          f"{data['threshold_A2']:g} A^2; {stem}-frames.xyz: {frames}", file=out)
    return [stem + ".xyz", stem + ".dump", stem + "-frames.xyz"]
