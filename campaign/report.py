"""``python -m campaign report``: every table and figure of the study, from the store alone.

Reads the data of the tasks of the configuration's plan, each through its done record
(which names its group), never a path of its own making: a store that holds several
configurations gives each its own report. Writes ``<store>.report/report.html`` (figures
embedded) and ``report.md`` beside it with the PNGs; every figure and table carries the
preset, the config hash and the code versions of the campaign that made the data.
"""
from __future__ import annotations

import base64
import datetime
import html
import io
import math
import os
import sys

import numpy as np

from campaign import comparison, onset
from campaign.config import split_sizes
from campaign.plan import plan as make_plan
from campaign.version import code_version
from kernels.features import STUDY
from kernels.inference import t_interval
from kernels.metrics import METRICS, by_group, counted, from_table
from store import layout, records

NAMES = {"recall": "Recall", "precision": "Precision", "f1": "F1", "mcc": "MCC", "auc": "ROC-AUC", "ap": "AP"}


def report_dir(store: str) -> str:
    return layout.beside(store, ".report")


def _fmt(v, digits=4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    return f"{v:.{digits}f}"


def stamp(fig, text: str):
    """The provenance line, below everything the figure draws (tick and axis labels included)."""
    fig.canvas.draw()
    to_figure = fig.transFigure.inverted()
    bottom = min([0.0] + [ax.get_tightbbox().transformed(to_figure).y0 for ax in fig.axes])
    return fig.text(0.01, bottom - 0.01, text, fontsize=6, color="0.4", ha="left", va="top")


class Report:
    """Collects Markdown and HTML sections and figures, then writes both files."""

    def __init__(self, out_dir: str, stamp: str):
        self.out_dir, self.stamp = out_dir, stamp
        self.md: list[str] = []
        self.html: list[str] = []
        os.makedirs(out_dir, exist_ok=True)

    def heading(self, text: str, level: int = 2) -> None:
        self.md.append(f"{'#' * level} {text}\n")
        self.html.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def text(self, text: str) -> None:
        self.md.append(text + "\n")
        self.html.append(f"<p>{html.escape(text)}</p>")

    def table(self, header: list[str], rows: list[list[str]], caption: str) -> None:
        self.md.append(f"*{caption}* ({self.stamp})\n")
        self.md.append("| " + " | ".join(header) + " |")
        self.md.append("|" + "---|" * len(header))
        self.md.extend("| " + " | ".join(r) + " |" for r in rows)
        self.md.append("")
        cells = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
        self.html.append(f"<table><caption>{html.escape(caption)} <small>({html.escape(self.stamp)})</small>"
                         f"</caption><tr>{cells}</tr>{body}</table>")

    def figure(self, fig, name: str, caption: str) -> None:
        stamp(fig, self.stamp)
        path = os.path.join(self.out_dir, f"{name}.png")
        fig.savefig(path, dpi=120, bbox_inches="tight")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
        import matplotlib.pyplot as plt
        plt.close(fig)
        self.md.append(f"![{caption}]({name}.png)\n\n*{caption}*\n")
        data = base64.b64encode(buf.getvalue()).decode()
        self.html.append(f"<figure><img src='data:image/png;base64,{data}'><figcaption>{html.escape(caption)}"
                         f"</figcaption></figure>")

    def write(self, title: str) -> tuple[str, str]:
        md_path = os.path.join(self.out_dir, "report.md")
        html_path = os.path.join(self.out_dir, "report.html")
        with open(md_path, "w") as f:
            f.write(f"# {title}\n\n" + "\n".join(self.md))
        style = ("body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;"
                 "margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
                 "caption{text-align:left;font-weight:bold}img{max-width:100%}")
        with open(html_path, "w") as f:
            f.write(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                    f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>{''.join(self.html)}"
                    "</body></html>")
        return html_path, md_path


class Data:
    """The done tasks of one plan, read through their records."""

    def __init__(self, store: str, tasks: list):
        self.root = layout.open_root(store)
        self.tasks = tasks
        self.records = {k: r for k, r in records.read_all_keys(store, [t.key for t in tasks]).items()
                        if r["status"] == records.DONE}

    def of(self, stage: str) -> list:
        return [t for t in self.tasks if t.STAGE == stage]

    def group(self, task):
        """The task's data group, or None if it is not done."""
        rec = self.records.get(task.key)
        return None if rec is None else layout.group(self.root, rec["path"])

    def evaluation(self, task) -> dict | None:
        g = self.group(task)
        if g is None:
            return None
        arrays = layout.read(self.root, g.path, ("score", "y", "d2min_A2", "specimen"))
        return {**arrays, **dict(g.attrs)}


def build(cfg: dict, out=None) -> str:
    """Write the report of the campaign in ``cfg['store']``; returns the HTML path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    from campaign.config import science_hash

    out = out or sys.stdout
    store = os.path.abspath(cfg["store"])
    tasks = make_plan(cfg)
    data = Data(store, tasks)
    versions = sorted({r["code_version"] for r in data.records.values()})
    stamp = (f"preset {cfg['preset']} · config {science_hash(cfg)} · data code {', '.join(versions) or '-'} · "
             f"report code {code_version()}")
    rep = Report(report_dir(store), stamp)
    rep.text(f"Store {store}. Generated {datetime.datetime.now().isoformat(timespec='seconds')}. {stamp}. "
             f"{len(data.records)} of {len(tasks)} tasks of this configuration are done.")

    _dataset_section(rep, data, cfg, plt)
    _cv_section(rep, data)
    finals = {t.name: data.evaluation(t) for t in data.of("final")}
    baselines = {t.name: data.evaluation(t) for t in data.of("baseline")}
    for t in data.of("baseline"):  # what the report selects them by, from the task itself
        if baselines[t.name] is not None:
            baselines[t.name].update(threshold_A2=t.threshold_A2, feature_set=t.feature_set or STUDY)
    threshold = cfg["train"]["threshold_A2"]
    _table1(rep, finals, baselines, threshold, split_sizes(cfg)[2])
    _strategies(rep, finals, cfg)
    _curves(rep, finals, baselines, threshold, plt, roc_curve, precision_recall_curve)
    _d2min_figure(rep, finals, plt)
    _sweep(rep, finals, baselines, cfg, plt)
    comparison.section(rep, data, cfg)
    onset.section(rep, data, cfg, plt)
    html_path, md_path = rep.write("Predicting the first shear transformation zone: the study's report")
    print(f"report: {html_path}\n        {md_path}", file=out)
    return html_path


def _dataset_section(rep: Report, data: Data, cfg: dict, plt) -> None:
    rep.heading("Data")
    thresholds = cfg["labels"]["thresholds_A2"]
    positives = np.zeros(len(thresholds))
    atoms = np.zeros(len(thresholds))  # of the graphs with an event at each threshold
    strains = [[] for _ in thresholds]
    sizes = [[] for _ in thresholds]
    graphs = 0
    for task in data.of("labels"):
        g = data.group(task)
        if g is None:
            continue
        lab = layout.read(data.root, g.path, ("first_strain", "mask"))
        graphs += 1
        for t in range(len(thresholds)):
            if not math.isnan(lab["first_strain"][t]):
                atoms[t] += lab["mask"].shape[1]
                positives[t] += lab["mask"][t].sum()
                strains[t].append(lab["first_strain"][t])
                sizes[t].append(int(lab["mask"][t].sum()))
    rep.text(f"{cfg['quench']['specimens']} specimens of {cfg['system']['n_atoms']:,} atoms (Cu64Zr36, "
             f"{cfg['system']['potential']}), quenched at {cfg['quench']['rate_K_per_s']:.0e} K/s, AQS shear in "
             f"{len(cfg['shear']['directions'])} directions in steps of {cfg['shear']['strain_step']:g}: "
             f"{graphs} graphs.")
    rows = []
    for t, thr in enumerate(thresholds):
        ratio = positives[t] / max(atoms[t] - positives[t], 1)
        rows.append([f"{thr:g}", _fmt(int(positives[t])), f"1:{1 / ratio:,.0f}" if ratio > 0 else "–",
                     f"{len(strains[t])}/{graphs}", _fmt(graphs - len(strains[t])),
                     _fmt(float(np.mean(strains[t])) if strains[t] else None),
                     _fmt(float(np.median(sizes[t])) if sizes[t] else None, 1)])
    rep.table(["D²thres (Å²)", "STZ atoms", "class ratio (STZ:normal)", "shears with an event",
               "left out (no event)", "mean first-event strain", "median event size (atoms)"], rows,
              "Labels of the first shear transformation per threshold. A shear that ended without an event "
              "at a threshold has no first STZ there: its graph is left out of that threshold's training "
              "and evaluation, and out of its class ratio")


def _cv_section(rep: Report, data: Data) -> None:
    rep.heading("Grid search (cross-validation)")
    rows = []
    points: dict[str, list] = {}
    for t in data.of("train"):
        g = data.group(t)
        if g is not None:
            points.setdefault(t.point, []).append(g.attrs["metrics"])
    for point, folds in points.items():
        vals = {m: [counted(m, f[m]) for f in folds] for m in METRICS}
        undefined = sum(f[m] is None for f in folds for m in METRICS)
        rows.append([point, str(len(folds)), str(undefined)]
                    + [f"{np.mean(vals[m]):.4f} ± {np.std(vals[m]):.4f}" for m in METRICS])
    if rows:
        rep.table(["point", "folds", "undefined values"] + [NAMES[m] for m in METRICS], rows,
                  "Mean ± standard deviation over the held-out folds (specimen-grouped); an undefined fold "
                  "value (e.g. precision of a fold with no predicted STZ) counts as 0, as in model selection")
    else:
        rep.text("No cross-validation results in the store yet.")


def specimen_intervals(ev: dict) -> tuple[dict[str, tuple[float, float]], int, int]:
    """95% Student t intervals of an evaluation's six metrics over its test specimens (the unit of
    replication; kernels.inference), from the per-graph metrics it stored: each specimen's metrics from
    its graphs (kernels.metrics.by_group, an undefined value counted as 0). Returns ({metric: (lo, hi)},
    number of specimens, number of undefined specimen values). Fewer than two specimens: no interval."""
    graphs = ev.get("per_graph") or []
    table = {k: np.array([np.nan if g.get(k) is None else g[k] for g in graphs], dtype=float)
             for k in ("tp", "fp", "fn", "tn", "auc", "ap")}
    specimens = np.array([g["specimen"] for g in graphs])
    if len(np.unique(specimens)) < 2:
        return {}, len(np.unique(specimens)), 0
    per_specimen = by_group(table, specimens)
    undefined = sum(int(np.isnan(from_table(table, np.flatnonzero(specimens == k))[m]))
                    for k in np.unique(specimens) for m in METRICS)
    return {m: t_interval(v) for m, v in per_specimen.items()}, len(np.unique(specimens)), undefined


def _metric_row(ev: dict) -> list[str]:
    """The six metrics pooled over the test atoms, each with its t interval over specimens."""
    m, (ci, _, _) = ev["metrics"], specimen_intervals(ev)
    cells = []
    for k in METRICS:
        lo_hi = ci.get(k)
        cells.append(_fmt(m[k]) + (f" [{_fmt(lo_hi[0], 3)}, {_fmt(lo_hi[1], 3)}]" if lo_hi else ""))
    return cells


def _baselines_at(baselines: dict, threshold: float, feature_set: str | None = None) -> list[tuple[str, dict]]:
    """(label, evaluation) of the done baselines at ``threshold`` (of ``feature_set``, or of every set)."""
    return [(ev["kind"] + ("" if ev["feature_set"] == STUDY else f" on {ev['feature_set']}"), ev)
            for _, ev in sorted(baselines.items()) if ev is not None and ev["threshold_A2"] == threshold
            and feature_set in (None, ev["feature_set"])]


def _table1(rep: Report, finals: dict, baselines: dict, threshold: float, n_test: int) -> None:
    rep.heading("Table 1: models optimised for each metric, evaluated on the test specimens")
    rows = []
    for m in METRICS:
        ev = finals.get(f"opt-{m}")
        if ev is None:
            continue
        c = ev["metrics"]
        rows.append([f"{NAMES[m]} ({ev['point']})"] + _metric_row(ev) +
                    [f"{c['tp']}/{c['fp']}/{c['fn']}/{c['tn']}", f"1:{1 / c['class_ratio']:,.0f}"
                     if c.get("class_ratio") else "–"])
    for label, ev in _baselines_at(baselines, threshold):
        c = ev["metrics"]
        rows.append([f"baseline: {label}"] + _metric_row(ev) + [f"{c['tp']}/{c['fp']}/{c['fn']}/{c['tn']}", "same"])
    rep.table(["optimised for (L, M, N)"] + [NAMES[m] for m in METRICS] + ["TP/FP/FN/TN", "class ratio"], rows,
              f"Test metrics at D²thres = {threshold:g} Å², pooled over the test atoms as in the study; in "
              f"brackets the 95% Student t interval of the per-specimen mean over the n = {n_test} test "
              "specimens (the unit of replication; none with one): an interval about a different mean than "
              "the pooled value, and wide at such n, as it must be. A specimen whose metric is undefined "
              f"counts as 0{_undefined_note(finals, baselines)}. Baselines are fitted on "
              "the same training specimens as the GAT (the boosted trees early-stop on the validation ones)")
    rep.text("MCC = (TP·TN − FP·FN)/√((TP+FP)(TP+FN)(TN+FP)(TN+FN)); the study prints the numerator as "
             "TP·FN − FP·TN, a sign slip. Predicted STZ: softmax probability ≥ 0.5.")


def _undefined_note(finals: dict, baselines: dict) -> str:
    """Which models had undefined per-specimen values, and how many, for Table 1's caption."""
    notes = [f"{name}: {n}" for name, ev in sorted({**finals, **baselines}.items()) if ev
             for n in [specimen_intervals(ev)[2]] if n]
    return f" (undefined specimen values: {'; '.join(notes)})" if notes else " (none was)"


