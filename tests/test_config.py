"""Configuration: presets load, user files override, bad values are named before anything runs."""
import os

import pytest
import yaml

from campaign import cli, config
from campaign.config import ConfigError


@pytest.mark.parametrize("preset", config.PRESETS)
def test_presets_load(preset):
    cfg = config.load(preset, overrides={"mpi": {"ranks": 1}})
    assert cfg["preset"] == preset
    assert cfg["store"] == f"{preset}.zarr"


def test_paper_preset_is_the_study():
    cfg = config.load("paper", overrides={"mpi": {"ranks": 1}})
    assert cfg["system"]["n_atoms"] == 10000
    assert cfg["liquid"]["temperature_K"] == 2000 and cfg["liquid"]["pressure_bar"] == 0
    assert cfg["liquid"]["equilibration_ps"] == 10000 and cfg["liquid"]["snapshot_interval_ps"] == 10
    assert config.n_snapshots(cfg) == 1000
    assert cfg["quench"]["specimens"] == 75 and cfg["quench"]["rate_K_per_s"] == 1e10
    assert cfg["quench"]["final_temperature_K"] == 300
    assert cfg["shear"]["directions"] == ["xy", "yz", "xz", "-xy", "-yz", "-xz"]
    assert cfg["shear"]["max_strain"] == 0.04 and cfg["shear"]["strain_step"] == 1e-4
    assert 0.1 in cfg["labels"]["thresholds_A2"]


