"""campaign.results: a store's results for a notebook, by specimen, direction and model name."""
import numpy as np
import pytest

from campaign.results import open_results
from store import layout, records

pytestmark = pytest.mark.slow  # on the smoke campaign the slow modules share (full_run, conftest.py)


def test_a_shear_reads_as_a_dataset_and_a_graph_as_a_frame(full_run):
    from smoke_campaign import group

    store, res, _ = full_run
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    r = open_results(str(store))
    ds = r.shear(1, "-xy")
    stored = group(store, "shear", specimen=1, direction="-xy")
    np.testing.assert_array_equal(ds["d2min_A2"].values, stored["d2min_A2"][...])
    np.testing.assert_array_equal(ds["positions"].values, stored["positions"][...])
    assert ds.sizes["xyz"] == 3 and ds.sizes["atom"] == r.cfg["system"]["n_atoms"]
    np.testing.assert_allclose(ds["strain"].values, np.arange(ds.sizes["step"]) * r.cfg["shear"]["strain_step"])
    assert set(np.unique(ds["type"].values)) == {1, 2}

    atoms = r.atoms(1, "-xy")
    graph = group(store, "graph", specimen=1, direction="-xy")
    assert list(atoms.columns[:19]) == list(graph.attrs["feature_names"])[:19]
    t = r.cfg["train"]["threshold_A2"]
    row = list(graph["thresholds_A2"][...]).index(t)
    np.testing.assert_array_equal(atoms[f"label_{t:g}"].to_numpy(), graph["y"][row].astype(float))
    np.testing.assert_array_equal(atoms[f"d2min_{t:g}"].to_numpy(), graph["event_d2min_A2"][row])


def test_table1_holds_each_final_model_and_baseline_as_the_records_do(full_run):
    store, _, _ = full_run
    r = open_results(str(store))
    t1 = r.table1()
    finals = t1[t1.stage == "final"].set_index("name")
    assert {f"opt-{m}" for m in ("recall", "precision", "f1", "mcc", "auc", "ap")} <= set(finals.index)
    task = next(t for t in r.data.of("final") if t.name == "opt-mcc")
    attrs = layout.group(layout.open_root(str(store)), records.read(str(store), task.key)["path"]).attrs
    assert finals.loc["opt-mcc", "mcc"] == attrs["metrics"]["mcc"] and finals.loc["opt-mcc", "point"] == attrs["point"]
    assert (t1.stage == "baseline").sum() == len(r.data.of("baseline"))
    assert r.comparison().empty and r.onset().empty  # the smoke preset compares nothing, softens nothing
    with pytest.raises(layout.StoreError, match="no configuration"):
        open_results(str(store), "000000000000")
    with pytest.raises(KeyError, match="no shear task"):
        r.shear(99, "xy")
