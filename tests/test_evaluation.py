"""The evaluation's protocol: no-event shears left out, early stopping on the trained loss,
undefined fold values counted as no skill (0) in model selection."""
from dataclasses import replace

import numpy as np
import pytest
import torch
import zarr

from jobs.common import Job, Spec
from jobs.evaluation import GraphInputs, load
from jobs.learn import best_point, cv_table
from kernels.training import Prepared, TrainOptions, fit, loss_terms, predict
from store import layout, records

from conftest import OneRank


class Reader(Job):
    """A job that only reads graphs (``jobs.evaluation.load``)."""

    Params = GraphInputs


def graph_store(tmp_path, first_steps: dict, n_columns: int = 19, feature_set: str | None = None) -> Job:
    """A store with a done graph record for each (specimen, direction): first_steps[(k, d)] (T,)
    at thresholds 0.1 and 0.2 Å²; returns a job whose plan holds those graphs."""
    store = str(tmp_path / "s.zarr")
    root = zarr.open_group(store, mode="w")
    root.require_group("tasks")
    graphs = []
    rng = np.random.default_rng(0)
    for (k, d), steps in first_steps.items():
        key = f"g{k}{d}"
        g = root.require_group(f"graphs/{key}")
        fired = np.array(steps) >= 0
        y = (rng.random((2, 10)) < 0.3) & fired[:, None]
        layout.write_arrays(
            g,
            {
                "x": rng.random((10, n_columns)).astype(np.float32),
                "edge_index": np.zeros((2, 0), np.int64),
                "y": y,
                "thresholds_A2": np.array([0.1, 0.2]),
                "first_step": np.array(steps),
                "event_d2min_A2": np.where(fired[:, None], rng.random((2, 10)), np.nan),
            },
        )
        records.write(store, key, records.DONE, "test", stage="graph", path=f"graphs/{key}",
                      checksums=records.checksums(g))
        graphs.append([k, d, key])
    return Reader(
        Spec(
            stage="final",
            job="jobs.learn:FinalJob",
            key="f",
            store=store,
            code_version="test",
            params={"graphs": graphs, "feature_set": feature_set, "responses": None, "softenings": None,
                    "lys": None},
        ),
        OneRank(),
    )


def test_a_shear_without_an_event_is_left_out_at_that_threshold_only(tmp_path):
    job = graph_store(tmp_path, {(0, "xy"): [3, 5], (0, "yz"): [4, -1], (1, "xy"): [2, 2], (1, "yz"): [1, 1]})
    at_01, left_out = load(job, [0, 1], ["xy", "yz"], 0.1)
    assert [(g["specimen"], g["direction"]) for g in at_01] == [(0, "xy"), (0, "yz"), (1, "xy"), (1, "yz")]
    assert left_out == []
    at_02, left_out = load(job, [0, 1], ["xy", "yz"], 0.2)
    assert [(g["specimen"], g["direction"]) for g in at_02] == [(0, "xy"), (1, "xy"), (1, "yz")]
    assert left_out == [[0, "yz"]]


def test_nothing_to_learn_from_is_an_error_naming_the_threshold(tmp_path):
    job = graph_store(tmp_path, {(0, "yz"): [4, -1]})
    with pytest.raises(layout.StoreError, match="no shear of specimens \\[0\\] had an event at 0.2"):
        load(job, [0], ["yz"], 0.2)


def test_the_weighted_loss_can_improve_while_the_unweighted_one_worsens():
    """1 STZ atom in 10: a model that raises the STZ atom's score and slightly the others' lowers the
    class-weighted loss and raises the plain cross-entropy; early stopping on the plain one would stop."""
    y = torch.tensor([1] + [0] * 9)
    weight = torch.tensor([10 / 18, 10 / 2])  # n / (2 n_c)
    opts = TrainOptions(epochs=1, learning_rate=1e-2, batch_graphs=1)
    before = torch.tensor([[2.0, -2.0]] * 10)
    after = torch.tensor([[0.0, 0.0]] + [[0.2, -0.2]] * 9)

    def loss(logits, w):
        s, n = loss_terms(logits, y, w, opts)
        return float(s / n)

    assert loss(after, weight) < loss(before, weight)
    assert loss(after, None) > loss(before, None)


