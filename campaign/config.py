"""Configuration: packaged presets, a user file over them, validated before anything runs.

Precedence (lowest first): the defaults of ``campaign.schema`` (every key, defined once),
the chosen preset (``presets/<name>.yaml``), the user's YAML file, command-line overrides.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from importlib import resources

import yaml

from campaign import schema
from campaign.values import duration_seconds, walltime_seconds

PRESETS = ("smoke", "small", "rehearsal", "paper")


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the key."""


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads '1e10' as a string; accept it as a float, as YAML 1.2 does."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)$"),
    list("-+0123456789"))


def _read_yaml(text: str, origin: str) -> dict:
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        raise ConfigError(f"{origin}: not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping of keys")
    return data


def _preset_text(name: str) -> str:
    return resources.files("campaign").joinpath("presets", f"{name}.yaml").read_text()


def _merge(base: dict, over: dict, origin: str, prefix: str = "") -> dict:
    """Return base updated by over; keys absent from base are errors."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        path = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(f"{origin}: unknown key '{path}'")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{origin}: '{path}' must be a mapping")
            out[key] = _merge(base[key], value, origin, path + ".")
        else:
            out[key] = value
    return out


def load(preset: str = "smoke", path: str | None = None, overrides: dict | None = None) -> dict:
    """The validated configuration: base <- preset <- user file <- overrides."""
    if preset not in PRESETS:
        raise ConfigError(f"preset: '{preset}' is not one of {', '.join(PRESETS)}")
    cfg = {"preset": preset, **schema.defaults()}
    cfg = _merge(cfg, _read_yaml(_preset_text(preset), f"{preset}.yaml"), f"{preset}.yaml")
    if path is not None:
        try:
            with open(path) as f:
                text = f.read()
        except OSError as e:
            raise ConfigError(f"config file {path}: {e.strerror}") from None
        user = _read_yaml(text, path)
        if "preset" in user and user["preset"] != preset:
            # a user file may name its preset: it is then the layer below it
            return load(user["preset"], path, overrides) if user["preset"] in PRESETS else _bad_preset(user)
        cfg = _merge(cfg, user, path)
    if overrides:
        cfg = _merge(cfg, overrides, "command line")
    validate(cfg)
    if cfg["store"] is None:
        cfg["store"] = f"{cfg['preset']}.zarr"
    return cfg


def _bad_preset(user):
    raise ConfigError(f"preset: '{user['preset']}' is not one of {', '.join(PRESETS)}")


# --- validation --------------------------------------------------------------

def _flat(cfg: dict, prefix: str = ""):
    """(dotted key, value) of every leaf; a key of the schema is a leaf even if its value is a mapping."""
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name not in schema.BY_NAME:
            yield from _flat(value, name + ".")
        else:
            yield name, value


def left_by_folds(specimens: int, folds: int) -> int:
    """The specimens left to train and early-stop on when the largest of ``folds`` specimen-grouped
    folds is held out (two or more are needed: one to train on, one to early-stop on)."""
    return specimens - -(-specimens // folds)


def compared_scores(cfg: dict) -> list:
    """The columns the comparison scores (``compare.scores``), none without a comparison: what, beside
    ``features.sets``, decides which per-specimen stages (response, softening, lys) a campaign needs."""
    return cfg["compare"]["scores"] if cfg["compare"]["folds"] else []


def lys_count(cfg: dict) -> int:
    """How many specimens (the first ones) the local yield stress is computed for (``lys.specimens``)."""
    n = cfg["quench"]["specimens"]
    return min(cfg["lys"]["specimens"] or n, n)


def lys_directions(cfg: dict) -> list[str]:
    """The shear directions the local yield stress is computed for (``lys.directions``; [] every one)."""
    return cfg["lys"]["directions"] or cfg["shear"]["directions"]


def outer_fold_count(cfg: dict, specimens: int) -> int:
    """The comparison's outer folds over ``specimens``: ``compare.folds``, at most one per specimen."""
    return min(cfg["compare"]["folds"], specimens)


