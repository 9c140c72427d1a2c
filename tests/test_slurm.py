"""On a real SLURM cluster (``bash .ci/slurm.sh up``): MPI jobs in worker allocations, the smoke
campaign on SLURMCluster workers, a worker job cancelled mid-campaign, the dashboard, status.

Sized for the one-node, 2-CPU cluster of .ci/slurm.sh: one worker job of 2 cores at a time.
"""
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import psutil
import pytest
import yaml
import zarr

from campaign import config, plan, state
from campaign.dispatch import spec as job_spec
from campaign.execute import execute
from store import records as store_records

from slurm_cluster import SLURM, TINY, squeue

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm")]  # the probe: tests/slurm_cluster.py


def our_jobs(wait_s: float = 30.0) -> list:
    """The campaign's worker jobs still in the queue after up to wait_s (COMPLETING takes seconds)."""
    deadline = time.time() + wait_s
    while (left := [j for j in squeue() if j[1].startswith("stz-")]) and time.time() < deadline:
        time.sleep(0.5)
    return left


def arrays(store):
    root = zarr.open_group(str(store), mode="r")
    return {path: arr[...] for path, arr in root.members(max_depth=None) if isinstance(arr, zarr.Array)}


def statuses(store):
    return {k: r["status"] for k, r in store_records.read_all(str(store)).items()}


def tiny_liquid(tmp_path, **cluster):
    store = tmp_path / "t.zarr"
    cfg = config.load("smoke", overrides={**TINY, "store": str(store), "mpi": {"ranks": 2},
                                          "cluster": {"kind": "slurm", "dashboard_address": ":0",
                                                      "slurm": {**SLURM, **cluster}}})
    tasks = plan.plan(cfg)
    state.init_store(str(store), cfg, tasks, config.science_hash(cfg), "test")
    return cfg, tasks[0], store


# --- (a) MPI inside SLURM allocations ------------------------------------------

def test_two_rank_lammps_job_in_a_two_core_worker_job(tmp_path):
    """The launcher's path: execute() on a Dask worker that is a 2-core SLURM job, mpiexec -n 2."""
    from campaign.slurm import slurm_cluster

    cfg, liquid, store = tiny_liquid(tmp_path)
    t0 = time.time()
    with slurm_cluster(cfg) as client:
        client.wait_for_workers(1, timeout=120)
        jobs = set(client.run(os.getenv, "SLURM_JOB_ID").values())
        outcome = client.submit(execute, job_spec(liquid, str(store), cfg), 2, 1, "mpiexec", resources={"cores": 2},
                                pure=False).result(timeout=300)
    print(f"liquid on 2 ranks in SLURM job {jobs}: {outcome.seconds:.1f} s, {time.time() - t0:.1f} s in all")
    assert len(jobs) == 1 and None not in jobs
    assert outcome.status == "done", outcome.reason
    rec = store_records.read_all(str(store))[liquid.key]
    assert rec["status"] == "done" and rec["ranks"] == 2
    assert zarr.open_group(str(store))[rec["path"]]["positions"].shape == (5, 250, 3)
    assert not our_jobs()  # the worker job is gone


def test_srun_launcher_inside_sbatch_allocation(tmp_path):
    """mpi.launcher 'srun --mpi=pmi2' inside `sbatch -n 2`: the ranks are SLURM tasks."""
    cfg, liquid, store = tiny_liquid(tmp_path)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(job_spec(liquid, str(store), cfg)))
    code = ("import json, sys; from campaign.execute import execute; "
            f"o = execute(json.load(open({str(spec)!r})), 2, 1, 'srun --mpi=pmi2'); "
            "print(o.status, o.reason); sys.exit(o.status != 'done')")
    t0 = time.time()
    res = subprocess.run(["sbatch", "--wait", "-n", "2", "--mem=2G", "-t", "00:10:00", "-o", str(tmp_path / "job.out"),
                          "--wrap", f"{sys.executable} -c \"{code}\""],
                         capture_output=True, text=True, timeout=300, cwd=os.getcwd())
    out = (tmp_path / "job.out").read_text() if (tmp_path / "job.out").exists() else ""
    print(f"sbatch -n 2 with srun --mpi=pmi2: {time.time() - t0:.1f} s")
    assert res.returncode == 0, res.stdout + res.stderr + out
    rec = store_records.read_all(str(store))[liquid.key]
    assert rec["status"] == "done" and rec["ranks"] == 2


