"""The smoke campaign changed after it ran: another threshold, a comparison, an export."""
import subprocess
import sys

import numpy as np
import pytest
import zarr

from campaign import config, plan

from smoke_campaign import copy_of, launch, records, stages_run

pytestmark = pytest.mark.slow


def test_a_changed_threshold_relabels_without_shearing_again_and_both_configs_keep_their_data(full_run, tmp_path):
    store_full, _, _ = full_run
    store = copy_of(store_full, tmp_path, "two-configs.zarr")
    first = records(store)
    other = tmp_path / "other.yaml"
    other.write_text("labels:\n  thresholds_A2: [0.05, 0.1, 0.2, 0.3]\n")
    res = launch(store, "--config", str(other))
    assert res.returncode == 0, res.stdout + res.stderr
    ran = stages_run(res.stdout)
    assert "shear" not in ran and ran.count("labels") == 30 and ran.count("graph") == 30, res.stdout
    after = records(store)
    assert all(after[k] == r for k, r in first.items()), "a finished task of the first config changed"
    again = launch(store)  # the first configuration: still all done, its data untouched
    assert again.returncode == 0 and "0 to run" in again.stdout
    for cfg_args in ([], ["--config", str(other)]):
        res = subprocess.run([sys.executable, "-m", "campaign", "verify", "--store", str(store), *cfg_args],
                             capture_output=True, text=True)
        assert res.returncode == 0 and "0 damaged" in res.stdout, res.stdout + res.stderr
    # each configuration's labels are its own: 0.3 in the second, 0.4 in the first (the last launched)
    from store.graphs import load_graph
    first_hash = config.science_hash(config.load("smoke"))
    other_hash = config.science_hash(config.load("smoke", str(other)))
    assert other_hash != first_hash
    assert load_graph(str(store), 0, "xy", threshold=0.4).threshold == 0.4
    assert load_graph(str(store), 0, "xy", threshold=0.3, config_hash=other_hash).threshold == 0.3


def test_a_larger_threshold_shears_further_the_shears_that_stopped_early(full_run, tmp_path):
    """Threshold 0.5 above the stored 0.4 (directions xy only, to keep it short): every xy shear that
    stopped on the 0.4 rule runs again under its key to the 0.5 rule (further, or to the same step
    when both fire at once, as in smoke's poor glasses); its first steps are bit for bit the old
    ones, and the first configuration's tasks stay done with their data."""
    store_full, _, _ = full_run
    store = copy_of(store_full, tmp_path, "further.zarr")
    first = records(store)
    cfg = config.load("smoke", overrides={"store": str(store)})
    xy = [t for t in plan.plan(cfg) if t.STAGE == "shear" and t.direction == "xy"]
    stopped = [t for t in xy if not first[t.key]["summary"]["reached_max_strain"]]
    assert stopped, "no xy shear stopped early"
    old_d2 = {t.key: zarr.open_group(str(store))[t.path]["d2min_A2"][...] for t in stopped}
    further = tmp_path / "further.yaml"
    further.write_text("shear:\n  directions: [xy]\nlabels:\n  thresholds_A2: [0.05, 0.1, 0.2, 0.5]\n")
    res = launch(store, "--config", str(further))
    assert res.returncode == 0, res.stdout + res.stderr
    assert stages_run(res.stdout).count("shear") == len(stopped), res.stdout
    after = records(store)
    for t in stopped:
        s = after[t.key]["summary"]
        assert after[t.key]["time"] != first[t.key]["time"]  # it ran again
        assert s["reached_max_strain"] or s["stopped_on"]["threshold_A2"] == 0.5
        assert s["steps"] >= first[t.key]["summary"]["steps"]  # 0.5 may fire at the step 0.4 did
        d2 = zarr.open_group(str(store))[t.path]["d2min_A2"][...]
        np.testing.assert_array_equal(d2[:len(old_d2[t.key])], old_d2[t.key])
    further = sum(after[t.key]["summary"]["steps"] > first[t.key]["summary"]["steps"] for t in stopped)
    print(f"{len(stopped)} xy shears ran again to the 0.5 rule, {further} of them further")
    again = launch(store)  # the first configuration: its shears are covered, its labels untouched
    assert again.returncode == 0 and "0 to run" in again.stdout, again.stdout
    assert all(after[k] == r for k, r in first.items() if r["stage"] != "shear")


