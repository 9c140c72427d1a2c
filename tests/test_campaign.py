"""The smoke campaign end to end, for real: launch, relaunch, kill -9 and resume."""
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
import zarr

from store import records as store_records

pytestmark = pytest.mark.slow


def launch(store, *extra, timeout=900):
    return subprocess.run([sys.executable, "-m", "campaign", "launch", "--store", str(store), "--cores", "2", *extra],
                          capture_output=True, text=True, timeout=timeout)


def records(store):
    return store_records.read_all(str(store))


def arrays(store):
    out = {}
    root = zarr.open_group(str(store), mode="r")
    for path, arr in root.members(max_depth=None):
        if isinstance(arr, zarr.Array):
            out[path] = arr[...]
    return out


def survivors(store):
    """Processes whose command line names the store: workers, mpiexec, LAMMPS ranks."""
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(str(store) in part for part in (p.info["cmdline"] or [])):
                found.append(p)
        except psutil.Error:
            pass
    return found


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    store = tmp_path_factory.mktemp("full") / "smoke.zarr"
    t0 = time.time()
    res = launch(store)
    return store, res, time.time() - t0


def test_smoke_campaign_runs_end_to_end(full_run):
    store, res, seconds = full_run
    assert res.returncode == 0, res.stdout + res.stderr
    assert "dashboard: http" in res.stdout
    recs = records(store)
    stages = {}
    for r in recs.values():
        assert r["status"] == "done", r
        stages[r["stage"]] = stages.get(r["stage"], 0) + 1
    assert stages == {"liquid": 1, "quench": 5, "shear": 30, "elastic": 5, "structure": 5, "graph": 30,
                      "train": 8, "final": 12, "baseline": 12}
    root = zarr.open_group(str(store), mode="r")
    assert root.attrs["preset"] == "smoke"
    fired_lowest = 0
    for k in range(5):
        assert root[f"specimens/s{k:03d}/quenched/positions"].shape == (300, 3)
        for d in ["xy", "yz", "xz", "-xy", "-yz", "-xz"]:
            g = root[f"specimens/s{k:03d}/shear/{d}"]
            steps = g["strain"].shape[0]
            assert g["d2min_A2"].shape == (steps, 300) and g["positions"].shape == (steps, 300, 3)
            first = g["labels/first_step"][:]
            fired_lowest += int(first[0] >= 0)
            for t, step in enumerate(first):
                if step >= 0:  # label 1 = above the threshold at the first event
                    above = g["d2min_A2"][step] > g["labels/thresholds_A2"][t]
                    np.testing.assert_array_equal(g["labels/mask"][t], above)
    assert fired_lowest >= 0.7 * 5 * 6  # real events in most shears


def test_graphs_load_with_19_features_and_the_stored_edges(full_run):
    from store.graphs import load_graph

    store, _, _ = full_run
    root = zarr.open_group(str(store), mode="r")
    for k, d in [(0, "xy"), (3, "-xz")]:
        data = load_graph(str(store), k, d)
        assert data.x.shape == (300, 19) and not data.x.isnan().any()
        s = root[f"specimens/s{k:03d}/structure"]
        np.testing.assert_array_equal(data.edge_index.numpy(), np.stack([s["neighbour_i"][:], s["neighbour_j"][:]]))
        assert data.y.sum() == root[f"specimens/s{k:03d}/shear/{d}/labels/mask"][1].sum()  # 0.1 A^2 is row 1
    # the same atom has different frame-dependent features in different directions, the same others
    a, b = load_graph(str(store), 0, "xy").x, load_graph(str(store), 0, "yz").x
    assert np.array_equal(a[:, :7], b[:, :7]) and not np.allclose(a[:, 7:], b[:, 7:])


def test_report_has_every_table_and_figure(full_run):
    store, res, _ = full_run
    report = str(store)[:-5] + ".report"
    md = open(os.path.join(report, "report.md")).read()
    for part in ["Table 1", "Grid search", "Imbalance strategies", "Threshold sweep", "baseline: logistic",
                 "Fig. 2A", "Fig. 3A/B", "Fig. 4", "config "]:
        assert part in md, part
    for fig in ["fig2_roc_pr.png", "fig3_d2min.png", "fig4_threshold_sweep.png"]:
        assert os.path.getsize(os.path.join(report, fig)) > 10_000
    assert "<table>" in open(os.path.join(report, "report.html")).read()


