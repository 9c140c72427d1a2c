"""The report's section "What predicts the first STZ" (beyond the study).

Rows are the compared models and single scores of ``campaign.stages.compare``, each pooled over its
outer folds, so that every specimen is tested once and every row is scored on the same atoms.
Recall, precision, F1 and MCC are those of the pooled atoms (a score >= 0.5 is a predicted STZ);
ROC-AUC and AP are the mean over graphs of each graph's own (how well a row ranks the atoms of one
sheared glass). Intervals are Student t intervals over specimens, of each specimen's own value and of the
per-specimen paired differences (``kernels.inference``): a row is said to beat the reference (the study's
GAT), or its best single input (the best of its own features tabled as a single score), only where its
paired t test survives Holm's adjustment over every difference of its table. Rows of a subset of specimens (the
local yield stress of
``lys.specimens``) are tabled again beside every row restricted to those specimens.
"""
from __future__ import annotations

import numpy as np

from campaign.config import lys_count, outer_fold_count
from campaign.stages.compare import outer_folds
from campaign.stages.lys import lys_covers_all
from kernels import inference as I
from kernels import metrics as M
from kernels.features import FEATURE_SETS, STUDY, needs_lys
from kernels.lys import gather, periodic_centroid, region_centres, region_holding
from store import layout

THRESHOLDED = ("recall", "precision", "f1", "mcc")  # not shown for a single score: its 0.5 means nothing
KINDS = {
    "gat": "GAT",
    "gat_edges": "direction-aware GAT (bond vectors on the edges)",
    "logistic": "logistic regression",
    "boosted_trees": "boosted trees",
    "random": "random",
}


def _label(row: str, point: str, score: bool) -> str:
    """A row's name for readers: 'gat_edges-study19' -> 'direction-aware GAT (...) L2-M20-N6 on study19'."""
    kind, _, feature_set = row.partition("-")
    if score:
        return f"single score: {row}"
    if kind == "random":
        return "random"
    if kind not in KINDS:  # a PyG convolution of compare.convs
        conv, edges = kind.removesuffix("_edges"), kind.endswith("_edges")
        return f"PyG {conv}{' with bond vectors on the edges' if edges else ''} {point} on {feature_set}"
    return f"{KINDS[kind]}{' ' + point if kind.startswith('gat') else ''} on {feature_set}"


def pooled_rows(data) -> tuple[dict[str, dict], list[str]]:
    """{row: arrays y, specimen, direction, d2min_A2 (N,) of every outer fold, atoms in one order, and
    "scores" (R, N), one row of scores per training (compare.seeds; R = 1 but for GNN rows)} of the rows
    whose folds are all done, the trees' permutation importance per fold under "importance"; and the
    rows not complete yet."""
    folds: dict[str, dict[int, list]] = {}
    for task in data.of("compare-gnn") + data.of("compare-baseline"):
        folds.setdefault(task.model, {}).setdefault(getattr(task, "repeat", None) or 0, []).append(task)
    rows, incomplete = {}, []
    for row, runs in folds.items():
        groups = {r: [data.group(t) for t in tasks] for r, tasks in sorted(runs.items())}
        if any(g is None for gs in groups.values() for g in gs):
            incomplete.append(row)
            continue
        pooled = []
        for gs in groups.values():
            parts = [layout.read(data.root, g.path, ("y", "score", "specimen", "direction", "d2min_A2")) for g in gs]
            arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            order = np.lexsort((arrays["direction"], arrays["specimen"]))  # stable: atoms keep their order
            pooled.append({k: v[order] for k, v in arrays.items()})
        first, tasks = pooled[0], runs[min(runs)]
        if any(not np.array_equal(p["y"], first["y"]) for p in pooled):
            raise ValueError(f"the trainings of comparison row {row} were not scored on the same atoms")
        rows[row] = {k: v for k, v in first.items() if k != "score"}
        rows[row]["scores"] = np.stack([p["score"] for p in pooled])
        rows[row]["importance"] = [dict(g.attrs)["importance_ap"] for g in groups[min(runs)]
                                   if "importance_ap" in g.attrs]
        rows[row]["score_only"] = tasks[0].STAGE == "compare-baseline" and tasks[0].kind.startswith("score:")
        rows[row]["reads_lys"] = needs_lys([tasks[0].feature_set or STUDY])
    return rows, incomplete