def test_a_comparison_tests_every_specimen_once_per_row_and_re_runs_nothing_of_the_study(full_run, tmp_path):
    """compare.folds, a response feature set and a coarse local yield stress of 4 specimens on a
    finished campaign: only the response, lys, the new set's baselines and the compared rows run;
    every row scores every specimen's atoms once (the lys row those 4), and the report and export
    show them."""
    import ase.io

    store = copy_of(full_run[0], tmp_path, "compare.zarr")
    extra = tmp_path / "compare.yaml"
    extra.write_text("features:\n  sets: [study19, study19+response]\ncompare:\n  folds: 2\n  scores: "
                     "[participation_fraction, response_u_A, response_mode_drive_A2, -lys_dtau_c_GPa]\n"
                     "lys:\n  regions_per_axis: 1\n  specimens: 4\n  strain_step: 2.0e-3\n")
    res = launch(store, "--config", str(extra))
    assert res.returncode == 0, res.stdout + res.stderr
    ran = stages_run(res.stdout)
    assert ran.count("response") == 5 and ran.count("lys") == 4 * 6, res.stdout
    assert set(ran) == {"response", "lys", "baseline", "compare"}, res.stdout  # labels: 'compare gat-study19 f0 x2'
    recs = records(store)
    by_stage = {}
    for r in recs.values():
        by_stage.setdefault(r["stage"], []).append(r)
    assert len(by_stage["compare-gnn"]) == 2 * 2 * 2  # gat and gat_edges, two sets, two outer folds
    assert len(by_stage["compare-baseline"]) == (2 * 2 + 1 + 4) * 2  # logistic and trees per set, random, 4 scores
    tested = {}
    for r in by_stage["compare-gnn"] + by_stage["compare-baseline"]:
        name = r["path"].split("/")[2]  # training/compare/<row>/fold<f>/<key>
        g = zarr.open_group(str(store), mode="r")[r["path"]]
        tested.setdefault(name, []).extend(np.unique(g["specimen"][...]).tolist())
    lys_row = tested.pop("lys_dtau_c_GPa_negated")
    assert sorted(lys_row) == [0, 1, 2, 3]
    assert all(sorted(v) == list(range(5)) for v in tested.values()), tested  # each specimen once per row
    with open(str(store)[:-5] + ".report/report.md") as f:
        report = f.read()
    for text in ("What predicts the first STZ", "direction-aware GAT (bond vectors on the edges) L2-M20-N6 on "
                 "study19+response", "single score: response_u_A", "Permutation importance, boosted trees on",
                 "baseline: logistic on study19+response", "The first 4 specimens only",
                 "single score: lys_dtau_c_GPa_negated", "no region to rank against another"):
        assert text in report, text
    res = subprocess.run([sys.executable, "-m", "campaign", "export", "--store", str(store), "--config", str(extra),
                          "--specimen", "0", "--direction", "-yz", "--model", "gat_edges-study19"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    atoms = ase.io.read(str(store)[:-5] + ".export/s000--yz-t0.1-gat_edges-study19.xyz", format="extxyz")
    assert np.isfinite(atoms.arrays["score"]).all() and "response_mode_drive_A2" in atoms.arrays


def test_export_writes_a_test_specimens_atoms_with_labels_features_and_scores(full_run):
    import ase.io

    from campaign.stages.learning import split

    store = full_run[0]
    k = split(config.load("smoke"))[2][0]  # a test specimen: it has the model's scores
    res = subprocess.run([sys.executable, "-m", "campaign", "export", "--store", str(store), "--specimen", str(k),
                          "--direction", "xy", "--model", "opt-mcc"], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    atoms = ase.io.read(str(store)[:-5] + f".export/s{k:03d}-xy-t0.1-opt-mcc.xyz", format="extxyz")
    assert len(atoms) == 300 and {"d2min_A2", "label", "participation_fraction", "score"} <= set(atoms.arrays)
    assert np.isfinite(atoms.arrays["score"]).all() and set(np.unique(atoms.arrays["label"])) <= {0, 1}
    assert atoms.info["config"] == config.science_hash(config.load("smoke"))
    # the shear's frames around the first event: D²min recomputed from them is the stored one
    from kernels.d2min import d2min

    before, event = ase.io.read(str(store)[:-5] + f".export/s{k:03d}-xy-t0.1-opt-mcc-frames.xyz", index=":",
                                format="extxyz")
    assert event.info["step"] == before.info["step"] + 1 == event.info["first_event_step"]
    recomputed = d2min(before.positions, before.cell.array, event.positions, event.cell.array,
                       config.load("smoke")["labels"]["d2min_cutoff_A"])
    np.testing.assert_allclose(recomputed, event.arrays["d2min_A2"], atol=1e-5)  # extxyz keeps 8 decimals
    assert event.arrays["d2min_A2"][event.arrays["label"] == 1].min() >= 0.1  # the event's atoms, at 0.1 Å²
