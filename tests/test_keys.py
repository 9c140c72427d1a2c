"""Task keys: pinned for the smoke and paper plans, and each config key changes exactly the stages it should.

A change of keys re-runs users' campaigns (a paper campaign is ~115,000 core-hours). If it is on
purpose, raise the changed stages' VERSION in campaign/tasks.py, say so in the commit and docs,
and write the new golden keys with ``python tests/test_keys.py --update``.
"""
import hashlib
import json
import os
import sys

import pytest

from campaign import config, plan

GOLDEN = os.path.join(os.path.dirname(__file__), "golden_keys.json")
PRESETS = ("smoke", "paper")


def stage_digests(preset: str) -> dict[str, str]:
    """sha256 of each stage's sorted task keys in the preset's plan (with its store left out: not a key)."""
    cfg = config.load(preset, overrides={"mpi": {"ranks": 1}, "store": "x.zarr"})
    keys: dict[str, list[str]] = {}
    for t in plan.plan(cfg):
        keys.setdefault(t.STAGE, []).append(t.key)
    return {stage: hashlib.sha256(" ".join(sorted(k)).encode()).hexdigest()[:16] for stage, k in keys.items()}


@pytest.mark.parametrize("preset", PRESETS)
def test_the_keys_of_the_plan_are_the_pinned_ones(preset):
    with open(GOLDEN) as f:
        golden = json.load(f)[preset]
    now = stage_digests(preset)
    changed = sorted(s for s in set(now) | set(golden) if now.get(s) != golden.get(s))
    assert not changed, (
        f"the task keys of the {preset} plan changed for stage(s) {', '.join(changed)}: every user's "
        "campaign would run these tasks (and their dependants) again. If this is on purpose, raise "
        "those stages' VERSION in campaign/tasks.py, say so in the commit and docs, and run "
        "`python tests/test_keys.py --update`")