def section(rep, data, cfg: dict) -> None:
    """Write the comparison, if the configuration has one (``compare.folds``): the rows tested on every
    specimen, then, when the local yield stress covers only some (``lys.specimens``), its rows beside
    every other row on those specimens, and where its weakest region lies against the first STZ."""
    if not cfg["compare"]["folds"]:
        return
    rep.heading("What predicts the first STZ (beyond the study)")
    rows, incomplete = pooled_rows(data)
    point = "L{}-M{}-N{}".format(*cfg["compare"]["point"])
    if incomplete:
        rep.text(f"Not complete yet: {', '.join(sorted(incomplete))}.")
    if not rows:
        return
    n, folds = cfg["quench"]["specimens"], cfg["compare"]["folds"]
    subset = [row for row, a in rows.items() if a["reads_lys"] and not lys_covers_all(cfg)]
    full = {row: a for row, a in rows.items() if row not in subset}
    if full:
        reference = "gat-study19" if "gat-study19" in full else next(iter(full))
        tables, points = _table(rep, full, reference, cfg, point, f"Outer {folds}-fold cross-validation over all {n} "
                                f"specimens (each tested once; a fitted row's models {training_sizes(cfg, n)}")
        _importance(rep, full, point)
        _picture(rep, data, cfg, full, tables, points, reference, point)
    if subset:
        k, k_folds = lys_count(cfg), outer_fold_count(cfg, lys_count(cfg))
        specimens = np.unique(rows[subset[0]]["specimen"])
        within = {row: _restrict(a, specimens) for row, a in full.items()} | {row: rows[row] for row in subset}
        rep.text(f"The local yield stress was computed for the first {k} specimens only (lys.specimens): the rows that "
                 f"read it are an outer cross-validation of {k_folds} folds over those, tabled below beside every "
                 "other row restricted to the same specimens' graphs. A fitted model that reads it trained on fewer "
                 f"specimens ({training_sizes(cfg, k)}, against {training_sizes(cfg, n)}): its difference "
                 "from a fitted row on every specimen mixes the features with the training set's size; single scores "
                 "are not fitted and compare cleanly.")
        reference = "gat-study19" if "gat-study19" in within else next(iter(within))
        _table(rep, within, reference, cfg, point, f"The first {k} specimens only (each tested once by its row's outer "
               "cross-validation")
        _importance(rep, {row: rows[row] for row in subset}, point)
    weakest_region(rep, data, cfg, next(iter(rows.values())))


def training_sizes(cfg: dict, specimens: int) -> str:
    """What each outer fold over the first ``specimens`` fits its models on and early-stops them on, in words
    (``campaign.stages.compare.outer_folds``): e.g. "fitted on 6 specimens and early-stopped on 2"."""
    folds = outer_folds(cfg, list(range(specimens)))

    def sizes(k: int) -> str:
        return "–".join(str(n) for n in sorted({len(f[k]) for f in folds}))

    return f"fitted on {sizes(1)} specimens and early-stopped on {sizes(2)}"


def _restrict(arrays: dict, specimens: np.ndarray) -> dict:
    """A row's arrays on the atoms of ``specimens`` only (importance dropped: it is of other folds)."""
    keep = np.isin(arrays["specimen"], specimens)
    return {k: v[..., keep] if isinstance(v, np.ndarray) else v for k, v in arrays.items()} | {"importance": []}