def _strategies(rep: Report, finals: dict, cfg: dict) -> None:
    names = [f"opt-{cfg['report']['sweep_metric']}"] + [f"strategy-{s}" for s in cfg["report"]["strategies"]]
    rows = [[n.replace("opt-", "weighted CE, opt-") , finals[n]["point"]] + _metric_row(finals[n])
            for n in names if finals.get(n)]
    if rows:
        rep.heading("Imbalance strategies (beyond the study)")
        rep.table(["strategy", "point"] + [NAMES[m] for m in METRICS], rows,
                  "Same split and grid point, different ways of meeting the class imbalance")


def _curves(rep, finals, baselines, threshold, plt, roc_curve, pr_curve) -> None:
    ev = finals.get("opt-auc")
    if ev is None:
        return
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.2))
    curves = [("GAT " + ev["point"], ev)] + _baselines_at(baselines, threshold)
    for label, e in curves:
        if 0 < e["y"].sum() < len(e["y"]):
            fpr, tpr, _ = roc_curve(e["y"], e["score"])
            a.plot(fpr, tpr, label=f"{label} (AUC {e['metrics']['auc']:.3f})")
            p, r, _ = pr_curve(e["y"], e["score"])
            b.plot(r, p, label=f"{label} (AP {e['metrics']['ap']:.3f})")
    a.plot([0, 1], [0, 1], ":", color="0.5")
    a.set(xlabel="false positive rate (dimensionless)", ylabel="true positive rate (dimensionless)",
          title="ROC, test specimens")
    b.set(xlabel="recall (dimensionless)", ylabel="precision (dimensionless)", title="precision-recall")
    a.legend(fontsize=7)
    b.legend(fontsize=7)
    rep.figure(fig, "fig2_roc_pr", f"Fig. 2A and beside it the PR curve: model optimised for AUC, D²thres = "
                                   f"{threshold:g} Å²")


