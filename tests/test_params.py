"""The contract between a task and its job: the params the campaign sends (``campaign.dispatch.group_spec``,
through JSON as on the command line) construct the job's own ``Params``, for every task the presets plan
(and the stages only a wider configuration plans); and ``Params.of`` refuses what does not fit."""
import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

from jobs.common import Params, ParamsError, Seq, SystemParams

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs in a fresh interpreter: the LAMMPS jobs import lammps, which no test process may load (freud).
# Prints the stages checked (a softening with its path as "softening+path") and the first refusals.
CHECK = r"""
import importlib, json, sys
from campaign import config, dispatch, plan, tasks
from jobs.common import Params, ParamsError

checked, refused = {}, []
for preset, overrides in json.loads(sys.argv[1]):
    cfg = config.load(preset, overrides={**overrides, "store": "x.zarr", "mpi": {"ranks": 1}})
    for group in dispatch.groups_of(plan.plan(cfg), cfg):
        spec = json.loads(json.dumps(dispatch.group_spec(group, "x.zarr", cfg)))  # as the job receives it
        module, name = spec["job"].split(":")
        job = getattr(importlib.import_module(module), name)
        try:
            if not isinstance(spec["path"], str) or spec["path"].rsplit("/", 1)[-1] not in (spec.get("members")
                                                                                          or [spec["key"]]):
                raise ParamsError(f"the spec's group in the store is {spec['path']!r}")
            if job.Params is Params:
                raise ParamsError(f"{name} declares no Params")
            job.Params.of(spec["params"])
        except ParamsError as e:
            refused.append(f"{preset} {group[0].label}: {e}")
        stage = spec["stage"] + ("+path" if "continuation_steps" in spec["params"] else "")
        checked[stage] = checked.get(stage, 0) + 1
print(json.dumps({"checked": checked, "refused": refused[:5], "stages": sorted(tasks.STAGES)}))
"""

# the presets as they are, and the stages only a wider configuration plans: the response, the softening with
# its path, the local yield stress, every compared model and score, direction-aware edges
WIDER = {"features": {"sets": ["study19", "study19+response", "study19+softening", "study19+softening_path",
                               "study19+lys"]},
         "softening": {"continuation_steps": 3},
         "lys": {"regions_per_axis": 2, "regions_per_task": 4},
         "compare": {"folds": 2, "models": ["gat", "gat_edges", "logistic", "boosted_trees", "random"],
                     "convs": ["GATv2Conv"], "seeds": 2,
                     "scores": ["participation_fraction", "softening_path", "-response_u_A"]}}
FIRST_ORDER = {"features": {"sets": ["study19", "study19+softening"]}}  # the softening without its path
CONFIGS = [("smoke", {}), ("small", {}), ("rehearsal", {}), ("paper", {}), ("smoke", WIDER), ("smoke", FIRST_ORDER)]


def test_every_planned_tasks_params_construct_its_jobs_params():
    out = subprocess.run([sys.executable, "-c", CHECK, json.dumps(CONFIGS)], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["refused"] == []
    assert sorted(result["checked"]) == sorted(result["stages"] + ["softening+path"])  # none left unchecked


@dataclass(frozen=True, kw_only=True)
class Example(SystemParams):
    quench_key: str
    directions: Seq
    path_fraction: float | None = None


GOOD = {"n_atoms": 10, "cu_fraction": 0.64, "potential": "CuZr_mm.eam.fs", "timestep_ps": 0.002,
        "quench_key": "q", "directions": ["xy"]}


def test_params_take_the_given_names_and_fill_what_may_be_absent():
    p = Example.of(GOOD)
    assert (p.n_atoms, p.directions, p.path_fraction) == (10, ["xy"], None)
    assert Example.of({**GOOD, "timestep_ps": 1, "directions": ("xy",), "path_fraction": 0.5}).timestep_ps == 1


@pytest.mark.parametrize("change, named", [
    ({"quench_key": None}, "wrong type: quench_key"),
    ({"n_atoms": True}, "wrong type: n_atoms"),            # a bool is no number
    ({"n_atoms": 10.0}, "wrong type: n_atoms"),
    ({"timestep_ps": "0.002"}, "wrong type: timestep_ps"),
    ({"directions": "xy"}, "wrong type: directions"),
    ({"path": {"path_fraction": 0.1}}, "not declared by the job: path"),
])
def test_params_refuse_a_value_of_the_wrong_type_or_a_name_the_job_does_not_read(change, named):
    with pytest.raises(ParamsError, match=named):
        Example.of({**GOOD, **change})


def test_params_refuse_a_missing_name_and_name_it():
    with pytest.raises(ParamsError, match="Example: missing: directions, quench_key"):
        Example.of({k: v for k, v in GOOD.items() if k not in ("quench_key", "directions")})


def test_the_base_params_read_nothing():
    assert Params.of({}) == Params()
    with pytest.raises(ParamsError, match="not declared by the job: x"):
        Params.of({"x": 1})