def _table(rep, rows: dict, reference: str, cfg: dict, point: str, tested: str) -> tuple[dict, dict]:
    """The table of ``rows`` (all scored on the same atoms) against ``reference``: per row the six
    metrics with 95% t intervals over specimens, and the per-specimen paired differences from the reference
    and from the row's best single input with t intervals; a difference is claimed where its paired t test
    survives Holm's adjustment over the table (``kernels.inference``). Returns each row's graph table and
    point estimates."""
    ref = rows[reference]
    n_directions = len(cfg["shear"]["directions"])
    graph = ref["specimen"].astype(np.int64) * n_directions + ref["direction"]
    for row, arrays in rows.items():
        if not np.array_equal(arrays["y"], ref["y"]) or not np.array_equal(arrays["specimen"], ref["specimen"]):
            raise ValueError(f"comparison rows {row} and {reference} were not scored on the same atoms")
    tables = {row: [M.graph_table(a["y"], score, graph) for score in a["scores"]] for row, a in rows.items()}
    groups = np.unique(graph) // n_directions
    n = len(np.unique(groups))
    values = {row: _seed_mean([M.by_group(t, groups) for t in ts]) for row, ts in tables.items()}  # per specimen
    per_seed = {row: [M.from_table(t) for t in ts] for row, ts in tables.items()}  # every graph, per training
    points = {row: _seed_mean(p) for row, p in per_seed.items()}  # the point estimates
    seeds = {row: len(ts) for row, ts in tables.items()}

    shown, ranked = ("mcc", "auc", "ap"), ("auc", "ap")
    tests = {}  # (row, other, metric): (mean paired difference, t interval, p): the table's family

    def versus(row: str, other: str, m: str) -> tuple:
        d = values[row][m] - values[other][m]
        tests[(row, other, m)] = (float(d.mean()), I.t_interval(d), I.t_test(d))
        return row, other, m

    cells_of = {}
    for row in tables:
        score_row = rows[row]["score_only"]
        vs_ref = [None if row == reference or (score_row and m in THRESHOLDED) else versus(row, reference, m)
                  for m in shown]
        inputs = _single_inputs(row, rows)
        vs_input = [versus(row, max(inputs, key=lambda s: M.counted(m, points[s][m])), m) if inputs else None
                    for m in ranked]
        cells_of[row] = (vs_ref, vs_input)
    adjusted = I.holm({k: p for k, (_, _, p) in tests.items()})

    def cell(key, suffix: bool = False) -> str:
        if key is None:
            return "–"
        mean, (lo, hi), _ = tests[key]
        claim = "*" if adjusted[key] < 0.05 else ""
        return f"{mean:+.3f} [{lo:+.3f}, {hi:+.3f}]{claim}" + (f" vs {key[1]}" if suffix else "")

    header = ["row", "Recall", "Precision", "F1", "MCC", "ROC-AUC (per graph)", "AP (per graph)",
              *(f"Δ{m.upper()} vs reference" for m in shown), *(f"Δ{m.upper()} vs best single input" for m in ranked)]
    body, told = [], {"better": [], "worse": [], "beats": [], "trails": []}
    for row in tables:
        score_row = rows[row]["score_only"]
        label = _label(row, point, score_row)
        cells = [label + (" (reference)" if row == reference else "")]
        if seeds[row] > 1:
            cells[0] += f" ({seeds[row]} seeds)"
        for m in M.METRICS:
            lo, hi = I.t_interval(values[row][m])
            spread = f" ±{np.std([p[m] for p in per_seed[row]], ddof=1):.3f}" if seeds[row] > 1 else ""
            cells.append("–" if score_row and m in THRESHOLDED
                         else f"{points[row][m]:.3f} [{lo:.3f}, {hi:.3f}]{spread}")
        vs_ref, vs_input = cells_of[row]
        cells += [cell(k) for k in vs_ref] + [cell(k, suffix=True) for k in vs_input]
        for key, (better, worse, tail) in [(k, ("better", "worse", "")) for k in vs_ref] + \
                                          [(k, ("beats", "trails", "vs ")) for k in vs_input]:
            if key is not None and adjusted[key] < 0.05:
                side = better if tests[key][0] > 0 else worse
                told[side].append(f"{label} ({key[2].upper()}" + (f", vs {key[1]})" if tail else ")"))
        body.append(cells)
    rep.table(header, body, f"{tested}, {len(np.unique(graph))} graphs with an event) at D²thres = "
              f"{cfg['train']['threshold_A2']:g} Å²; n = {n} specimens. Intervals: 95% Student t intervals of the "
              "mean over the n specimens of each specimen's own value (metrics) or of the per-specimen paired "
              "difference (Δ, whose value is that mean; the metrics' values pool every graph). * : the paired t "
              f"test's p-value, Holm-adjusted over the {len(tests)} differences of this table, is below 0.05. "
              "ROC-AUC and AP: mean over graphs of each graph's own; the other metrics pool the atoms. "
              + ("A row of several seeds (compare.seeds) trained once per seed: its values are the means over its "
                 "trainings, each specimen's metrics averaged over them before the intervals (which so take in the "
                 "training noise), ± the standard deviation over trainings of the pooled value. "
                 if max(seeds.values()) > 1 else "A GNN row trained once (compare.seeds 1): its training noise is "
                 "not in its intervals. ") +
              "Best single input: of the model's own features tabled as single scores (compare.scores), the best "
              "in that metric on these same graphs (chosen on them: 'better' is conservative, 'worse' is not)"
              + (". With 5 specimens or fewer every interval is exploratory" if n <= 5 else ""))
    rep.text("Differences claimed (Holm-adjusted p < 0.05 over the table): better than the reference: "
             f"{'; '.join(told['better']) or 'none'}; worse: {'; '.join(told['worse']) or 'none'}. "
             f"Better than their best single input: {'; '.join(told['beats']) or 'none'}; worse than it: "
             f"{'; '.join(told['trails']) or 'none'}. Nothing else is told apart by these {n} specimens.")
    return tables, points