def _d2min_figure(rep, finals, plt) -> None:
    ev = finals.get("opt-auc")
    if ev is None:
        return
    d2 = ev["d2min_A2"]
    ok = np.isfinite(d2) & (d2 > 0)
    if ok.sum() < 2:
        return
    pred = ev["score"][ok] >= 0.5
    edges = np.logspace(np.log10(d2[ok].min()), np.log10(d2[ok].max()), 25)
    which = np.clip(np.digitize(d2[ok], edges) - 1, 0, len(edges) - 2)
    counts = np.bincount(which, minlength=len(edges) - 1)
    frac = np.bincount(which, weights=pred, minlength=len(edges) - 1) / np.maximum(counts, 1)
    centres = np.sqrt(edges[1:] * edges[:-1])
    fig, (a, b) = plt.subplots(2, 1, figsize=(6.5, 6), sharex=True)
    a.semilogx(centres[counts > 0], frac[counts > 0], "o-")
    a.set(ylabel="fraction predicted STZ (dimensionless)", title="Fig. 3A: predicted STZ per D²min bin")
    b.bar(edges[:-1], counts, width=np.diff(edges), align="edge", log=True)
    b.set(xlabel="D²min at the first event (Å²)", ylabel="atoms per bin", title="Fig. 3B: D²min histogram")
    rep.figure(fig, "fig3_d2min", "Fig. 3A/B: model optimised for AUC on the test specimens")


