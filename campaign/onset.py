"""The report's section "When the first STZ fires" (beyond the study): the strain at which the mode
softening predicts the first instability (``kernels.softening``: γ* of the subspace crossing, γ_min of the
lowest per-mode crossing; ``kernels.continuation``: γ_path, the path followed) against the strain of the
first event the AQS shear found at the training threshold (the labels' ``first_strain``), graph by graph.
"""
from __future__ import annotations

import numpy as np

from kernels import inference as I
from store import layout

PREDICTIONS = {"gamma_star": "γ* (subspace crossing, first order)", "gamma_min": "γ_min (lowest per-mode crossing)",
               "gamma_path": "γ_path (the path followed, softening.continuation_steps)"}


def pairs(data, cfg: dict) -> dict[str, np.ndarray]:
    """{"specimen", "first_strain", and each prediction of PREDICTIONS the softening tasks hold} (G,) over the
    graphs whose softening and labels are done and that have an event at ``train.threshold_A2`` (predictions
    of ∞, no crossing, kept)."""
    row = cfg["labels"]["thresholds_A2"].index(cfg["train"]["threshold_A2"])
    names = [n for n in PREDICTIONS if n != "gamma_path" or cfg["softening"]["continuation_steps"]]
    predicted = {}
    for task in data.of("softening"):
        g = data.group(task)
        if g is not None:
            arrays = layout.read(data.root, g.path, names)
            for k, d in enumerate(task.directions):
                predicted[(task.specimen, d)] = [arrays[n][k] for n in names]
    out: dict[str, list] = {name: [] for name in ("specimen", "first_strain", *names)}
    for task in data.of("labels"):
        g = data.group(task)
        if g is None or (task.specimen, task.direction) not in predicted:
            continue
        strain = layout.read(data.root, g.path, ("first_strain",))["first_strain"][row]
        if np.isfinite(strain):
            for name, value in zip(out, (task.specimen, strain, *predicted[(task.specimen, task.direction)])):
                out[name].append(value)
    return {name: np.array(values) for name, values in out.items()}


def section(rep, data, cfg: dict, plt) -> None:
    """γ* and γ_min against the measured first-event strain: Spearman's rank correlation over graphs (with a
    t interval over specimens of each specimen's own), the median ratio, the share within a factor of 2,
    and a log-log figure. Nothing when the configuration has no softening stage."""
    from scipy.stats import spearmanr

    if not data.of("softening"):
        return
    p = pairs(data, cfg)
    rep.heading("When the first STZ fires: the mode softening's predicted strain (beyond the study)")
    if len(p["first_strain"]) < 3:
        rep.text("Fewer than three graphs with both a prediction and an event yet.")
        return
    specimens = np.unique(p["specimen"])
    rows = []
    for name, label in ((n, PREDICTIONS[n]) for n in PREDICTIONS if n in p):
        predicted, measured = p[name], p["first_strain"]
        rho = spearmanr(predicted, measured).statistic  # ∞ ranks last, as it should
        own = I.spearman_within(predicted, measured, p["specimen"])
        lo, hi = I.t_interval(own)
        ratio = predicted / measured
        rows.append([label, f"{rho:+.2f}", f"{np.nanmean(own):+.2f} [{lo:+.2f}, {hi:+.2f}] (n = {len(own)})"
                     if len(own) >= 2 else "–", f"{np.median(ratio):.2f}",
                     f"{np.mean((ratio >= 0.5) & (ratio <= 2)):.2f}", str(int(np.sum(~np.isfinite(predicted))))])
    rep.table(["prediction", "Spearman over graphs", "Spearman within a specimen, mean [95% t interval]",
               "median predicted / measured", "share within a factor of 2", "no crossing predicted"], rows,
              f"{len(p['first_strain'])} graphs of {len(specimens)} specimens with an event at D²thres = "
              f"{cfg['train']['threshold_A2']:g} Å² (strain: dimensionless). The graphs of one specimen share its "
              "glass: the correlation over graphs is indicative; within a specimen it ranks the directions of one "
              "glass, the question a user asks (which way will it yield first)")
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    finite = np.isfinite(p["gamma_star"])
    ax.loglog(p["first_strain"][finite], p["gamma_star"][finite], "o", ms=4, label="γ*")
    ax.loglog(p["first_strain"], p["gamma_min"], "x", ms=4, label="γ_min")
    if "gamma_path" in p:
        ax.loglog(p["first_strain"], p["gamma_path"], "s", ms=3, mfc="none", label="γ_path")
    shown = np.concatenate([p[n] for n in ("first_strain", *PREDICTIONS) if n in p])
    shown = shown[np.isfinite(shown) & (shown > 0)]
    span = [shown.min() / 1.5, shown.max() * 1.5]
    ax.plot(span, span, "k--", lw=0.8, label="predicted = measured")
    ax.set(xlabel="measured first-event strain (AQS)", ylabel="predicted strain (mode softening)")
    ax.legend(fontsize=7)
    rep.figure(fig, "softening_onset", "Predicted against measured strain of the first event, per graph "
               "(log-log; predictions of no crossing left out of the figure)")