def _seed_mean(values: list[dict]) -> dict:
    """The mean over trainings of per-metric values (arrays or numbers): {metric: mean}."""
    return {m: np.mean([v[m] for v in values], axis=0) for m in values[0]}


def _single_inputs(row: str, rows: dict) -> list[str]:
    """The single-score rows among ``rows`` whose column is one of model ``row``'s features (none for a
    score row or random)."""
    kind, _, feature_set = row.partition("-")
    if rows[row]["score_only"] or kind == "random" or feature_set not in FEATURE_SETS:
        return []
    return [s for s in rows if rows[s]["score_only"] and s.removesuffix("_negated") in FEATURE_SETS[feature_set]]


def _importance(rep, rows: dict, point: str) -> None:
    """Permutation importance of the trees' features (drop of AP on the held-out fold when shuffled)."""
    for row, arrays in rows.items():
        folds = arrays["importance"]
        if not folds:
            continue
        names = list(folds[0])
        mean = {n: float(np.mean([f[n] for f in folds])) for n in names}
        spread = {n: float(np.std([f[n] for f in folds])) for n in names}
        top = sorted(names, key=lambda n: -mean[n])[:10]
        rep.table(["feature", "AP drop when shuffled", "sd over folds"],
                  [[n, f"{mean[n]:+.4f}", f"{spread[n]:.4f}"] for n in top],
                  f"Permutation importance, {_label(row, point, False)}: the 10 features whose shuffling lowers the "
                  f"held-out AP most, mean over {len(folds)} outer folds (scikit-learn permutation_importance)")


SLAB_A, WINDOW_A = 2.5, 12.0  # half-width of the pictured slab, and of its window in the plane (Å)