ALL = {"liquid", "quench", "shear", "labels", "elastic", "structure", "graph", "train", "final", "baseline"}
FROM_QUENCH = ALL - {"liquid"}
GRAPHS_ON = {"graph", "train", "final", "baseline"}
PROPAGATION = [  # (section.key, new value, stages whose keys change)
    ("seed", 7, ALL),
    ("system.n_atoms", 400, ALL),
    ("liquid.temperature_K", 1900.0, ALL),
    ("minimize.ftol", 2e-4, ALL),
    ("quench.rate_K_per_s", 2e14, FROM_QUENCH),
    ("quench.checkpoint_ps", 5.0, set()),
    ("shear.strain_step", 1e-3, {"shear", "labels"} | GRAPHS_ON),
    ("shear.max_strain", 0.06, {"shear", "labels"} | GRAPHS_ON),
    ("shear.early_stop", False, set()),
    ("labels.d2min_cutoff_A", 4.5, {"shear", "labels"} | GRAPHS_ON),
    ("labels.thresholds_A2", [0.05, 0.1, 0.2, 0.3], {"labels"} | GRAPHS_ON),
    ("labels.min_group_size", 4, {"labels"} | GRAPHS_ON),
    ("labels.event", "cluster", {"labels"} | GRAPHS_ON),
    ("features.low_mode_fraction", 0.02, {"structure"} | GRAPHS_ON),
    ("features.stiffness_strain", 2e-4, {"elastic"} | GRAPHS_ON),
    ("split.seed", 3, {"train", "final", "baseline"}),
    ("grid.width", [10, 15], {"train", "final"}),
    ("train.epochs", 30, {"train", "final"}),
    ("train.loss", "focal", {"train", "final"}),
    ("train.early_stop_loss", "unweighted", {"train", "final"}),
    ("train.device", "cpu", set()),
    ("train.checkpoint_epochs", 0, set()),
    ("train.gpu_memory_GiB", 40.0, set()),
    ("train.stack_folds", False, set()),
    ("report.bootstrap", 100, {"final", "baseline"}),
    ("report.baselines", ["random"], set()),  # fewer baselines: the others keep their keys
    ("cluster.lock_stale_after", "1h", set()),
    ("mpi.threads", 2, set()),
    ("liquid.pressure_bar", 100.0, ALL),
    ("liquid.discard_ps", 5.0, ALL),
    ("liquid.equilibration_ps", 12.0, ALL),
    ("liquid.snapshot_interval_ps", 2.0, ALL),
    ("quench.specimens", 6, FROM_QUENCH),  # one more specimen, and a new split
    ("quench.final_temperature_K", 250.0, FROM_QUENCH),
    ("quench.thermostat_damp_ps", 0.2, FROM_QUENCH),
    ("quench.barostat_damp_ps", 2.0, FROM_QUENCH),
    ("minimize.etol", 1e-10, ALL),
    ("minimize.maxiter", 5000, ALL),
    ("minimize.maxeval", 50000, ALL),
    ("minimize.style", "fire", ALL),  # added later: at "cg" no key changes (test_config_hashes_are_pinned...)
    ("system.cu_fraction", 0.5, ALL),
    ("system.timestep_ps", 0.001, ALL),
    ("shear.directions", ["xy", "yz", "xz"], {"train", "final", "baseline"}),  # fewer: the rest keep their keys
    ("labels.positive", "cluster", {"labels"} | GRAPHS_ON),  # (with labels.event: cluster, as it needs)
    ("features.face_area_fraction", 0.02, {"structure"} | GRAPHS_ON),
    ("features.eigensolver", "dense", {"structure"} | GRAPHS_ON),
    ("features.stiffness_ftol", 1e-7, {"elastic"} | GRAPHS_ON),
    # the response joins the graphs when a model reads them: no graph, no task of the GAT re-keyed
    ("features.sets", ["study19", "study19+response"], {"response", "baseline"}),
    ("split.fractions", [2, 2, 1], {"train", "final", "baseline"}),
    ("split.folds", 3, {"train", "final"}),
    ("grid.layers", [2], {"final"}),  # fewer points: their folds keep their keys
    ("grid.heads", [6, 9], {"train", "final"}),
    ("train.threshold_A2", 0.2, {"train", "final"}),
    ("train.patience", 3, {"train", "final"}),
    ("train.learning_rate", 2e-3, {"train", "final"}),
    ("train.batch_graphs", 4, {"train", "final"}),
    ("train.focal_gamma", 1.0, {"train", "final"}),
    ("train.sampling", "undersample", {"train", "final"}),
    ("train.sampling_ratio", 2.0, {"train", "final"}),
    ("train.seed", 1, {"train", "final", "baseline"}),
    ("report.sweep_metric", "f1", {"final"}),
    ("report.strategies", ["focal"], set()),
    # smoke has neither a comparison nor the local yield stress: these keys open them (the comparison's
    # default scores read the response); what their other keys re-key is OPENED's
    ("compare.folds", 2, {"response", "compare-gnn", "compare-baseline"}),
    ("lys.regions_per_axis", 2, {"lys"}),
]
# the same, from smoke with both opened: a comparison of 2 outer folds, 8 regions in batches of 4
OPENED_BASE = {"compare": {"folds": 2}, "lys": {"regions_per_axis": 2, "regions_per_task": 4}}
OPENED = [
    ("compare.folds", 3, {"compare-gnn", "compare-baseline"}),
    ("compare.models", ["gat", "logistic"], set()),  # fewer rows: the others keep their keys
    ("compare.scores", ["participation_fraction"], set()),  # fewer, and no response to compute
    ("compare.point", [3, 4, 5], {"compare-gnn"}),
    ("compare.convs", ["GATv2Conv"], {"compare-gnn"}),
    ("compare.seeds", 3, {"compare-gnn"}),  # two more trainings per GNN fold; the first keeps its key
    ("lys.regions_per_axis", 3, {"lys"}),
    ("lys.regions_per_task", 8, {"lys"}),
    ("lys.radius_A", 8.0, {"lys"}),
    ("lys.shell_A", 8.0, {"lys"}),
    ("lys.strain_step", 5e-4, {"lys"}),
    ("lys.max_strain", 0.1, {"lys"}),
    ("lys.departure_GPa", 0.02, {"lys"}),
    ("lys.refine", 4, {"lys"}),
    ("lys.specimens", 3, set()),  # fewer lys tasks, none re-keyed (test_a_subset_of_lys_specimens... counts them)
    ("lys.directions", ["xy", "-xy"], set()),  # fewer lys tasks, none re-keyed (test_lys_directions...)
    # a set that reads the local yield stress: its baselines and compared rows, nothing upstream
    ("features.sets", ["study19", "study19+lys"], {"baseline", "compare-gnn", "compare-baseline"}),
    # a set that reads the mode softening: its stage, then as above
    ("features.sets", ["study19", "study19+softening"], {"softening", "baseline", "compare-gnn", "compare-baseline"}),
]
# the softening's keys, from OPENED_BASE with a set that reads it: the stage and every row that reads it
SOFTENED_BASE = {**OPENED_BASE, "features": {"sets": ["study19", "study19+softening"]}}
READ_SOFTENING = {"softening", "baseline", "compare-gnn", "compare-baseline"}
SOFTENED = [("softening.mode_fraction", 0.1, READ_SOFTENING), ("softening.path_step", 5e-5, READ_SOFTENING),
            ("softening.knots_every", 12, READ_SOFTENING), ("softening.continuation_steps", 4, READ_SOFTENING),
            ("softening.path_mode_fraction", 0.02, set())]  # read only with the path: keys kept