@pytest.mark.parametrize("launcher", ["mpiexec", "srun --mpi=pmi2"])
def test_one_worker_job_runs_its_mpi_tasks_side_by_side(tmp_path, launcher):
    """Two 1-rank tasks in one 2-core worker job run at once (an srun step taking the whole
    allocation once made them wait for each other), and a 2-rank task gets both ranks."""
    from campaign.execute import launcher_command
    from campaign.slurm import slurm_cluster

    cfg, _, _ = tiny_liquid(tmp_path)
    argv = [*launcher_command(launcher), "-n", "{n}", sys.executable, "-c",
            "import time; from mpi4py import MPI; time.sleep(4); print(MPI.COMM_WORLD.size)"]
    with slurm_cluster(cfg) as client:
        client.wait_for_workers(1, timeout=120)
        t0 = time.time()
        pair = [client.submit(subprocess.run, [a.format(n=1) for a in argv], capture_output=True, text=True,
                              resources={"cores": 1}, pure=False) for _ in range(2)]
        pair = client.gather(pair)
        side_by_side = time.time() - t0
        two = client.submit(subprocess.run, [a.format(n=2) for a in argv], capture_output=True, text=True,
                            resources={"cores": 2}, pure=False).result()
    print(f"{launcher}: two 4 s tasks in {side_by_side:.1f} s")
    assert [r.stdout.split() for r in pair] == [["1"], ["1"]], [r.stderr for r in pair]
    assert side_by_side < 7.5
    assert two.returncode == 0 and two.stdout.count("2") == 2, two.stderr  # ranks' lines may interleave


def test_a_task_whose_workers_all_died_is_a_failure_not_a_crash(tmp_path):
    """max_task_retries 0: one scancel of the task's worker job fails the task with KilledWorker;
    the launcher's handler writes the failure record."""
    from campaign.cluster import lost
    from campaign.slurm import slurm_cluster

    cfg, liquid, store = tiny_liquid(tmp_path, max_task_retries=0)
    with slurm_cluster(cfg) as client:
        client.wait_for_workers(1, timeout=120)
        job = next(iter(client.run(os.getenv, "SLURM_JOB_ID").values()))
        fut = client.submit(time.sleep, 600, resources={"cores": 1}, pure=False, key=f"liquid-{liquid.key}")
        time.sleep(2)
        subprocess.run(["scancel", job], check=True)
        with pytest.raises(Exception) as err:
            fut.result(timeout=120)
    outcome = lost(err.value, [liquid.key], "liquid", str(store), "test")
    assert type(err.value).__name__ == "KilledWorker"
    assert outcome.reason.startswith("worker died 1 times")
    assert store_records.read_all(str(store))[liquid.key]["status"] == "failed"


def test_a_worker_job_slurm_holds_is_reported_and_runs_once_released(tmp_path, capfd):
    """A worker job SLURM keeps pending for a reason that needs someone (here submitted --hold)
    is reported on stderr while the launcher waits; released, its worker joins."""
    from campaign.slurm import slurm_cluster

    cfg, _, _ = tiny_liquid(tmp_path, job_extra_directives=["--hold"])
    err = ""
    with slurm_cluster(cfg) as client:
        deadline = time.time() + 60
        while "JobHeldUser" not in err and time.time() < deadline:
            time.sleep(1)
            err += capfd.readouterr().err
        held = [j for j, name, st in squeue() if name == "stz-smoke-cpu" and st == "PENDING"]
        subprocess.run(["scontrol", "release", *held], check=True)
        client.wait_for_workers(1, timeout=120)
    assert re.search(rf"worker job {held[0]} is pending: JobHeldUser", err), err


def test_workers_retire_before_their_walltime_and_are_replaced(tmp_path):
    """walltime 2 min, margin 80 s: each worker retires 8-40 s after it starts (dask's --lifetime),
    long before SLURM would kill its job; a new job takes its place, and tasks submitted all the
    while finish, none counted as a worker death (max_task_retries 0 would fail it)."""
    from campaign.slurm import slurm_cluster

    cfg, _, _ = tiny_liquid(tmp_path, walltime="00:02:00", worker_lifetime_margin="80s", max_task_retries=0)
    jobs, t0 = [], time.time()
    with slurm_cluster(cfg) as client:
        client.wait_for_workers(1, timeout=120)
        while len(set(jobs)) < 3 and time.time() - t0 < 300:
            run = client.submit(subprocess.run, ["bash", "-c", "sleep 2; echo $SLURM_JOB_ID"], capture_output=True,
                                text=True, resources={"cores": 1}, pure=False).result(timeout=120)
            jobs.append(run.stdout.strip())
    print(f"{len(jobs)} tasks in {time.time() - t0:.0f} s on worker jobs {sorted(set(jobs))}")
    assert len(set(jobs)) >= 3


