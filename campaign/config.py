"""Configuration: packaged presets, a user file over them, validated before anything runs.

Precedence (lowest first): ``presets/base.yaml`` (every key and its default),
the chosen preset, the user's YAML file, command-line overrides.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from importlib import resources
from numbers import Real

import yaml

from campaign import slurm as slurm_mod

PRESETS = ("smoke", "small", "paper")
LOSSES = ("weighted_ce", "focal")
EIGENSOLVERS = ("auto", "dense", "shift-invert", "sparse", "lobpcg", "torch")
SAMPLINGS = ("none", "undersample", "oversample")
STRATEGIES = ("focal", "undersample", "oversample")
BASELINES = ("random", "logistic", "boosted_trees")
METRICS = ("recall", "precision", "f1", "mcc", "auc", "ap")
DIRECTIONS = ("xy", "yz", "xz", "-xy", "-yz", "-xz")


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
    cfg = _read_yaml(_preset_text("base"), "base.yaml")
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

def _number(v):
    return isinstance(v, Real) and not isinstance(v, bool)


def _integer(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _int_list(v):
    return isinstance(v, list) and all(_integer(x) for x in v)


# key: (type test, type name, value test, value rule); None = no value test
_RULES = {
    "seed": (_integer, "an integer", lambda v: v >= 0, ">= 0"),
    "store": (lambda v: v is None or isinstance(v, str), "a path or null", None, ""),
    "cluster.kind": (lambda v: isinstance(v, str), "a string", lambda v: v in ("local", "slurm"), "local or slurm"),
    "cluster.cores": (lambda v: v is None or _integer(v), "an integer or null", lambda v: v is None or v >= 1, ">= 1"),
    "cluster.dashboard_address": (lambda v: isinstance(v, str), "a string like ':8787'", None, ""),
    "cluster.lock_stale_after": (lambda v: slurm_mod.duration_seconds(v) is not None, "a duration like '10m'",
                                 lambda v: slurm_mod.duration_seconds(v) >= 10, "at least 10 s"),
    "cluster.slurm.queue": (lambda v: v is None or isinstance(v, str), "a partition name or null", None, ""),
    "cluster.slurm.account": (lambda v: v is None or isinstance(v, str), "an account name or null", None, ""),
    "cluster.slurm.walltime": (lambda v: slurm_mod.walltime_seconds(v) is not None, "a time like '01:00:00'",
                               lambda v: slurm_mod.walltime_seconds(v) > 0, "HH:MM:SS or D-HH:MM:SS, not zero"),
    "cluster.slurm.memory": (lambda v: isinstance(v, str), "a string like '4GB'", slurm_mod.memory_ok,
                             "a size with a unit, like 4GB or 500MB"),
    "cluster.slurm.cores": (_integer, "an integer", lambda v: v >= 1, ">= 1"),
    "cluster.slurm.jobs": (_integer, "an integer", lambda v: v >= 1, ">= 1"),
    "cluster.slurm.adaptive": (lambda v: isinstance(v, bool), "true or false", None, ""),
    "cluster.slurm.minimum_jobs": (_integer, "an integer", lambda v: v >= 0, ">= 0"),
    "cluster.slurm.maximum_jobs": (_integer, "an integer", lambda v: v >= 1, ">= 1"),
    "cluster.slurm.interface": (lambda v: v is None or (isinstance(v, str) and v.strip() != ""),
                                "an interface name like 'ib0' or null", None, ""),
    "cluster.slurm.job_extra_directives": (lambda v: isinstance(v, list), "a list", slurm_mod.directives_ok,
                                           "a list of sbatch options like '--qos=normal' (no '#SBATCH')"),
    "cluster.slurm.worker_lifetime_margin": (lambda v: slurm_mod.duration_seconds(v) is not None,
                                             "a duration like '5m', '300s' or 0",
                                             lambda v: slurm_mod.duration_seconds(v) >= 0, ">= 0"),
    "cluster.slurm.max_task_retries": (_integer, "an integer", lambda v: v >= 0, ">= 0"),
    "cluster.slurm.log_directory": (lambda v: v is None or isinstance(v, str), "a path or null", None, ""),
    "cluster.slurm.security": (lambda v: isinstance(v, bool) or isinstance(v, dict),
                               "true, false, or a mapping {ca_file, cert, key}",
                               lambda v: isinstance(v, bool) or (set(v) == {"ca_file", "cert", "key"} and all(
                                   isinstance(x, str) and x.strip() for x in v.values())),
                               "true, false, or PEM file paths {ca_file: ..., cert: ..., key: ...}"),
    "cluster.slurm.gpu_jobs": (_integer, "an integer", lambda v: v >= 0, ">= 0"),
    "cluster.slurm.gpus_per_job": (_integer, "an integer", lambda v: v >= 1, ">= 1"),
    "cluster.slurm.gpu_queue": (lambda v: v is None or isinstance(v, str), "a partition name or null", None, ""),
    "cluster.slurm.gpu_extra_directives": (lambda v: isinstance(v, list), "a list", slurm_mod.directives_ok,
                                           "a list of sbatch options like '--constraint=a100' (no '#SBATCH')"),
    "mpi.ranks": (_integer, "an integer", lambda v: v >= 1, ">= 1"),
    "mpi.threads": (_integer, "an integer", lambda v: v >= 1, ">= 1"),
    "mpi.launcher": (lambda v: isinstance(v, str) and v.strip() != "", "a command", None, ""),
    "system.n_atoms": (_integer, "an integer", lambda v: v >= 50, ">= 50"),
    "system.cu_fraction": (_number, "a number", lambda v: 0 < v < 1, "between 0 and 1"),
    "system.potential": (lambda v: isinstance(v, str), "a file name", None, ""),
    "system.timestep_ps": (_number, "a number", lambda v: 0 < v <= 0.01, "in (0, 0.01] ps"),
    "liquid.temperature_K": (_number, "a number", lambda v: v > 0, "> 0"),
    "liquid.pressure_bar": (_number, "a number", None, ""),
    "liquid.discard_ps": (_number, "a number", lambda v: v >= 0, ">= 0"),
    "liquid.equilibration_ps": (_number, "a number", lambda v: v > 0, "> 0"),
    "liquid.snapshot_interval_ps": (_number, "a number", lambda v: v > 0, "> 0"),
    "quench.specimens": (_integer, "an integer", lambda v: v >= 1, ">= 1"),
    "quench.final_temperature_K": (_number, "a number", lambda v: v > 0, "> 0"),
    "quench.rate_K_per_s": (_number, "a number", lambda v: v > 0, "> 0"),
    "quench.thermostat_damp_ps": (_number, "a number", lambda v: v > 0, "> 0"),
    "quench.barostat_damp_ps": (_number, "a number", lambda v: v > 0, "> 0"),
    "quench.checkpoint_ps": (_number, "a number", lambda v: v >= 0, ">= 0"),
    "minimize.etol": (_number, "a number", lambda v: v >= 0, ">= 0"),
    "minimize.ftol": (_number, "a number", lambda v: v > 0, "> 0"),
    "minimize.maxiter": (_integer, "an integer", lambda v: v >= 1, ">= 1"),
    "minimize.maxeval": (_integer, "an integer", lambda v: v >= 1, ">= 1"),
    "shear.directions": (lambda v: isinstance(v, list), "a list",
                         lambda v: len(v) > 0 and len(set(v)) == len(v) and all(d in DIRECTIONS for d in v),
                         f"a non-empty list of distinct directions from {list(DIRECTIONS)}"),
    "shear.max_strain": (_number, "a number", lambda v: 0 < v <= 0.5, "in (0, 0.5]"),
    "shear.strain_step": (_number, "a number", lambda v: v > 0, "> 0"),
    "shear.early_stop": (lambda v: isinstance(v, bool), "true or false", None, ""),
    "labels.d2min_cutoff_A": (_number, "a number", lambda v: 2.0 <= v <= 8.0, "in [2, 8] A"),
    "labels.thresholds_A2": (lambda v: isinstance(v, list) and all(_number(x) for x in v), "a list of numbers",
                             lambda v: len(v) > 0 and all(x > 0 for x in v) and list(v) == sorted(set(v)),
                             "a non-empty, increasing list of positive numbers"),
    "labels.min_group_size": (_integer, "an integer", lambda v: v >= 1, ">= 1"),
    "labels.event": (lambda v: isinstance(v, str), "a string", lambda v: v in ("anywhere", "cluster"),
                     "anywhere or cluster"),
    "labels.positive": (lambda v: isinstance(v, str), "a string", lambda v: v in ("above", "cluster"),
                        "above or cluster"),
    "features.face_area_fraction": (_number, "a number", lambda v: 0 <= v < 0.2, "in [0, 0.2)"),
    "features.low_mode_fraction": (_number, "a number", lambda v: 0 < v <= 1, "in (0, 1]"),
    "features.eigensolver": (lambda v: isinstance(v, str), "a string",
                             lambda v: v in EIGENSOLVERS, f"one of {EIGENSOLVERS}"),
    "features.stiffness_strain": (_number, "a number", lambda v: 0 < v <= 1e-2, "in (0, 0.01]"),
    "features.stiffness_ftol": (_number, "a number", lambda v: v > 0, "> 0"),
    "split.fractions": (lambda v: isinstance(v, list) and len(v) == 3 and all(_number(x) for x in v),
                        "a list of three numbers", lambda v: all(x > 0 for x in v), "positive"),
    "split.folds": (_integer, "an integer", lambda v: v >= 2, ">= 2"),
    "split.seed": (_integer, "an integer", lambda v: v >= 0, ">= 0"),
    "grid.layers": (_int_list, "a list of integers", lambda v: len(v) > 0 and min(v) >= 1, "non-empty, >= 1"),
    "grid.width": (_int_list, "a list of integers", lambda v: len(v) > 0 and min(v) >= 1, "non-empty, >= 1"),
    "grid.heads": (_int_list, "a list of integers", lambda v: len(v) > 0 and min(v) >= 1, "non-empty, >= 1"),
    "train.threshold_A2": (_number, "a number", lambda v: v > 0, "> 0"),
    "train.epochs": (_integer, "an integer", lambda v: v >= 1, ">= 1"),
    "train.patience": (_integer, "an integer", lambda v: v >= 1, ">= 1"),
    "train.learning_rate": (_number, "a number", lambda v: 0 < v < 1, "in (0, 1)"),
    "train.batch_graphs": (_integer, "an integer", lambda v: v >= 1, ">= 1"),
    "train.stack_folds": (lambda v: isinstance(v, bool), "true or false", None, ""),
    "train.loss": (lambda v: isinstance(v, str), "a string", lambda v: v in LOSSES, f"one of {LOSSES}"),
    "train.early_stop_loss": (lambda v: isinstance(v, str), "a string", lambda v: v in ("training", "unweighted"),
                              "training or unweighted"),
    "train.focal_gamma": (_number, "a number", lambda v: v >= 0, ">= 0"),
    "train.sampling": (lambda v: isinstance(v, str), "a string", lambda v: v in SAMPLINGS, f"one of {SAMPLINGS}"),
    "train.sampling_ratio": (_number, "a number", lambda v: v > 0, "> 0"),
    "train.device": (lambda v: isinstance(v, str), "a string", lambda v: v in ("auto", "cpu", "cuda"),
                     "auto, cpu or cuda"),
    "train.checkpoint_epochs": (_integer, "an integer", lambda v: v >= 0, ">= 0"),
    "train.seed": (_integer, "an integer", lambda v: v >= 0, ">= 0"),
    "report.sweep_metric": (lambda v: isinstance(v, str), "a string", lambda v: v in METRICS, f"one of {METRICS}"),
    "report.strategies": (lambda v: isinstance(v, list), "a list",
                          lambda v: all(x in STRATEGIES for x in v), f"a list from {STRATEGIES}"),
    "report.baselines": (lambda v: isinstance(v, list), "a list",
                         lambda v: all(x in BASELINES for x in v), f"a list from {BASELINES}"),
    "report.bootstrap": (_integer, "an integer", lambda v: v >= 0, ">= 0"),
}


def _get(cfg: dict, dotted: str):
    node = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def _flat_keys(cfg: dict, prefix: str = ""):
    for key, value in cfg.items():
        if isinstance(value, dict) and f"{prefix}{key}" not in _RULES:  # a mapping-valued key has a rule
            yield from _flat_keys(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def validate(cfg: dict) -> None:
    """Raise ConfigError naming the first key with a wrong type or an impossible value."""
    for key in _flat_keys(cfg):
        if key == "preset":
            continue
        if key not in _RULES:
            raise ConfigError(f"'{key}' has no validation rule (a bug: add it to campaign/config.py)")
        is_type, type_name, ok, rule = _RULES[key]
        value = _get(cfg, key)
        if not is_type(value):
            raise ConfigError(f"'{key}' must be {type_name}, got {value!r}")
        if ok is not None and not ok(value):
            raise ConfigError(f"'{key}' must be {rule}, got {value!r}")
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
    if min(sizes) < 1 or pooled - -(-pooled // folds) < 2:
        raise ConfigError(f"'quench.specimens' ({cfg['quench']['specimens']}) gives a train/validation/test split "
                          f"of {sizes}: need at least one test specimen, and 'split.folds' ({folds}) folds of the "
                          f"{pooled} train + validation specimens that leave each fold two or more to train and "
                          "early-stop on")
    cores = cfg["cluster"]["cores"]
    if cfg["cluster"]["kind"] == "local":
        have = cores or os.cpu_count()
        need = cfg["mpi"]["ranks"] * cfg["mpi"]["threads"]
        if need > have:
            raise ConfigError(f"'mpi.ranks' x 'mpi.threads' = {need} cores per task, more than the "
                              f"{have} cores of the local cluster ('cluster.cores')")
        if cores is not None and cores > os.cpu_count():
            raise ConfigError(f"'cluster.cores' ({cores}) is more than this machine's {os.cpu_count()} cores")
    if cfg["cluster"]["kind"] == "slurm":
        slurm_mod.check(cfg)


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
RUNTIME_KEYS = ("quench.checkpoint_ps", "shear.early_stop", "train.checkpoint_epochs", "train.device",
                "train.stack_folds")


def runtime_keys(section: str) -> set[str]:
    """The keys of ``section`` in RUNTIME_KEYS."""
    return {key for sec, key in (dotted.split(".") for dotted in RUNTIME_KEYS) if sec == section}


def science_hash(cfg: dict) -> str:
    """Hash of every key that can change a result (not where or how it runs)."""
    science = {k: v for k, v in cfg.items() if k not in ("cluster", "store", "preset")}
    for section in {dotted.split(".")[0] for dotted in RUNTIME_KEYS}:
        science[section] = {k: v for k, v in science[section].items() if k not in runtime_keys(section)}
    return hashlib.sha256(json.dumps(science, sort_keys=True).encode()).hexdigest()[:12]


def dump(cfg: dict) -> str:
    return yaml.safe_dump(cfg, sort_keys=False)