# not stated above, besides cluster.* and mpi.* (where and how tasks run): the store's path, and the
# potential, whose name is in every stage's key like any system key (another file would have to exist)
NOT_STATED = {"store", "system.potential"}


def _changed(base: dict, dotted: str, value) -> dict:
    """``base`` (nested overrides, copied) with ``dotted`` set to ``value``."""
    over = json.loads(json.dumps(base))
    node = over
    *path, last = dotted.split(".")
    for part in path:
        node = node.setdefault(part, {})
    node[last] = value
    if dotted == "labels.positive":
        over["labels"]["event"] = "cluster"
    return over


@pytest.mark.parametrize("dotted, value, stages", PROPAGATION, ids=[p[0] for p in PROPAGATION])
def test_each_config_key_changes_the_keys_of_exactly_its_stages(dotted, value, stages):
    before = {t.key for t in plan.plan(config.load("smoke"))}
    after = plan.plan(config.load("smoke", overrides=_changed({}, dotted, value)))
    assert {t.STAGE for t in after if t.key not in before} == stages


@pytest.mark.parametrize("base, dotted, value, stages", [(OPENED_BASE, *p) for p in OPENED] +
                         [(SOFTENED_BASE, *p) for p in SOFTENED], ids=[p[0] for p in OPENED + SOFTENED])
def test_each_key_of_the_comparison_lys_and_softening_changes_exactly_its_stages(base, dotted, value, stages):
    before = {t.key for t in plan.plan(config.load("smoke", overrides=base))}
    after = plan.plan(config.load("smoke", overrides=_changed(base, dotted, value)))
    assert {t.STAGE for t in after if t.key not in before} == stages


def test_a_subset_of_lys_specimens_re_keys_only_the_compared_rows_that_read_it():
    """lys.specimens 4 of 5: the rows that read the local yield stress become an outer CV over
    specimens 0-3 (tested on those only); the study's baselines leave that set out; the rest keep their keys."""
    base = {**OPENED_BASE, "features": {"sets": ["study19", "study19+lys"]}}
    before = plan.plan(config.load("smoke", overrides=base))
    after = plan.plan(config.load("smoke", overrides=_changed(base, "lys.specimens", 4)))
    new = [t for t in after if t.key not in {t.key for t in before}]
    assert {t.STAGE for t in new} == {"compare-gnn", "compare-baseline"}
    assert all(t.feature_set == "study19+lys" for t in new)
    assert all({k for k, _, _ in t.graphs} == {0, 1, 2, 3} for t in new)
    assert {t.specimen for t in after if t.STAGE == "lys"} == {0, 1, 2, 3}
    assert not [t for t in after if t.STAGE == "baseline" and t.feature_set == "study19+lys"]
    with pytest.raises(config.ConfigError, match="lys.specimens"):
        config.load("smoke", overrides=_changed(base, "lys.specimens", 3))  # 2 folds of 3 leave one
    for study_reads_it in ({"features": {"sets": ["study19+lys", "study19"]}}, {"compare": {"folds": 0}}):
        with pytest.raises(config.ConfigError, match="read by the comparison only"):
            config.load("smoke", overrides={**_changed(base, "lys.specimens", 4), **study_reads_it})