# --- (b, c, d) the smoke campaign ---------------------------------------------

# both runs add the local yield stress of one specimen (one region per shear): it runs on SLURM too
LYS = {"lys": {"regions_per_axis": 1, "specimens": 1, "strain_step": 2.0e-3}}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The smoke campaign, uninterrupted, on the local cluster: the reference."""
    tmp = tmp_path_factory.mktemp("local")
    store, cfg_path = tmp / "smoke.zarr", tmp / "local.yaml"
    cfg_path.write_text(yaml.safe_dump({"preset": "smoke", **LYS}))
    t0 = time.time()
    res = subprocess.run([sys.executable, "-m", "campaign", "launch", "--store", str(store), "--cores", "2",
                          "--config", str(cfg_path)], capture_output=True, text=True, timeout=1200)
    return store, res, time.time() - t0


class Watch(threading.Thread):
    """Watches a SLURM launch: the queue, the dashboard, `campaign status`; cancels the running CPU
    worker job once ``cancel_after`` tasks are done."""

    def __init__(self, proc, store, cfg_path, cancel_after):
        super().__init__(daemon=True)
        self.proc, self.store, self.cfg_path, self.cancel_after = proc, store, cfg_path, cancel_after
        self.lines, self.seen, self.dashboard, self.status_out = [], {}, None, ""
        self.states = set()  # every (job id, state) squeue showed
        self.address, self.stranger = None, None  # the scheduler's address; what a stranger's client got
        self.cancelled = None  # (job id, seconds into the run, records done then)
        self.survivors = None
        self.t0 = time.time()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def run(self):
        while self.proc.poll() is None:
            for job, name, st in squeue():
                self.seen.setdefault(job, (name, st, round(time.time() - self.t0, 1)))
                self.states.add((job, st))
            link = next((ln.split()[1] for ln in self.lines if ln.startswith("dashboard: ")), None)
            if link and self.dashboard is None:
                try:
                    self.dashboard = urllib.request.urlopen(link, timeout=10).status
                except OSError as e:
                    self.dashboard = repr(e)
            recs = store_records.read_all(str(self.store)) if self.store.exists() else {}
            done = {k: r for k, r in recs.items() if r["status"] == "done"}
            if self.cancelled is None and len(done) >= self.cancel_after:
                self._status_and_cancel()
            time.sleep(1)

    def _status_and_cancel(self):
        running = [j for j, name, st in squeue() if name == "stz-smoke-cpu" and st == "RUNNING"]
        if not running:
            return
        self.status_out = subprocess.run([sys.executable, "-m", "campaign", "status", "--cluster", "slurm", "--config",
                                          str(self.cfg_path), "--store", str(self.store)],
                                         capture_output=True, text=True, timeout=120).stdout
        self._try_as_a_stranger()
        done = {k: r for k, r in store_records.read_all(str(self.store)).items() if r["status"] == "done"}
        subprocess.run(["scancel", running[0]], check=True)
        self.cancelled = (running[0], round(time.time() - self.t0, 1), done)
        deadline = time.time() + 20
        while time.time() < deadline:  # the job's processes, MPI ranks included, die with it
            self.survivors = [p.pid for p in psutil.process_iter() if _job_of(p) == running[0]]
            if not self.survivors:
                break
            time.sleep(0.5)


    def _try_as_a_stranger(self):
        """Connect to the running scheduler with credentials of one's own, as another user could."""
        from distributed import Client
        from distributed.security import Security

        with open(str(self.store)[:-5] + ".logs/scheduler.json") as f:
            self.address = json.load(f)["address"]
        try:
            with Client(self.address, security=Security.temporary(), timeout=10):
                self.stranger = "connected"
        except Exception as e:
            self.stranger = f"{type(e).__name__}: {e}"


