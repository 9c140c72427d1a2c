"""The report's comparison (campaign.comparison): rows pooled over outer folds, claims from paired t
tests over specimens with Holm's adjustment, subsets of specimens, and rows trained over several seeds."""
import numpy as np
import pytest
import zarr

from store import layout


def test_the_comparison_pools_each_rows_folds_and_claims_only_what_its_paired_intervals_show(tmp_path):
    """Rows of two outer folds over 6 specimens: a model far better than the reference is said to beat
    it (paired t tests over specimens, Holm-adjusted over the table), a copy of the reference is told apart
    from nothing, a single score shows no thresholded metric."""
    from types import SimpleNamespace

    from campaign import comparison
    from campaign.config import load as load_config
    from campaign.report import Report

    root = zarr.open_group(str(tmp_path / "s.zarr"), mode="w")
    rng = np.random.default_rng(0)
    y = {k: rng.random((2, 300)) < 0.05 for k in range(6)}  # 2 directions x 300 atoms per specimen
    noise = {k: rng.standard_normal((2, 300)) for k in range(6)}
    signal = {"gat-study19": 0.5, "gat_edges-study19": 0.5, "logistic-study19": 3.0, "participation_fraction": 1.0,
              "random-study19": 0.0, "boosted_trees-study19": 0.5}  # the trees: as good, with noise of their own
    own = {k: rng.standard_normal((2, 300)) for k in range(6)}
    tasks = []
    for row, strength in signal.items():
        for fold, specimens in enumerate([(0, 2, 4), (1, 3, 5)]):
            g = root.require_group(f"compare/{row}/fold{fold}")
            ks = np.repeat(specimens, 600)
            layout.write_arrays(g, {
                "y": np.concatenate([y[k].ravel() for k in specimens]).astype(np.int8),
                "score": 1 / (1 + np.exp(-np.concatenate([(own if row.startswith("boosted") else noise)[k].ravel()
                                                          + strength * y[k].ravel() - 2 for k in specimens]))),
                "specimen": ks.astype(np.int32), "direction": np.tile(np.repeat([0, 1], 300), 3).astype(np.int8),
                "d2min_A2": np.concatenate([y[k].ravel() for k in specimens]).astype(np.float32)})
            tasks.append(SimpleNamespace(model=row, path=g.path, STAGE="compare-gnn" if row.startswith("gat")
                                         else "compare-baseline", feature_set=None,
                                         kind=f"score:{row}" if "-" not in row else row.partition("-")[0]))
    q = root.require_group("quench0")
    layout.write_arrays(q, {"positions": rng.random((300, 3)) * 20.0, "cell": np.diag([20.0, 20.0, 20.0])})
    tasks.append(SimpleNamespace(STAGE="quench", specimen=0, path=q.path))
    data = SimpleNamespace(root=root, of=lambda stage: [t for t in tasks if t.STAGE == stage],
                           group=lambda t: root[t.path])
    cfg = load_config("smoke", overrides={"compare": {"folds": 2}, "shear": {"directions": ["xy", "yz"]},
                                          "report": {"bootstrap": 200}})
    rep = Report(str(tmp_path / "report"), "stamp")
    comparison.section(rep, data, cfg)
    text = "\n".join(rep.md)
    claims = next(line for line in rep.md if line.startswith("Differences claimed"))
    assert claims.split(": ", 1)[1] == (
        "better than the reference: logistic regression on study19 (MCC); logistic regression on study19 (AUC); "
        "logistic regression on study19 (AP); single score: participation_fraction (AUC); single score: "
        "participation_fraction (AP); worse: random (AUC); random (AP). Better than their best single "
        "input: logistic regression on study19 (AUC, vs participation_fraction); logistic regression on study19 "
        "(AP, vs participation_fraction); worse than it: "
        + "; ".join(
            f"{model} on study19 ({m}, vs participation_fraction)"
            for model in ("GAT L2-M20-N6", "direction-aware GAT (bond vectors on the edges) L2-M20-N6")
            for m in ("AUC", "AP")
        )
        + ". Nothing else is told apart by these 6 specimens.\n"
    )
    # with 6 specimens and Holm's adjustment over the table's differences, the random scorer's MCC (no
    # prediction above 0.5 for either) and the trees, as good as the GAT but with noise of their own, are not
    # told apart from what they were compared with (the percentile bootstrap claimed both)
    assert "n = 6 specimens" in text and "Holm-adjusted over the" in text
    assert "direction-aware GAT (bond vectors on the edges) L2-M20-N6 on study19" in text
    row = next(line for line in rep.md if line.startswith("| single score: participation_fraction"))
    assert row.split(" | ")[1:5] == ["–"] * 4  # no recall, precision, F1, MCC for a bare score
    assert (tmp_path / "report" / "compare_stz.png").stat().st_size > 10_000  # the STZ pictured
    copy = next(line for line in rep.md if line.startswith("| direction-aware GAT"))
    assert "+0.000 [+0.000, +0.000]" in copy  # the same scores as the reference: no difference at all

    # the same rows for a notebook: one row per (row, training, graph), each graph's AP scikit-learn's
    from sklearn.metrics import average_precision_score

    from campaign.results import Results

    results = Results.__new__(Results)
    results.data, results.cfg = data, cfg
    frame = results.comparison()
    assert len(frame) == len(signal) * 6 * 2 and set(frame.direction) == {"xy", "yz"}
    one = frame[(frame.row == "logistic-study19") & (frame.specimen == 3) & (frame.direction == "yz")].iloc[0]
    g = root["compare/logistic-study19/fold1"]
    at = (g["specimen"][...] == 3) & (g["direction"][...] == 1)
    assert one.ap == pytest.approx(average_precision_score(g["y"][...][at], g["score"][...][at]))
    assert one.positives == y[3][1].sum() and one.atoms == 300