def test_lys_directions_plan_only_those_and_may_not_be_read():
    """lys.directions: the local yield stress of some shear directions only, measured (the rehearsal's),
    never read by a model or a score, and only of directions that are sheared."""
    only = _changed(OPENED_BASE, "lys.directions", ["-xy", "xz"])
    only["compare"]["scores"] = ["participation_fraction"]  # nothing reads the local yield stress
    tasks = plan.plan(config.load("smoke", overrides=only))
    assert {t.direction for t in tasks if t.STAGE == "lys"} == {"-xy", "xz"}
    with pytest.raises(config.ConfigError, match="'lys.directions'.*must not read it"):
        config.load("smoke", overrides={**only, "compare": {"folds": 2, "scores": ["-lys_dtau_c_GPa"]}})
    with pytest.raises(config.ConfigError, match="'lys.directions': yz not among 'shear.directions'"):
        config.load("smoke", overrides={**only, "shear": {"directions": ["xy", "-xy", "xz"]},
                                        "lys": {**only["lys"], "directions": ["xy", "yz"]}})


def test_config_hashes_are_pinned_and_a_key_added_later_leaves_them_at_its_default():
    """The config hash names a store's configurations (status, report, load_graph): a new key at its
    default (campaign.schema.Key.added_later) must not change it."""
    assert config.science_hash(config.load("smoke")) == "0474b9696c8d"
    assert config.science_hash(config.load("small")) == "9d06de2f9b84"
    assert config.science_hash(config.load("smoke", overrides={"features": {"sets": ["response"]}})) != "0474b9696c8d"


def test_every_config_key_says_which_stages_it_changes():
    """A new key in campaign/schema.py fails here until PROPAGATION says what it re-keys."""
    from campaign import schema

    stated = {p[0] for p in PROPAGATION + OPENED + SOFTENED}
    unstated = {k.name for k in schema.KEYS if k.name not in stated and k.name not in NOT_STATED
                and not k.name.startswith(("cluster.", "mpi."))}
    assert not unstated, f"add to PROPAGATION the stages these keys change: {sorted(unstated)}"


if __name__ == "__main__" and sys.argv[1:] == ["--update"]:
    with open(GOLDEN, "w") as f:
        json.dump({p: stage_digests(p) for p in PRESETS}, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {GOLDEN}")


def test_compare_seeds_adds_trainings_with_the_next_seeds_and_keeps_the_first():
    """compare.seeds 3: every GNN fold trains three times, with train.seed, + 1 and + 2; the first is the
    task of before (its key unchanged), and each training's folds stack apart from the others'."""
    one = [t for t in plan.plan(config.load("smoke", overrides=OPENED_BASE)) if t.STAGE == "compare-gnn"]
    three = [t for t in plan.plan(config.load("smoke", overrides=_changed(OPENED_BASE, "compare.seeds", 3)))
             if t.STAGE == "compare-gnn"]
    assert len(three) == 3 * len(one) and {t.key for t in one} <= {t.key for t in three}
    seed = config.load("smoke")["train"]["seed"]
    for t in three:
        assert t.params()["seed"] == seed + (t.repeat or 0)
        assert (t.key in {u.key for u in one}) == (t.repeat is None)
    cfg = config.load("smoke", overrides=_changed(OPENED_BASE, "compare.seeds", 3))
    assert len({t.batch(cfg) for t in three}) == 3 * len({t.batch(cfg) for t in one})