def test_early_stopping_keeps_the_epoch_of_lowest_weighted_validation_loss():
    rng = np.random.default_rng(0)
    graphs = [{"x": rng.random((12, 19)).astype(np.float32), "edge_index": np.array([[0, 1], [1, 0]]),
               "y": (rng.random(12) < 0.1).astype(np.int64)} for _ in range(4)]
    mean, std = np.zeros(19, np.float32), np.ones(19, np.float32)
    train, val = Prepared(graphs[:3], mean, std, "cpu"), Prepared(graphs[3:], mean, std, "cpu")
    weight = torch.tensor([0.55, 5.0])
    opts = TrainOptions(epochs=6, learning_rate=1e-2, batch_graphs=2, loss="weighted_ce", sampling="none",
            focal_gamma=2.0, sampling_ratio=1.0, seed=0, patience=10, early_stop_loss="training")
    (model,), (hist,) = fit([train], [weight], 2, 3, 2, opts, val_sets=[val], seeds=[1])
    weighted = predict(model, val, weight=weight, opts=opts)[1]
    assert weighted == pytest.approx(min(hist["val_loss"]), rel=1e-5)
    assert hist["val_loss"][hist["best_epoch"]] == min(hist["val_loss"])
    assert predict(model, val)[1] != pytest.approx(weighted, rel=1e-3)  # not the unweighted loss


def test_a_gat_trains_on_graphs_with_a_joined_float64_column():
    """The local yield stress is joined to the study's float32 columns as float64 (kernels.lys):
    the model's inputs are float32 all the same (a double tensor failed in the GAT's first layer)."""
    rng = np.random.default_rng(0)
    graphs = [
        {
            "x": np.hstack([rng.random((12, 19)).astype(np.float32), rng.random((12, 1))]),
            "edge_index": np.array([[0, 1], [1, 0]]),
            "y": (rng.random(12) < 0.2).astype(np.int64),
        }
        for _ in range(3)
    ]
    assert graphs[0]["x"].dtype == np.float64
    prepared = Prepared(graphs, graphs[0]["x"].mean(0), graphs[0]["x"].std(0) + 1.0, "cpu")
    assert prepared.x[0].dtype == torch.float32
    opts = TrainOptions(epochs=2, learning_rate=1e-2, batch_graphs=2, loss="weighted_ce", sampling="none",
            focal_gamma=2.0, sampling_ratio=1.0, seed=0, patience=10, early_stop_loss="training")
    fit([prepared], [torch.tensor([0.6, 3.0])], 2, 3, 2, opts, seeds=[1])


def test_a_fold_with_an_undefined_value_ranks_below_an_otherwise_equal_point(tmp_path):
    """Precision undefined in one fold (no predicted STZ) counts as 0: point A (0.3, -, 0.3, 0.3)
    means 0.225 and loses to B (0.25 x 4); dropping the fold (nanmean) would have chosen A."""
    store = str(tmp_path / "s.zarr")
    zarr.open_group(store, mode="w").require_group("tasks")
    folds = {"A": [0.3, None, 0.3, 0.3], "B": [0.25] * 4}
    cv_keys = {}
    for point, values in folds.items():
        for f, v in enumerate(values):
            key = f"{point}{f}"
            summary = {m: 0.5 for m in ("recall", "f1", "mcc", "auc", "ap")} | {"precision": v}
            records.write(store, key, records.DONE, "test", stage="train", summary=summary)
            cv_keys.setdefault(point, []).append(key)
    table, undefined = cv_table(store, cv_keys)
    assert table["A"]["precision"] == pytest.approx(0.225) and undefined["A"]["precision"] == 1
    assert best_point(table, "precision") == "B"
    assert undefined["B"] == dict.fromkeys(undefined["B"], 0)


def test_a_figures_provenance_stamp_overlaps_none_of_its_labels():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from campaign.report import stamp

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))  # as Fig. 2: two panels, labels at the bottom
    for ax in axes:
        ax.plot([0, 1], [0, 1])
        ax.set_xlabel("false positive rate\n(two lines)")
    text = stamp(fig, "preset smoke · config 0123456789ab · code 0.1.0")
    fig.canvas.draw()
    box = text.get_window_extent()
    assert not any(box.overlaps(ax.get_tightbbox()) for ax in axes)
    plt.close(fig)