def test_the_comparison_shows_a_subsets_rows_beside_every_row_and_where_the_weakest_region_is(tmp_path):
    """lys on specimens 0-3 of 6: the lys row is tabled on those only, beside the reference restricted
    to them. The direct check ranks the region of each graph's most displaced atom by Δτ_c: the
    lowest in 5 graphs; specimen 3's are 2nd (another region is weaker) and 6.5th (it did not yield,
    tied with 3 others as the strongest); a graph where no region yielded is not ranked."""
    from types import SimpleNamespace

    from campaign import comparison
    from campaign.config import load as load_config
    from campaign.report import Report

    root = zarr.open_group(str(tmp_path / "s.zarr"), mode="w")
    rng = np.random.default_rng(1)
    lattice = (np.stack(np.meshgrid(*[np.arange(4)] * 3, indexing="ij"), -1).reshape(-1, 3) + 0.5) * 5.0  # 64 atoms
    origin, cell = np.array([-10.0, -10.0, -10.0]), np.diag([20.0] * 3)
    positions = lattice + origin
    stz_region = {(k, d): int(rng.integers(8)) for k in range(6) for d in range(2)}
    # region r of the 2^3 grid holds the atoms with lattice index // 2 == its (i, j, k)
    region_of_atom = np.ravel_multi_index(tuple((lattice // 10.0).astype(int).T), (2, 2, 2))
    y = {key: (region_of_atom == r) & (rng.random(64) < 0.5) | (np.arange(64) == np.flatnonzero(region_of_atom == r)[0])
         for key, r in stz_region.items()}
    # labels reach past the STZ's region (one atom elsewhere); the most displaced atom lies in it
    d2min = {key: 0.5 * y[key] + 0.5 * (region_of_atom == r) + 0.1 * rng.random(64) for key, r in stz_region.items()}
    for key, r in stz_region.items():
        y[key][np.flatnonzero(region_of_atom != r)[0]] = True
    tasks = []

    def rows(row, folds, signal, feature_set):
        for f, specimens in enumerate(folds):
            g = root.require_group(f"compare/{row}/fold{f}")
            graphs = [(k, d) for k in specimens for d in range(2)]
            layout.write_arrays(g, {
                "y": np.concatenate([y[kd] for kd in graphs]).astype(np.int8),
                "score": np.concatenate([signal * y[kd] + rng.random(64) for kd in graphs]),
                "specimen": np.repeat([k for k, _ in graphs], 64).astype(np.int32),
                "direction": np.repeat([d for _, d in graphs], 64).astype(np.int8),
                "d2min_A2": np.concatenate([d2min[kd] for kd in graphs]).astype(np.float32)})
            kind = "gat" if row.startswith("gat") else f"score:-{row.removesuffix('_negated')}"
            tasks.append(SimpleNamespace(model=row, path=g.path, kind=kind, feature_set=feature_set,
                                         STAGE="compare-gnn" if kind == "gat" else "compare-baseline"))

    rows("gat-study19", [(0, 2, 4), (1, 3, 5)], 0.3, None)
    rows("lys_dtau_c_GPa_negated", [(0, 2), (1, 3)], 1.0, "lys")
    for k in range(6):
        q = root.require_group(f"quench{k}")
        layout.write_arrays(q, {"positions": positions, "cell": cell, "origin": origin})
        tasks.append(SimpleNamespace(STAGE="quench", specimen=k, path=q.path))
    for k in range(4):
        for d, name in enumerate(["xy", "yz"]):
            r = stz_region[(k, d)]
            values = 1.1 + 0.1 * np.arange(8)
            values[r] = 1.0  # the weakest
            if k == 1 and d == 0:
                values[[(r + 1) % 8, (r + 2) % 8, (r + 3) % 8]] = np.nan  # did not yield: no harm
            if k == 2 and d == 1:
                values[:] = np.nan  # no region yielded: not ranked
            if k == 3 and d == 0:
                values[[r, (r + 1) % 8, (r + 2) % 8, (r + 3) % 8]] = np.nan  # ranks 5-8 shared: 6.5
            if k == 3 and d == 1:
                values[(r + 1) % 8] = 0.5  # another region is weaker: rank 2
            g = root.require_group(f"lys{k}{name}")
            layout.write_arrays(g, {"region": np.arange(8), "dtau_c_GPa": values})
            tasks.append(SimpleNamespace(STAGE="lys", specimen=k, direction=name, shape=(2, 2, 2), path=g.path))
    data = SimpleNamespace(root=root, of=lambda stage: [t for t in tasks if t.STAGE == stage],
                           group=lambda t: root[t.path])
    cfg = load_config("smoke", overrides={"compare": {"folds": 2, "scores": ["-lys_dtau_c_GPa"]},
                                          "shear": {"directions": ["xy", "yz"]}, "report": {"bootstrap": 50},
                                          "lys": {"regions_per_axis": 2, "specimens": 4}})
    cfg["quench"]["specimens"] = 6
    rep = Report(str(tmp_path / "report"), "stamp")
    comparison.section(rep, data, cfg)
    text = "\n".join(rep.md)
    first, second = [i for i, line in enumerate(rep.md) if line.startswith("| row |")][:2]
    assert "single score: lys_dtau_c_GPa_negated" not in "\n".join(rep.md[first:second])  # not on every specimen
    subset = "\n".join(rep.md[second - 1:])  # from its caption
    assert "The first 4 specimens only" in subset and "| GAT L2-M20-N6 on study19 (reference)" in subset
    assert "| single score: lys_dtau_c_GPa_negated" in subset and "8 graphs with an event" in subset
    assert "in the region of lowest Δτ_c in 5 of 7 graphs: a share of 0.71" in text
    assert "mean rank is 1.93 [" in text  # (5 + 2 + 6.5) / 7
    assert "| graphs | 5 | 1 | 0 | 0 | 0 | 0 | 1 | 0 |" in text


def test_a_gnn_row_of_several_seeds_is_averaged_over_its_trainings_and_shows_their_spread(tmp_path):
    """compare.seeds 2: a GAT whose first training ranks well and whose second is chance is tabled at the
    mean of the two (not at its first training's values), marked '(2 seeds)' with a ± spread; each
    specimen's AP is averaged over the trainings before the interval over specimens."""
    from types import SimpleNamespace

    from campaign import comparison
    from campaign.config import load as load_config
    from campaign.report import Report
    from kernels import metrics as M

    root = zarr.open_group(str(tmp_path / "s.zarr"), mode="w")
    rng = np.random.default_rng(2)
    y = {k: rng.random((2, 200)) < 0.05 for k in range(4)}
    tasks, scores = [], {}
    for row, repeat, strength in [("gat-study19", None, 2.0), ("gat-study19", 1, 0.0), ("logistic-study19", None, 1.0)]:
        for fold, specimens in enumerate([(0, 2), (1, 3)]):
            g = root.require_group(f"compare/{row}/fold{fold}-{repeat}")
            score = np.concatenate([rng.random(400) + strength * y[k].ravel() for k in specimens])
            scores.setdefault((row, repeat), []).append(score)
            layout.write_arrays(g, {
                "y": np.concatenate([y[k].ravel() for k in specimens]).astype(np.int8), "score": score,
                "specimen": np.repeat(specimens, 400).astype(np.int32),
                "direction": np.tile(np.repeat([0, 1], 200), 2).astype(np.int8),
                "d2min_A2": np.concatenate([y[k].ravel() for k in specimens]).astype(np.float32)})
            tasks.append(SimpleNamespace(model=row, path=g.path, repeat=repeat, feature_set=None,
                                         STAGE="compare-gnn" if row.startswith("gat") else "compare-baseline",
                                         kind=row.partition("-")[0]))
    data = SimpleNamespace(root=root, of=lambda stage: [t for t in tasks if t.STAGE == stage],
                           group=lambda t: root[t.path])
    cfg = load_config("smoke", overrides={"compare": {"folds": 2, "seeds": 2, "scores": []},
                                          "shear": {"directions": ["xy", "yz"]}})
    cfg["quench"]["specimens"] = 4
    rep = Report(str(tmp_path / "report"), "stamp")
    comparison.section(rep, data, cfg)
    line = next(line for line in rep.md if line.startswith("| GAT L2-M20-N6 on study19 (reference) (2 seeds)"))
    # the pooled arrays are ordered by specimen then direction: fold 0 holds specimens 0, 2; fold 1: 1, 3
    order = [0, 2, 1, 3]
    y_all = np.concatenate([y[k].ravel() for k in order])
    graph = np.repeat(np.arange(8), 200)
    per_training = []
    for repeat in (None, 1):
        s = np.concatenate(scores[("gat-study19", repeat)])  # folds (0, 2), (1, 3): specimens 0, 2, 1, 3
        per_training.append(M.from_table(M.graph_table(y_all, s, graph))["ap"])
    assert per_training[0] > per_training[1] + 0.2
    ap_cell = line.split(" | ")[6]
    assert ap_cell.startswith(f"{np.mean(per_training):.3f} [") and f"±{np.std(per_training, ddof=1):.3f}" in ap_cell
    assert "compare.seeds" in "\n".join(rep.md)


def test_the_report_states_what_each_outer_fold_fits_on_and_stops_on():
    """With 10 specimens in 5 outer folds a fold fits on 6 and early-stops on 2; with 5, on 3 and 1 (the
    split's 3:1 inner share of what the fold leaves)."""
    from campaign.comparison import training_sizes
    from campaign.config import load as load_config

    cfg = load_config("small", overrides={"compare": {"folds": 5}})
    assert training_sizes(cfg, 10) == "fitted on 6 specimens and early-stopped on 2"
    assert training_sizes(cfg, 5) == "fitted on 3 specimens and early-stopped on 1"