def _job_of(p):
    try:
        return p.environ().get("SLURM_JOB_ID")
    except psutil.Error:
        return None


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory, local_run):
    """The smoke campaign on SLURM worker jobs, with its CPU worker job cancelled mid-run."""
    tmp = tmp_path_factory.mktemp("slurm")
    store = tmp / "smoke.zarr"
    cfg_path = tmp / "slurm.yaml"
    cfg_path.write_text(yaml.safe_dump({"preset": "smoke", **LYS, "cluster": {"dashboard_address": ":0",
                                                                             "slurm": SLURM}}))
    n_tasks = len(plan.plan(config.load("smoke", overrides=LYS)))
    proc = subprocess.Popen([sys.executable, "-m", "campaign", "launch", "--cluster", "slurm", "--config",
                             str(cfg_path), "--store", str(store)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watch = Watch(proc, store, cfg_path, cancel_after=n_tasks // 3)
    watch.start()
    try:
        proc.wait(timeout=1500)
    finally:
        if proc.poll() is None:
            proc.kill()
    watch.join(timeout=30)
    proc.stdout.close()  # read to its end by the watcher
    time.sleep(1)
    return store, proc.returncode, "".join(watch.lines), watch, time.time() - watch.t0


def test_smoke_campaign_on_slurm_workers_ends_like_a_local_run(local_run, slurm_run):
    local_store, local_res, local_s = local_run
    store, code, out, watch, seconds = slurm_run
    print(f"local run {local_s:.0f} s (exit {local_res.returncode}); SLURM run {seconds:.0f} s (exit {code}), "
          f"worker jobs {watch.seen}; CPU job cancelled {watch.cancelled and watch.cancelled[:2]}")
    assert "dashboard: http" in out
    assert code == local_res.returncode, out[-3000:]
    assert statuses(store) == statuses(local_store), out[-3000:]
    by_stage = state.by_stage(
        plan.plan(config.load("smoke", overrides=LYS)), {k: s for k, s in statuses(store).items()}
    )
    assert sum(by_stage["lys"].values()) == 6
    for stage in ("liquid", "quench", "shear", "lys"):
        assert set(by_stage[stage]) == {"done"}, (stage, by_stage[stage])


def test_worker_jobs_were_in_squeue_and_are_gone(slurm_run):
    _, _, _, watch, _ = slurm_run
    names = {name for name, _, _ in watch.seen.values()}
    assert "stz-smoke-cpu" in names
    assert any(st == "RUNNING" for _, st in watch.states)  # not only when first seen: jobs start PENDING
    assert not our_jobs()


def test_dashboard_answered_while_the_cluster_was_up(slurm_run):
    assert slurm_run[3].dashboard == 200


def test_the_campaign_ran_over_tls_and_a_stranger_was_refused(slurm_run):
    watch = slurm_run[3]
    assert watch.address and watch.address.startswith("tls://"), watch.address
    assert watch.stranger and watch.stranger != "connected" and "TLS" in watch.stranger, watch.stranger
    assert not os.path.exists(str(slurm_run[0])[:-5] + ".logs/tls")  # the credentials went with the launch


def test_status_showed_running_tasks_with_their_slurm_job(slurm_run):
    watch = slurm_run[3]
    jobs = re.findall(r"SLURM job (\d+) on", watch.status_out)
    assert jobs, watch.status_out
    assert set(jobs) == {watch.cancelled[0]}  # the one CPU worker job that was running then


def test_cancelled_worker_job_loses_nothing_finished(local_run, slurm_run):
    local_store = local_run[0]
    store, _, out, watch, _ = slurm_run
    assert watch.cancelled is not None, "no CPU worker job was running to cancel"
    job, at, done_then = watch.cancelled
    assert watch.survivors == [], f"processes of cancelled job {job} outlived it"
    later = [j for j, (name, _, t) in watch.seen.items() if name == "stz-smoke-cpu" and t > at]
    assert later, f"no CPU worker job replaced job {job}"
    after = store_records.read_all(str(store))
    for key, rec in done_then.items():  # finished work kept: still done, the same data
        assert after[key]["status"] == "done" and after[key]["checksums"] == rec["checksums"], key
    # a task whose record was written but whose result had not reached Dask when its worker
    # died runs again (same data, a new record); nothing else does
    again = [k for k, rec in done_then.items() if after[k]["time"] != rec["time"]]
    print(f"{len(done_then)} tasks done when job {job} was cancelled at {at} s; {len(again)} ran again")
    assert len(again) <= 2, again
    a, b = arrays(local_store), arrays(store)
    assert a.keys() == b.keys(), sorted(set(a) ^ set(b))[:20]
    differ = [path for path in a if a[path].shape != b[path].shape
              or not np.array_equal(a[path], b[path], equal_nan=a[path].dtype.kind in "fc")]
    assert differ == [], f"{len(differ)} of {len(a)} arrays differ from the local run's"