def test_user_file_overrides_and_reads_exponents(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("quench:\n  rate_K_per_s: 1e12\nlabels:\n  thresholds_A2: [0.1]\n")
    cfg = config.load("smoke", str(f))
    assert cfg["quench"]["rate_K_per_s"] == 1e12
    assert cfg["labels"]["thresholds_A2"] == [0.1]
    assert cfg["system"]["n_atoms"] == config.load("smoke")["system"]["n_atoms"]


def test_user_file_may_name_its_preset(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("preset: small\nquench:\n  specimens: 6\n")
    cfg = config.load("smoke", str(f))
    assert cfg["preset"] == "small" and cfg["quench"]["specimens"] == 6
    assert cfg["system"]["n_atoms"] == config.load("small")["system"]["n_atoms"]


BAD = [
    ("shear:\n  nonsense: 1\n", "shear.nonsense"),
    ("bogus: 1\n", "bogus"),
    ("quench:\n  rate_K_per_s: -1e10\n", "quench.rate_K_per_s"),
    ("quench:\n  rate_K_per_s: fast\n", "quench.rate_K_per_s"),
    ("system:\n  n_atoms: 1000.5\n", "system.n_atoms"),
    ("labels:\n  thresholds_A2: []\n", "labels.thresholds_A2"),
    ("labels:\n  thresholds_A2: [0.2, 0.1]\n", "labels.thresholds_A2"),
    ("labels:\n  thresholds_A2: [-0.1]\n", "labels.thresholds_A2"),
    ("shear:\n  strain_step: 0.05\n  max_strain: 0.04\n", "shear.strain_step"),
    ("shear:\n  directions: [xy, zz]\n", "shear.directions"),
    ("mpi:\n  ranks: 4096\n", "mpi.ranks"),
    ("mpi:\n  ranks: 0\n", "mpi.ranks"),
    ("quench:\n  specimens: 100000\n", "quench.specimens"),
    ("shear: 3\n", "shear"),
    ("shear:\n  early_stop: 1\n", "shear.early_stop"),
    ("- a list\n", "top level"),
    ("quench: {rate: [\n", "not valid YAML"),
    ("quench:\n  checkpoint_ps: -5\n", "quench.checkpoint_ps"),
    ("cluster:\n  lock_stale_after: 10 parsecs\n", "cluster.lock_stale_after"),
    ("cluster:\n  lock_stale_after: 5s\n", "cluster.lock_stale_after"),
    ("cluster:\n  slurm:\n    memory: '4'\n", "cluster.slurm.memory"),
    ("cluster:\n  slurm:\n    walltime: 90m\n", "cluster.slurm.walltime"),
    ("cluster:\n  slurm:\n    security: {cert: a.pem}\n", "cluster.slurm.security"),
    ("compare:\n  folds: 1\n", "compare.folds"),
    ("compare:\n  folds: 6\n", "compare.folds"),  # more folds than smoke's 5 specimens
    ("compare:\n  point: [2, 20]\n", "compare.point"),
    ("compare:\n  scores: [participation]\n", "compare.scores"),
    ("features:\n  sets: [study19, study19+lys]\n", "lys.regions_per_axis"),  # nothing computes it
]


@pytest.mark.parametrize("text,named", BAD)
def test_bad_configs_are_rejected_naming_the_key(tmp_path, text, named):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        config.load("smoke", str(f))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml"):
        config.load("smoke", str(tmp_path / "nope.yaml"))


@pytest.mark.parametrize("text,named", BAD[:6])
def test_cli_rejects_before_writing_anything(tmp_path, capsys, text, named):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    store = tmp_path / "s.zarr"
    assert cli.main(["launch", "--config", str(f), "--store", str(store)]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and named.split(".")[-1] in err
    assert not store.exists()
    assert os.listdir(tmp_path) == ["bad.yaml"]


def test_science_hash_ignores_where_it_runs():
    a = config.load("smoke")
    b = config.load("smoke", overrides={"store": "elsewhere.zarr", "cluster": {"cores": 1}})
    c = config.load("smoke", overrides={"seed": 7})
    assert config.science_hash(a) == config.science_hash(b) != config.science_hash(c)


def test_checkpoint_interval_changes_how_not_what():
    from campaign import plan

    a = config.load("smoke")
    b = config.load("smoke", overrides={"quench": {"checkpoint_ps": 5.0}})
    assert config.science_hash(a) == config.science_hash(b)
    assert [t.key for t in plan.plan(a)] == [t.key for t in plan.plan(b)]
    quench = next(t for t in plan.plan(b) if t.STAGE == "quench")
    assert quench.runtime(b) == {"checkpoint_ps": 5.0} and "checkpoint_ps" not in quench.params()


def test_config_command_prints_valid_yaml(capsys):
    assert cli.main(["config", "--preset", "small"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["preset"] == "small"


def test_every_key_is_defined_once_with_a_default_it_accepts_and_a_meaning():
    from campaign import schema

    assert len(schema.BY_NAME) == len(schema.KEYS)
    for k in schema.KEYS:
        assert k.kind.accepts(k.default), k.name
        assert k.doc and str(k.kind), k.name
    base = schema.defaults()
    assert base["shear"]["max_strain"] == 0.04 and base["cluster"]["slurm"]["security"] is True
    assert set(config.RUNTIME_KEYS) == {"quench.checkpoint_ps", "shear.early_stop", "train.checkpoint_epochs",
                                        "train.device", "train.stack_folds", "train.gpu_memory_GiB"}


def test_durations_and_sizes_are_read_as_dask_reads_them():
    from campaign.values import duration_seconds, size_bytes

    assert duration_seconds("10m") == 600 and duration_seconds("1.5h") == 5400 and duration_seconds(0) == 0
    assert duration_seconds("10 parsecs") is None and duration_seconds(True) is None
    assert duration_seconds("10min") == 600 and duration_seconds("30 sec") == 30  # as this project read them
    assert size_bytes("GB") is None
    assert size_bytes("4GB") == 4 * 10**9 and size_bytes("500MiB") == 500 * 2**20 and size_bytes("4") is None


def test_explain_names_a_keys_meaning_default_and_value_here(capsys):
    assert cli.main(["config", "--preset", "small", "--explain", "quench.rate_K_per_s"]) == 0
    out = capsys.readouterr().out
    assert "quench.rate_K_per_s [K/s]: cooling rate" in out and "default 1e+10" in out and "1e+13" in out
    assert cli.main(["config", "--explain", "shear"]) == 0
    assert "shear.early_stop" in capsys.readouterr().out
    assert cli.main(["config", "--explain", "shear.max_stran"]) == 1
    assert "did you mean shear.max_strain" in capsys.readouterr().err


def test_a_store_that_cannot_be_made_is_named_before_anything_is_written(tmp_path, capsys):
    (tmp_path / "a-file").write_text("not a folder")
    assert cli.main(["launch", "--store", str(tmp_path / "a-file" / "s.zarr")]) == 1
    err = capsys.readouterr().err
    assert "cannot be made" in err and "a-file is not a folder" in err
    assert os.listdir(tmp_path) == ["a-file"]


def test_a_direction_of_the_negative_sense_is_a_value_not_an_option(tmp_path, capsys):
    """``export --direction -yz`` (argparse alone would take '-yz' for an unknown option and exit 2)."""
    assert cli.main(["export", "--store", str(tmp_path / "s.zarr"), "--specimen", "0", "--direction", "-yz"]) == 1
    err = capsys.readouterr().err
    assert "quench s000" in err and "not done" in err, err  # it got as far as reading the store