def validate(cfg: dict) -> None:
    """Raise ConfigError naming the first key with a wrong value, or keys that cannot go together."""
    for name, value in _flat(cfg):
        if name == "preset":
            continue
        key = schema.BY_NAME[name]  # _merge refused any other key
        if not key.kind.accepts(value):
            raise ConfigError(f"'{name}' must be {key.kind}, got {value!r}")
    try:
        from kernels.eam import potential_file
        potential_file(cfg["system"]["potential"])
    except FileNotFoundError as e:
        raise ConfigError(f"'system.potential': {e}") from None
    shear, liquid = cfg["shear"], cfg["liquid"]
    if shear["strain_step"] > shear["max_strain"]:
        raise ConfigError(f"'shear.strain_step' ({shear['strain_step']}) is larger than "
                          f"'shear.max_strain' ({shear['max_strain']})")
    if liquid["snapshot_interval_ps"] > liquid["equilibration_ps"]:
        raise ConfigError("'liquid.snapshot_interval_ps' is longer than 'liquid.equilibration_ps'")
    if n_snapshots(cfg) < cfg["quench"]["specimens"]:
        raise ConfigError(f"'quench.specimens' ({cfg['quench']['specimens']}) is more than the "
                          f"{n_snapshots(cfg)} liquid microstates sampled (equilibration_ps / snapshot_interval_ps)")
    if cfg["quench"]["final_temperature_K"] >= liquid["temperature_K"]:
        raise ConfigError("'quench.final_temperature_K' must be below 'liquid.temperature_K'")
    if _steps(liquid["snapshot_interval_ps"], cfg) < 1:
        raise ConfigError("'liquid.snapshot_interval_ps' is shorter than one timestep")
    if cfg["labels"]["positive"] == "cluster" and cfg["labels"]["event"] != "cluster":
        raise ConfigError("'labels.positive' cluster labels the atoms of a cluster event: it needs "
                          "'labels.event' cluster")
    if cfg["train"]["threshold_A2"] not in cfg["labels"]["thresholds_A2"]:
        raise ConfigError(f"'train.threshold_A2' ({cfg['train']['threshold_A2']}) must be one of "
                          f"'labels.thresholds_A2' {cfg['labels']['thresholds_A2']}")
    sizes = split_sizes(cfg)
    pooled, folds = sizes[0] + sizes[1], cfg["split"]["folds"]
    if min(sizes) < 1 or left_by_folds(pooled, folds) < 2:
        raise ConfigError(f"'quench.specimens' ({cfg['quench']['specimens']}) gives a train/validation/test split "
                          f"of {sizes}: need at least one test specimen, and 'split.folds' ({folds}) folds of the "
                          f"{pooled} train + validation specimens that leave each fold two or more to train and "
                          "early-stop on")
    outer, n = cfg["compare"]["folds"], cfg["quench"]["specimens"]
    if outer and not (2 <= outer <= n and left_by_folds(n, outer) >= 2):
        raise ConfigError(f"'compare.folds' ({outer}) must be 0 (no comparison) or at least 2 folds of the {n} "
                          "specimens that leave each fold two or more to train and early-stop on")
    from kernels.features import needs_lys, needs_path

    if needs_path(cfg["features"]["sets"], compared_scores(cfg)) and not cfg["softening"]["continuation_steps"]:
        raise ConfigError("'features.sets' or 'compare.scores' read softening_path, but "
                          "'softening.continuation_steps' is 0 (the softening tasks follow no path)")
    reads_lys, subset = needs_lys(cfg["features"]["sets"], compared_scores(cfg)), lys_count(cfg)
    if reads_lys and not cfg["lys"]["regions_per_axis"]:
        raise ConfigError("'features.sets' or 'compare.scores' read the local yield stress, but "
                          "'lys.regions_per_axis' is 0 (no lys tasks compute it)")
    unknown = sorted(set(cfg["lys"]["directions"]) - set(cfg["shear"]["directions"]))
    if unknown:
        raise ConfigError(f"'lys.directions': {', '.join(unknown)} not among 'shear.directions'")
    if reads_lys and set(lys_directions(cfg)) != set(cfg["shear"]["directions"]):
        raise ConfigError(f"'lys.directions' ({', '.join(lys_directions(cfg))}): the local yield stress of a subset "
                          "of the shear directions is measured only; 'features.sets' and 'compare.scores' must not "
                          "read it")
    if reads_lys and subset < n and (needs_lys(cfg["features"]["sets"][:1]) or not outer):
        raise ConfigError(f"'lys.specimens' ({subset} of {n}): the local yield stress of a subset is read by the "
                          "comparison only ('compare.folds' > 0), not by the study's models, which train on the first "
                          f"of 'features.sets' ({cfg['features']['sets'][0]})")
    if reads_lys and outer and left_by_folds(subset, outer_fold_count(cfg, subset)) < 2:
        raise ConfigError(f"'lys.specimens' ({cfg['lys']['specimens']}): the comparison's rows that read the local "
                          f"yield stress are an outer CV of {outer_fold_count(cfg, subset)} folds over those {subset} "
                          "specimens, which must leave each fold two or more to train and early-stop on")
    if cfg["compare"]["convs"]:
        from kernels.pyg_stack import PyGNet, takes_edge_features  # imports PyG: only when asked for
        for name in cfg["compare"]["convs"]:
            try:  # a model of two small layers, with edge features where it takes them, made and run once
                PyGNet(name, 19, 2, 4, 2, edge_dim=3 if takes_edge_features(name) else 0)
            except ValueError as e:
                raise ConfigError(f"'compare.convs': {e}") from None
    need = cfg["mpi"]["ranks"] * cfg["mpi"]["threads"]
    if cfg["cluster"]["kind"] == "local":
        cores = cfg["cluster"]["cores"]
        if need > (cores or os.cpu_count()):
            raise ConfigError(f"'mpi.ranks' x 'mpi.threads' = {need} cores per task, more than the "
                              f"{cores or os.cpu_count()} cores of the local cluster ('cluster.cores')")
        if cores is not None and cores > os.cpu_count():
            raise ConfigError(f"'cluster.cores' ({cores}) is more than this machine's {os.cpu_count()} cores")
    else:
        _check_slurm(cfg["cluster"]["slurm"], need)