def test_a_task_reads_the_columns_of_its_feature_set(tmp_path):
    steps = {(0, "xy"): [3, 5]}
    study = load(graph_store(tmp_path / "a", steps, n_columns=22), [0], ["xy"], 0.1)[0][0]["x"]
    response = load(graph_store(tmp_path / "b", steps, n_columns=22, feature_set="response"), [0], ["xy"], 0.1)[0][0][
        "x"
    ]
    full = load(graph_store(tmp_path / "c", steps, n_columns=22, feature_set="study19+response"), [0], ["xy"], 0.1)[0][
        0
    ]
    assert study.shape == (10, 19) and response.shape == (10, 3)
    np.testing.assert_array_equal(full["x"][:, :19], study)
    np.testing.assert_array_equal(full["x"][:, 19:], response)


def test_the_response_and_the_bond_vectors_are_joined_to_the_graph_as_it_is_read(tmp_path):
    """A compared model's rows: the graph's 19 columns, then its shear's response columns (by direction,
    from the response task); edges carrying r_j - r_i to the nearest image, in the shear frame."""
    from kernels.frames import shear_rotation

    job = graph_store(tmp_path, {(0, "xy"): [3, 5], (0, "-yz"): [2, 4]}, feature_set="study19+response")
    store, rng = job.spec.store, np.random.default_rng(1)
    root = zarr.open_group(store)
    response = rng.random((2, 10, 3)).astype(np.float32)
    cell = np.diag([10.0, 11.0, 12.0])
    positions = rng.random((10, 3)) @ cell
    for key, arrays, params in (("r0", {"features": response}, {"directions": ["-yz", "xy"]}),
                                ("q0", {"positions": positions, "cell": cell}, {})):
        g = root.require_group(f"other/{key}")
        layout.write_arrays(g, arrays)
        records.write(store, key, records.DONE, "test", stage="x", path=f"other/{key}", params=params,
                      checksums=records.checksums(g))
    edges = np.array([[0, 1, 2], [1, 0, 9]])
    for key in ("g0xy", "g0-yz"):  # give the graphs edges
        g = root[f"graphs/{key}"]
        layout.write_arrays(g, {"edge_index": edges})
        records.write(store, key, records.DONE, "test", stage="graph", path=f"graphs/{key}",
                      checksums=records.checksums(g))
    job.p = replace(job.p, responses=[[0, "r0"]], quenches=[[0, "q0"]])
    graphs, _ = load(job, [0], ["xy", "-yz"], 0.1)
    for graph, d, r in zip(graphs, ["xy", "-yz"], [1, 0]):
        assert graph["x"].shape == (10, 22)
        np.testing.assert_array_equal(graph["x"][:, 19:], response[r])
        bonds = positions[edges[1]] - positions[edges[0]]
        bonds -= np.round(bonds / np.diag(cell)) * np.diag(cell)  # nearest image in the orthogonal box
        np.testing.assert_allclose(graph["edge_attr"], bonds @ shear_rotation(d).T, rtol=1e-5, atol=1e-5)
    job.p = replace(job.p, feature_set=None, quenches=None)
    plain = load(job, [0], ["xy"], 0.1)[0][0]
    assert plain["x"].shape == (10, 19) and "edge_attr" not in plain