def _picture(rep, data, cfg: dict, rows: dict, tables: dict, points: dict, reference: str, point: str) -> None:
    """The first STZ of one graph and where rows put it: a slab through the STZ, in the plane of shear.

    The graph is the first of the lowest specimen (chosen by no score). Positions are rotated into the
    shear frame (the shear is +yz there) and centred on the STZ's centroid; atoms within ``SLAB_A``
    of it along x' are drawn in the (y', z') plane, coloured by each row's score rank within the
    graph, the STZ's atoms ringed: the reference row beside the row of best mean AP."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kernels.frames import shear_rotation

    ref = rows[reference]
    k, d = int(ref["specimen"][0]), int(ref["direction"][0])
    quench = next((t for t in data.of("quench") if t.specimen == k), None)
    if quench is None or data.group(quench) is None:
        return
    q = layout.read(data.root, data.group(quench).path, ("positions", "cell"))
    sel = (ref["specimen"] == k) & (ref["direction"] == d)
    stz = ref["y"][sel].astype(bool)
    if not stz.any():
        return
    direction = cfg["shear"]["directions"][d]
    frac = q["positions"] @ np.linalg.inv(q["cell"])
    delta = frac - periodic_centroid(frac[stz])  # from the STZ's centroid
    delta -= np.round(delta)
    r = (delta @ q["cell"]) @ shear_rotation(direction).T  # Å, shear frame
    slab = (np.abs(r[:, 0]) < SLAB_A) & (np.abs(r[:, 1:]) < WINDOW_A).all(1)
    best = max((row for row in rows if row != reference), key=lambda row: points[row]["ap"], default=None)
    shown = [reference] + ([best] if best else [])
    fig, axes = plt.subplots(1, len(shown), figsize=(5.2 * len(shown), 4.8), squeeze=False)
    for ax, row in zip(axes[0], shown):
        score = rows[row]["scores"][0][sel]  # the first training's
        rank = np.argsort(np.argsort(score)) / max(len(score) - 1, 1)  # 0 lowest .. 1 highest in this graph
        drawn = ax.scatter(r[slab, 1], r[slab, 2], c=rank[slab], cmap="viridis", s=28, vmin=0, vmax=1)
        ring = slab & stz
        ax.scatter(r[ring, 1], r[ring, 2], facecolors="none", edgecolors="red", s=90, linewidths=1.4,
                   label="first STZ (labels)")
        ap_here = M.from_table(tables[row][0], np.array([0]))["ap"]  # graph 0 is the pictured one
        ax.set(xlabel="y' (Å, the shear's displacement)", ylabel="z' (Å, its gradient)" if ax is axes[0][0] else "",
               aspect="equal", title=f"{_label(row, point, rows[row]['score_only'])}\nAP {ap_here:.3f} on this graph")
        ax.legend(loc="upper right", fontsize=7)
    fig.colorbar(drawn, ax=axes[0].tolist(), label="score rank in the graph (0 lowest, 1 highest)")
    rep.figure(fig, "compare_stz", f"The first STZ of specimen {k} sheared {direction} at D²thres = "
               f"{cfg['train']['threshold_A2']:g} Å² (the first graph, chosen by no score): atoms within {SLAB_A} Å "
               f"of the STZ's centroid along x' (normal to the plane of shear), {WINDOW_A} Å either way in that "
               "plane, coloured by the rank of each row's score; red rings: the STZ's atoms. Left: the reference; "
               "right: the row of best mean AP")


def weakest_region(rep, data, cfg: dict, arrays: dict) -> None:
    """The direct check of the local yield stress: in each graph that has it and an event, the rank
    among the graph's regions by Δτ_c (1: the lowest, the weakest; ties share their mean rank, and
    regions that did not yield tie as the strongest) of the region holding the first event's most
    displaced atom (largest D²min; ``arrays``: any row's pooled y, d2min_A2, specimen, direction);
    against chance, a uniform rank, with 95% t intervals over specimens (the directions of one specimen
    share its glass, so graphs are not independent)."""
    from scipy.stats import rankdata

    batches: dict = {}
    for task in data.of("lys"):
        group = data.group(task)
        if group is None:
            return  # not complete yet
        batch = layout.read(data.root, group.path, ("region", "dtau_c_GPa"))
        batches.setdefault((task.specimen, task.direction, tuple(task.shape)), []).append(
            (batch["region"], batch["dtau_c_GPa"]))
    if not batches:
        return
    shape = next(iter(batches))[2]
    size = int(np.prod(shape))
    if size < 2:
        rep.text("One region per graph (lys.regions_per_axis 1): no region to rank against another.")
        return
    quenches = {t.specimen: t for t in data.of("quench")}
    directions, ranks, specimens, glasses, outside = cfg["shear"]["directions"], [], [], {}, 0
    for (k, direction, _), parts in sorted(batches.items()):
        values = gather(size, parts)
        sel = (arrays["specimen"] == k) & (arrays["direction"] == directions.index(direction))
        if not sel.any() or not np.isfinite(values).any():
            continue  # no event at this threshold, or no region yielded: nothing to rank
        if k not in glasses:  # read once for the specimen's shears
            glasses[k] = layout.read(data.root, data.group(quenches[k]).path, ("positions", "cell", "origin"))
            glasses[k]["centres"] = region_centres(glasses[k]["cell"], glasses[k]["origin"], shape)
        q = glasses[k]
        core = np.argmax(np.nan_to_num(arrays["d2min_A2"][sel], nan=-np.inf))  # the first event's most displaced atom
        held = region_holding(q["positions"][core], q["centres"], q["cell"], cfg["lys"]["radius_A"])
        if held is None:  # in a grid cell's corner, outside every region's sphere: no region's Δτ_c is its
            outside += 1
            continue
        ranks.append(rankdata(np.where(np.isfinite(values), values, np.inf), method="average")[held])
        specimens.append(k)
    if not ranks:
        if outside:
            rep.text(f"Each of the {outside} first events lies outside every region's sphere: no direct check.")
        return
    ranks, specimens = np.array(ranks), np.array(specimens)
    own = [ranks[specimens == k] for k in np.unique(specimens)]  # each specimen's graphs
    (hit_lo, hit_hi) = I.t_interval([np.mean(r == 1) for r in own])
    (mean_lo, mean_hi) = I.t_interval([np.mean(r) for r in own])
    counts = [int(np.sum((ranks >= r - 0.5) & (ranks < r + 0.5))) for r in range(1, size + 1)]
    rep.table(["rank of the first event's region (1: lowest Δτ_c)"] + [str(r) for r in range(1, size + 1)],
              [["graphs"] + [str(c) for c in counts]],
              f"Where the glass first yields against its weakest region: {len(ranks)} graphs with a local yield stress "
              f"and an event at D²thres = {cfg['train']['threshold_A2']:g} Å², each of {size} regions of "
              f"{cfg['lys']['radius_A']:g} Å; the region is the one whose sphere holds the event's most displaced atom "
              f"({outside} events outside every sphere left out); tied ranks (regions that did not yield) shared, "
              "counted at the nearest whole rank")
    rep.text(f"The first event lies in the region of lowest Δτ_c in {int(np.sum(ranks == 1))} of {len(ranks)} graphs: "
             f"a share of {np.mean(ranks == 1):.2f} [{hit_lo:.2f}, {hit_hi:.2f}] against {1 / size:.2f} by chance; its "
             f"region's mean rank is {ranks.mean():.2f} [{mean_lo:.2f}, {mean_hi:.2f}] of {size} (chance "
             f"{(size + 1) / 2:.1f}); 95% t intervals over the {len(own)} specimens (each specimen's share and mean "
             "rank over its graphs: the directions of one glass are not independent).")
