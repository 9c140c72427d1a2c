"""SLURM worker job scripts and slurm configuration, without a scheduler (as dask-jobqueue's test_header)."""
import pytest

from campaign import cli, config
from campaign.cluster import lost
from campaign.slurm import job_scripts, report_stuck, walltime_text
from campaign.values import walltime_seconds
from store import records

pytest.importorskip("dask_jobqueue")

SLURM = {
    "queue": "short", "account": "mat123", "walltime": "02:00:00", "memory": "8GB", "cores": 8, "jobs": 3,
    "interface": "ib0", "job_extra_directives": ["--qos=normal", "--constraint=skylake"],
    "worker_lifetime_margin": "5m", "gpu_jobs": 2, "gpus_per_job": 2, "gpu_queue": "gpu",
    "gpu_extra_directives": ["--constraint=a100"],
}


def load(tmp_path, slurm=None, **sections):
    return config.load("smoke", overrides={"store": str(tmp_path / "c.zarr"),
                                           "cluster": {"kind": "slurm", "slurm": {**SLURM, **(slurm or {})}},
                                           **sections})


def header(script):
    return [line for line in script.splitlines() if line.startswith("#SBATCH")]


def command(script):
    return script.strip().splitlines()[-1]


def test_cpu_job_script_has_every_setting(tmp_path):
    scripts = job_scripts(load(tmp_path))
    assert set(scripts) == {"cpu", "gpu"}
    cpu = header(scripts["cpu"])
    for line in ["#SBATCH -J stz-smoke-cpu", "#SBATCH -p short", "#SBATCH -A mat123", "#SBATCH -n 1",
                 "#SBATCH --cpus-per-task=8", "#SBATCH --mem=8G", "#SBATCH -t 02:00:00",
                 "#SBATCH --qos=normal", "#SBATCH --constraint=skylake"]:
        assert line in cpu, (line, cpu)
    assert not any("gres" in line or "a100" in line for line in cpu)
    logs = str(tmp_path / "c.logs" / "slurm")
    assert f"#SBATCH -o {logs}/stz-smoke-cpu-%J.out" in cpu
    cmd = command(scripts["cpu"])
    assert "-m distributed.cli.dask_worker tls://<scheduler>:8786" in cmd
    assert "--nthreads 8" in cmd and "--resources cores=8" in cmd and "--interface ib0" in cmd
    # MPI programs share the job's CPUs as Dask's 'cores' divides them, not one srun step at a time
    assert "export HYDRA_BOOTSTRAP=fork" in scripts["cpu"] and "export SLURM_OVERLAP=1" in scripts["cpu"]
    # retires 5 min (+ up to 2 x 60 s of stagger) before the 2 h walltime
    assert "--lifetime 6840s --lifetime-stagger 60s" in cmd


def test_gpu_job_script_asks_for_gpus_and_offers_no_cores(tmp_path):
    gpu = job_scripts(load(tmp_path))["gpu"]
    lines = header(gpu)
    for line in ["#SBATCH -J stz-smoke-gpu", "#SBATCH -p gpu", "#SBATCH -A mat123", "#SBATCH --gres=gpu:2",
                 "#SBATCH --constraint=a100", "#SBATCH --qos=normal", "#SBATCH -t 02:00:00"]:
        assert line in lines, (line, lines)
    cmd = command(gpu)
    assert "--resources GPU=2" in cmd and "cores=" not in cmd  # MD tasks never land on a GPU worker


def test_own_gres_directive_replaces_the_default(tmp_path):
    gpu = header(job_scripts(load(tmp_path, {"gpu_extra_directives": ["--gpus-per-node=4"]}))["gpu"])
    assert "#SBATCH --gpus-per-node=4" in gpu and not any("--gres" in line for line in gpu)


def test_no_gpu_pool_and_no_lifetime(tmp_path):
    scripts = job_scripts(load(tmp_path, {"gpu_jobs": 0, "worker_lifetime_margin": 0, "queue": None,
                                          "account": None, "interface": None}))
    assert set(scripts) == {"cpu"}
    cpu = scripts["cpu"]
    assert "--lifetime" not in cpu and "--interface" not in cpu
    assert not any(line.startswith(("#SBATCH -p", "#SBATCH -A")) for line in header(cpu))


def test_walltime_forms():
    assert walltime_seconds("01:30:00") == 5400 and walltime_seconds("2-00:00:30") == 172830
    assert walltime_seconds(36000) == 36000  # YAML 1.1 reads an unquoted 10:00:00 as 36000
    assert walltime_seconds("90m") is None and walltime_seconds("1:60:00") is None
    assert walltime_text(36000) == "10:00:00" and walltime_text(172830) == "2-00:00:30"