def test_the_local_yield_stress_is_joined_from_every_batch_of_regions_interpolated_at_the_atoms(tmp_path):
    """lys rows: each (specimen, direction) reads all its batches, places each region's Δτ_c on the
    grid, counts a region that did not yield as the strongest that did, and interpolates at the atoms."""
    from kernels.lys import interpolate

    job = graph_store(tmp_path, {(0, "xy"): [3, 5]}, feature_set="study19+lys")
    store, rng = job.spec.store, np.random.default_rng(2)
    root = zarr.open_group(store)
    cell, origin = np.diag([10.0, 10.0, 10.0]), np.array([-5.0, -5.0, -5.0])
    positions = origin + rng.random((10, 3)) * 10.0
    g = root.require_group("other/q0")
    layout.write_arrays(g, {"positions": positions, "cell": cell, "origin": origin})
    records.write(store, "q0", records.DONE, "test", stage="quench", path="other/q0", checksums=records.checksums(g))
    dtau = np.array([1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0, 3.0])  # region 2 never yielded
    rows = []
    for first in (0, 4):
        key = f"lys{first}"
        g = root.require_group(f"other/{key}")
        layout.write_arrays(g, {"region": np.arange(first, first + 4), "dtau_c_GPa": dtau[first:first + 4]})
        records.write(store, key, records.DONE, "test", stage="lys", path=f"other/{key}",
                      params={"shape": [2, 2, 2], "quench_key": "q0"}, checksums=records.checksums(g))
        rows.append([0, "xy", key])
    job.p = replace(job.p, lys=rows)
    x = load(job, [0], ["xy"], 0.1)[0][0]["x"]
    assert x.shape == (10, 20)
    filled = np.where(np.isnan(dtau), 7.0, dtau).reshape(2, 2, 2)
    np.testing.assert_allclose(x[:, 19], interpolate(filled, (positions - origin) / 10.0), rtol=1e-6)
    job.p = replace(job.p, lys=rows[:1])
    with pytest.raises(layout.StoreError, match=r"regions \[4, 5, 6, 7\] is missing"):
        load(job, [0], ["xy"], 0.1)


def test_the_standardiser_leaves_one_hot_columns_and_scales_every_other():
    from kernels.training import standardiser

    rng = np.random.default_rng(1)
    types = rng.random(50) < 0.6
    x = np.column_stack([types, ~types, rng.normal(3, 2, 50), rng.normal(-1, 5, (50, 2))]).astype(np.float32)
    mean, std = standardiser([{"x": x[:25]}, {"x": x[25:]}])
    assert mean[:2].tolist() == [0, 0] and std[:2].tolist() == [1, 1]
    np.testing.assert_allclose(mean[2:], x[:, 2:].astype(np.float64).mean(0), rtol=1e-6)
    np.testing.assert_allclose(std[2:], x[:, 2:].astype(np.float64).std(0), rtol=1e-6)


def test_an_export_round_trips_through_ase_with_every_column(tmp_path):
    import ase.io

    from campaign.export import write_dump, write_extxyz

    rng = np.random.default_rng(3)
    n = 40
    cell = np.array([[12.0, 0, 0], [0.6, 13.0, 0], [-0.4, 0.3, 14.0]])
    data = {"positions": rng.random((n, 3)) @ cell + 1.5, "cell": cell, "origin": np.full(3, 1.5),
            "types": rng.integers(1, 3, n), "d2min_A2": rng.random(n), "label": (rng.random(n) < 0.2).astype(int),
            "participation_fraction": rng.random(n), "score": rng.random(n), "threshold_A2": 0.1}
    write_extxyz(str(tmp_path / "a.xyz"), data)
    write_dump(str(tmp_path / "a.dump"), data)
    xyz = ase.io.read(str(tmp_path / "a.xyz"), format="extxyz")
    np.testing.assert_allclose(xyz.positions, data["positions"] - data["origin"], atol=1e-6)
    np.testing.assert_allclose(xyz.cell[:], cell, atol=1e-9)
    assert list(xyz.get_chemical_symbols()) == ["Cu" if t == 1 else "Zr" for t in data["types"]]
    for name in ("d2min_A2", "label", "participation_fraction", "score", "type"):
        np.testing.assert_allclose(xyz.arrays[name], data["types"] if name == "type" else data[name], atol=1e-7)
    dump = ase.io.read(str(tmp_path / "a.dump"), format="lammps-dump-text")
    np.testing.assert_allclose(dump.cell[:], cell, atol=1e-9)
    wrapped = lambda p: (p @ np.linalg.inv(cell)) % 1.0  # noqa: E731  (ASE shifts the dump's origin)
    np.testing.assert_allclose(wrapped(dump.positions - dump.positions[0]),
                               wrapped(data["positions"] - data["positions"][0]), atol=1e-6)
    with open(tmp_path / "a.dump") as f:
        header = [line for line in f if line.startswith("ITEM: ATOMS")][0].split()[2:]
    assert header == ["id", "type", "x", "y", "z", "d2min_A2", "label", "participation_fraction", "score"]