def test_relaunch_recomputes_nothing(full_run):
    store, _, _ = full_run
    before = records(store)
    t0 = time.time()
    res = launch(store)
    assert res.returncode == 0
    assert "0 to run" in res.stdout
    assert records(store) == before
    assert time.time() - t0 < 30


def test_status_counts_every_stage(full_run):
    store, _, _ = full_run
    res = subprocess.run([sys.executable, "-m", "campaign", "status", "--store", str(store)],
                         capture_output=True, text=True)
    lines = {line.split()[0]: line.split()[1:] for line in res.stdout.splitlines()[2:]}
    assert lines["liquid"] == ["1", "0", "0"] and lines["quench"] == ["5", "0", "0"]
    assert lines["shear"] == ["30", "0", "0"]


def kill_when(store, moment, timeout=900):
    """Launch, and SIGKILL the launcher as soon as ``moment(store)`` is true."""
    proc = subprocess.Popen([sys.executable, "-m", "campaign", "launch", "--store", str(store), "--cores", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not moment(store) and proc.poll() is None and time.time() - t0 < timeout:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return time.time() - t0


def resume_and_compare(store, store_full, delay):
    deadline = time.time() + 15
    while survivors(store) and time.time() < deadline:
        time.sleep(0.5)
    assert survivors(store) == [], f"processes outlived the launcher (killed after {delay:.1f} s)"
    done_before = {k: r for k, r in records(store).items() if r["status"] == "done"} if store.exists() else {}
    res = launch(store)
    assert res.returncode == 0, res.stdout + res.stderr
    after = records(store)
    for name, rec in done_before.items():
        assert after[name] == rec, f"{name} had a completion record and ran again"
    a, b = arrays(store_full), arrays(store)
    assert a.keys() == b.keys()
    for path in a:
        message = f"{path} differs (killed after {delay:.1f} s)"
        if path.startswith("training/") and a[path].dtype.kind == "f":
            # a fold stacked with other companions sums in another order: equal to float32 rounding
            np.testing.assert_allclose(a[path], b[path], rtol=1e-5, atol=1e-6, err_msg=message)
        else:  # MD, features, labels: bit for bit
            np.testing.assert_array_equal(a[path], b[path], err_msg=message)
    return done_before


def test_kill_minus_nine_then_resume_equals_an_uninterrupted_run(full_run, tmp_path):
    store_full, _, seconds = full_run
    store = tmp_path / "killed.zarr"
    delay = random.uniform(5.0, max(6.0, 0.8 * seconds))
    t0 = time.time()
    kill_when(store, lambda s: time.time() - t0 > delay)
    resume_and_compare(store, store_full, delay)


def test_killed_mid_grid_trains_only_the_missing_folds(full_run, tmp_path):
    store_full, _, _ = full_run
    store = tmp_path / "mid-grid.zarr"

    def some_folds_done(s):
        return any(r["stage"] == "train" for r in records(s).values()) if os.path.isdir(s / "tasks") else False

    delay = kill_when(store, some_folds_done)
    done_before = resume_and_compare(store, store_full, delay)
    trained = [r for r in done_before.values() if r["stage"] == "train"]
    assert 0 < len(trained) < 8


def test_training_killed_mid_fold_goes_on_from_its_checkpoint(full_run, tmp_path):
    """A stacked fold training killed after its first checkpoint resumes from that epoch."""
    store_full, _, _ = full_run
    store = tmp_path / "mid-fold.zarr"
    checkpoints = tmp_path / "mid-fold.checkpoints"

    def a_training_checkpoint(_):
        return checkpoints.is_dir() and any(p.name.startswith("train-") for p in checkpoints.iterdir())

    delay = kill_when(store, a_training_checkpoint)
    assert a_training_checkpoint(store), f"no training checkpoint after {delay:.1f} s"
    resume_and_compare(store, store_full, delay)
    resumed = [r for r in records(store).values() if (r.get("summary") or {}).get("resumed_from_epoch")]
    assert resumed, "no training went on from its checkpoint"
    assert not any(checkpoints.iterdir()), "finished trainings left checkpoints behind"