@pytest.mark.parametrize("slurm, sections, key", [
    ({"walltime": "2h"}, {}, "'cluster.slurm.walltime'"),
    ({"walltime": "00:00:00"}, {}, "'cluster.slurm.walltime'"),
    ({"memory": "lots"}, {}, "'cluster.slurm.memory'"),
    ({"memory": 4}, {}, "'cluster.slurm.memory'"),
    ({"cores": 0}, {}, "'cluster.slurm.cores'"),
    ({"jobs": 0}, {}, "'cluster.slurm.jobs'"),
    ({"adaptive": "yes"}, {}, "'cluster.slurm.adaptive'"),
    ({"adaptive": True, "minimum_jobs": 5, "maximum_jobs": 2}, {}, "'cluster.slurm.minimum_jobs'"),
    ({"maximum_jobs": 0}, {}, "'cluster.slurm.maximum_jobs'"),
    ({"job_extra_directives": ["#SBATCH --qos=normal"]}, {}, "'cluster.slurm.job_extra_directives'"),
    ({"job_extra_directives": "--qos=normal"}, {}, "'cluster.slurm.job_extra_directives'"),
    ({"gpu_extra_directives": ["gres=gpu:1"]}, {}, "'cluster.slurm.gpu_extra_directives'"),
    ({"worker_lifetime_margin": "soon"}, {}, "'cluster.slurm.worker_lifetime_margin'"),
    ({"worker_lifetime_margin": "2h"}, {}, "'cluster.slurm.worker_lifetime_margin'"),
    ({"max_task_retries": -1}, {}, "'cluster.slurm.max_task_retries'"),
    ({"gpu_jobs": -1}, {}, "'cluster.slurm.gpu_jobs'"),
    ({"gpus_per_job": 0}, {}, "'cluster.slurm.gpus_per_job'"),
    ({"interface": ""}, {}, "'cluster.slurm.interface'"),
    ({"cores": 4}, {"mpi": {"ranks": 4, "threads": 2}}, "'cluster.slurm.cores'"),
])
def test_bad_slurm_settings_name_the_key(tmp_path, slurm, sections, key):
    with pytest.raises(config.ConfigError, match=key):
        load(tmp_path, slurm, **sections)


def test_unknown_slurm_key_is_an_error(tmp_path):
    with pytest.raises(config.ConfigError, match="unknown key 'cluster.slurm.partition'"):
        load(tmp_path, {"partition": "short"})


def test_slurm_settings_do_not_change_task_keys(tmp_path):
    a = load(tmp_path)
    b = config.load("smoke", overrides={"store": str(tmp_path / "c.zarr")})
    assert config.science_hash(a) == config.science_hash(b)


def test_cluster_flag(capsys):
    assert cli.main(["config", "--cluster", "slurm"]) == 0
    assert "kind: slurm" in capsys.readouterr().out
    assert cli.main(["config", "--cluster", "slurm", "--preset", "paper"]) == 1  # 8 ranks, 2-core jobs
    assert "'cluster.slurm.cores'" in capsys.readouterr().err


def test_a_task_whose_workers_died_gets_a_failure_record(tmp_path):
    from distributed.scheduler import KilledWorker

    store = str(tmp_path / "s.zarr")
    import zarr

    zarr.open_group(store, mode="w").require_group("tasks")

    class Worker:
        address = "tcp://10.0.0.7:40123"

    outcome = lost(KilledWorker("shear-abc", Worker(), 3), ["abc"], "shear", store, "test")
    assert outcome.members == {"abc": "failed"}
    rec = records.read_all(store)["abc"]
    assert rec["status"] == "failed" and rec["reason"].startswith("worker died 4 times")
    assert "10.0.0.7" in rec["reason"]
    outcome = lost(RuntimeError("scheduler went away"), ["def"], "quench", store, "test")
    assert "RuntimeError: scheduler went away" in records.read_all(store)["def"]["reason"]


def test_worker_jobs_slurm_will_not_start_are_reported_once(capsys):
    queue = {"11": ("PENDING", "launch_failed_requeued_held"), "12": ("PENDING", "Resources"),
             "13": ("RUNNING", "None"), "14": ("PENDING", "Priority"), "15": ("PENDING", "PartitionDown"),
             "99": ("PENDING", "JobHeldUser")}  # not one of ours
    reported = set()
    lines = report_stuck(queue, ["11", "12", "13", "14", "15", "16"], reported)
    assert [ln.split()[2] for ln in lines] == ["11", "15"]
    assert "launch_failed_requeued_held" in lines[0] and "scontrol show job 11" in lines[0]
    assert capsys.readouterr().err.count("worker job") == 2
    assert report_stuck(queue, ["11", "15"], reported) == []  # once per job and reason
    queue["11"] = ("PENDING", "JobHeldAdmin")
    assert len(report_stuck(queue, ["11"], reported)) == 1  # a new reason is news


def test_adaptive_downscaling_spares_busy_and_gpu_workers():
    """The scheduler plugin campaign.slurm installs: asked to close all three workers, the
    scheduler offers only the idle CPU one, never one running a task (its MD would restart from
    scratch elsewhere) nor a GPU worker (a fixed pool). Without the plugin it offers all three."""
    import asyncio
    import time

    from distributed import Client, Scheduler, Worker

    from campaign.resources import GPU
    from campaign.slurm import _spare_busy_workers

    async def offered_for_closing():
        async with Scheduler(dashboard_address=":0", plugins=[_spare_busy_workers()]) as s, \
                Worker(s.address, name="busy", nthreads=1), Worker(s.address, name="idle", nthreads=1), \
                Worker(s.address, name="gpu", nthreads=1, resources={GPU: 1}), \
                Client(s.address, asynchronous=True) as client:
            task = client.submit(time.sleep, 2, workers=["busy"], pure=False)
            while not any(ws.processing for ws in s.workers.values()):
                await asyncio.sleep(0.02)
            with_plugin = s.workers_to_close(n=3, attribute="name")
            s.remove_plugin(name="stz-spare-busy-workers")
            without = s.workers_to_close(n=3, attribute="name")
            await task
            return sorted(with_plugin), sorted(without)

    with_plugin, without = asyncio.run(offered_for_closing())
    assert with_plugin == ["idle"]
    assert without == ["busy", "gpu", "idle"]