def _sweep(rep, finals, baselines, cfg, plt) -> None:
    sweep = cfg["report"]["sweep_metric"]
    thresholds = cfg["labels"]["thresholds_A2"]
    chosen = cfg["train"]["threshold_A2"]
    series = []
    for t in thresholds:
        ev = finals.get(f"opt-{sweep}" if t == chosen else f"sweep-{sweep}-t{t:g}")
        if ev is not None:
            series.append((t, ev))
    if len(series) < 2:
        return
    ts = [t for t, _ in series]
    fig, axes = plt.subplots(2, 4, figsize=(14, 6.5))
    axes = axes.ravel()
    ratio = [e["metrics"]["class_ratio"] for _, e in series]
    axes[0].semilogy(ts, ratio, "o-")
    axes[0].set(xlabel="D²thres (Å²)", ylabel="class ratio STZ:normal (test specimens)", title="(A) class ratio")
    at = {t: dict(_baselines_at(baselines, t, STUDY)) for t in ts}  # {threshold: {kind: evaluation}}
    kinds = sorted({kind for by_kind in at.values() for kind in by_kind})
    for ax, m, letter in zip(axes[1:], ["recall", "precision", "auc", "ap", "f1", "mcc"], "BCDEFG"):
        ax.plot(ts, [e["metrics"][m] if e["metrics"][m] is not None else np.nan for _, e in series], "o-",
                label=f"GAT (opt-{sweep})")
        for kind in kinds:
            pts = [(t, at[t].get(kind)) for t in ts]
            ax.plot([t for t, b in pts if b], [b["metrics"][m] if b["metrics"][m] is not None else np.nan
                                               for t, b in pts if b], ".--", label=kind)
        ax.set(xlabel="D²thres (Å²)", ylabel=f"{NAMES[m]} (dimensionless)", title=f"({letter}) {NAMES[m]}")
    axes[1].legend(fontsize=7)
    axes[-1].axis("off")
    fig.tight_layout()
    rep.figure(fig, "fig4_threshold_sweep", f"Fig. 4: the configuration optimised for {NAMES[sweep]} retrained at "
                                            "each threshold, labels from the same AQS runs")
    rows = [[f"{t:g}"] + [_fmt(e["metrics"]["class_ratio"], 5)] + _metric_row(e) for t, e in series]
    rep.table(["D²thres (Å²)", "class ratio"] + [NAMES[m] for m in METRICS], rows, "Threshold sweep (Fig. 4)")