def _check_slurm(s: dict, need: int) -> None:
    if need > s["cores"]:
        raise ConfigError(f"'mpi.ranks' x 'mpi.threads' = {need} cores per task, more than the "
                          f"{s['cores']} cores of a worker job ('cluster.slurm.cores')")
    if s["adaptive"] and s["minimum_jobs"] > s["maximum_jobs"]:
        raise ConfigError(f"'cluster.slurm.minimum_jobs' ({s['minimum_jobs']}) is more than "
                          f"'cluster.slurm.maximum_jobs' ({s['maximum_jobs']})")
    if s["worker_lifetime_margin"] and worker_lifetime(s)[0] <= 0:
        raise ConfigError(f"'cluster.slurm.worker_lifetime_margin' ({s['worker_lifetime_margin']}) leaves no "
                          f"lifetime within 'cluster.slurm.walltime' ({s['walltime']})")


def worker_lifetime(s: dict) -> tuple[int, int]:
    """(lifetime, stagger) in seconds of a SLURM worker (section ``cluster.slurm``): it retires between
    walltime - margin - 2 stagger and walltime - margin after it starts (stagger = margin / 5)."""
    margin = int(duration_seconds(s["worker_lifetime_margin"]))
    stagger = margin // 5
    return walltime_seconds(s["walltime"]) - margin - stagger, stagger


def _steps(ps: float, cfg: dict) -> int:
    return int(round(ps / cfg["system"]["timestep_ps"]))


def split_sizes(cfg: dict) -> tuple[int, int, int]:
    """(train, validation, test) specimen counts of the 3:1:1-style split."""
    n = cfg["quench"]["specimens"]
    fr = cfg["split"]["fractions"]
    test = int(round(n * fr[2] / sum(fr)))
    val = int(round(n * fr[1] / sum(fr)))
    return n - val - test, val, test


def n_snapshots(cfg: dict) -> int:
    """Microstates sampled from the liquid."""
    liquid = cfg["liquid"]
    return int(liquid["equilibration_ps"] // liquid["snapshot_interval_ps"] + 1e-9)


# keys that change how a task runs, not what it computes: left out of task keys and the science hash
RUNTIME_KEYS = tuple(k.name for k in schema.KEYS if k.runtime)


def runtime_keys(section: str) -> set[str]:
    """The keys of ``section`` in RUNTIME_KEYS."""
    return {key for sec, key in (dotted.split(".") for dotted in RUNTIME_KEYS) if sec == section}


def keyed(cfg: dict, section: str) -> dict:
    """The keys of ``section`` as task keys hold them: runtime keys, and keys added later while at their
    default, left out (a stage's tasks keep their keys when a key is added)."""
    out = dict(cfg[section])
    for key in schema.KEYS:
        sec, _, name = key.name.rpartition(".")
        if sec == section and name in out and (key.runtime or (key.added_later and out[name] == key.default)):
            del out[name]
    return out


def science_hash(cfg: dict) -> str:
    """Hash of every key that can change a result (not where or how it runs)."""
    science = copy.deepcopy({k: v for k, v in cfg.items() if k not in ("cluster", "store", "preset")})
    for key in schema.KEYS:  # runtime keys, and keys added later while at their default, are left out
        section, _, name = key.name.rpartition(".")
        node = science.get(section, {}) if section else science
        if name in node and (key.runtime or (key.added_later and node[name] == key.default)):
            del node[name]
    science = {k: v for k, v in science.items() if v != {}}  # a section added later, all at its defaults
    return hashlib.sha256(json.dumps(science, sort_keys=True).encode()).hexdigest()[:12]


def dump(cfg: dict) -> str:
    return yaml.safe_dump(cfg, sort_keys=False)
