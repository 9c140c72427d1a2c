"""Dask on SLURM (``cluster.kind: slurm``): the campaign's workers as SLURM jobs, with dask-jobqueue.

Two pools of worker jobs share one Dask scheduler, which runs in the launcher:

- CPU jobs (``cluster.slurm.cores`` cores each): one Dask worker per job with ``cores``
  threads and ``cores`` of the ``cores`` resource. A task asks for ranks x threads of it,
  so an MPI task only lands where its ranks fit; the worker's threads only wait on the
  ``mpiexec`` (or ``srun``) they start inside the job's allocation.
- GPU jobs (``cluster.slurm.gpu_jobs``, 0 = none): one worker per job offering
  ``gpus_per_job`` of the ``GPU`` resource and no ``cores``, so MD tasks (which ask for
  ``cores``) never land there and training tasks (which ask for ``GPU``) do.

dask-jobqueue builds one scheduler per cluster object and has no second job class. The CPU
pool is a SLURMCluster (its scheduler runs here); the GPU pool (:class:`GpuPool`) submits
dask-jobqueue's SLURMJob with the GPU settings, pointed at that scheduler's address.

A worker job that ends (walltime, ``scancel``, a lost node) loses the tasks it was running:
the scheduler gives them to other workers, up to ``max_task_retries`` deaths per task, and
:func:`keep_jobs` submits a job in its place. Workers retire ``worker_lifetime_margin``
before their walltime (dask's ``--lifetime``), which hands their tasks back without counting
as a death. The store is the only record of what is done, so nothing finished is lost.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import sys
import time

from campaign.config import worker_lifetime
from campaign.resources import CORES, GPU, MEMORY, worker_memory
from campaign.values import walltime_seconds

QUEUE_CHECK_S = 10.0  # how often squeue is asked which worker jobs SLURM still knows

# In a worker job, MPI programs share the job's CPUs the way Dask's 'cores' resource divides
# them. Without these, MPICH's mpiexec starts its ranks through an srun step, which takes the
# whole allocation, so a worker's tasks ran one at a time ("step creation temporarily disabled").
PROLOGUE = (
    "export HYDRA_BOOTSTRAP=fork  # mpiexec: ranks on this node (a worker job is one node)",
    "export SLURM_OVERLAP=1       # srun steps (mpi.launcher srun ...) share the job's CPUs",
)

def walltime_text(seconds: int) -> str:
    """Seconds as SLURM's 'HH:MM:SS', or 'D-HH:MM:SS' from a day on."""
    days, rest = divmod(int(seconds), 86400)
    hms = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{hms}" if days else hms


# --- job scripts --------------------------------------------------------------

def log_directory(cfg: dict) -> str:
    """Where the worker jobs' output goes: ``log_directory``, or ``<store>.logs/slurm``."""
    from store import layout

    s = cfg["cluster"]["slurm"]
    return os.path.abspath(s["log_directory"]) if s["log_directory"] else layout.log_path(cfg["store"], "slurm")


def scheduler_file(cfg: dict) -> str:
    """The scheduler's address while a launch runs (read by ``campaign status``), beside the store."""
    from store import layout

    return layout.log_path(cfg["store"], "scheduler.json")


def job_kwargs(cfg: dict, pool: str = "cpu", security=None) -> dict:
    """Keyword arguments of dask-jobqueue's SLURMJob / SLURMCluster for the 'cpu' or 'gpu' pool;
    with a ``security`` (campaign.security), workers speak TLS with its files."""
    s = cfg["cluster"]["slurm"]
    lifetime, stagger = worker_lifetime(s)
    extra = ["--lifetime", f"{lifetime}s", "--lifetime-stagger", f"{stagger}s"] if s["worker_lifetime_margin"] else []
    directives = list(s["job_extra_directives"])
    if pool == "cpu":
        queue, resources = s["queue"], f"{CORES}={s['cores']},{MEMORY}={worker_memory(cfg):.0f}"
    else:
        queue, resources = s["gpu_queue"] or s["queue"], f"{GPU}={s['gpus_per_job']},{MEMORY}={worker_memory(cfg):.0f}"
        directives += list(s["gpu_extra_directives"])
        if not any(re.match(r"--(gres|gpus)", d.strip()) for d in directives):
            directives.append(f"--gres=gpu:{s['gpus_per_job']}")
    return dict(cores=s["cores"], processes=1, memory=s["memory"], queue=queue, account=s["account"],
                walltime=walltime_text(walltime_seconds(s["walltime"])), interface=s["interface"],
                job_name=f"stz-{cfg['preset']}-{pool}", job_extra_directives=directives,
                worker_extra_args=["--resources", resources, *extra], job_script_prologue=list(PROLOGUE),
                log_directory=log_directory(cfg), python=sys.executable, security=security,
                protocol="tls://" if security is not None else None)


def job_scripts(cfg: dict) -> dict[str, str]:
    """The sbatch scripts of the worker jobs, by pool ('cpu', and 'gpu' when gpu_jobs > 0),
    as dask-jobqueue writes them (the scheduler address is a placeholder). No scheduler starts."""
    from dask_jobqueue.slurm import SLURMJob

    from campaign.security import security

    pools = ["cpu"] + (["gpu"] if cfg["cluster"]["slurm"]["gpu_jobs"] > 0 else [])
    sec = security(cfg)
    address = ("tls" if sec is not None else "tcp") + "://<scheduler>:8786"
    made = []  # SLURMJob creates the log directory: leave none behind that was not there
    path = log_directory(cfg)
    while not os.path.exists(path):
        made.append(path)
        path = os.path.dirname(path)
    try:
        return {pool: SLURMJob(scheduler=address, name=f"{pool}-0", **job_kwargs(cfg, pool, sec)).job_script()
                for pool in pools}
    finally:
        for path in made:
            with contextlib.suppress(OSError):
                os.rmdir(path)


# --- the clusters -------------------------------------------------------------

class GpuPool:
    """``gpu_jobs`` GPU worker jobs on the CPU cluster's scheduler, kept submitted.

    Each is dask-jobqueue's SLURMJob (what a SLURMCluster submits) with the GPU pool's settings,
    pointed at the running scheduler's address. Not a second SLURMCluster: a scheduler keeps one
    cluster manager's worker-status subscription (plugin 'worker-status'), so a second cluster
    would blind the first one's scaling. A job that leaves the queue (walltime, scancel) is
    replaced by one with a new worker name. Its coroutines run on the CPU cluster's loop.
    """

    def __init__(self, cfg: dict, address: str, security=None):
        self.n, self.address = cfg["cluster"]["slurm"]["gpu_jobs"], address
        self.kwargs = job_kwargs(cfg, "gpu", security)
        self.jobs: dict[str, object] = {}  # worker name -> SLURMJob
        self.count = 0
        self.closed = False
        self.reported: set = set()  # (job id, pending reason) already reported

    async def _submit(self) -> None:
        from dask_jobqueue.slurm import SLURMJob

        name, self.count = f"gpu-{self.count}", self.count + 1
        job = SLURMJob(scheduler=self.address, name=name, **self.kwargs)
        await job  # sbatch
        if self.closed:  # closed while sbatch ran
            await job.close()
        else:
            self.jobs[name] = job

    async def start(self) -> None:
        while len(self.jobs) < self.n:
            await self._submit()

    async def check(self) -> None:
        """Replace the jobs SLURM no longer knows (asked after they were submitted)."""
        if self.closed:
            return
        jobs = dict(self.jobs)
        queued = await _queue()
        if queued is None or self.closed:
            return
        report_stuck(queued, [job.job_id for job in jobs.values()], self.reported)
        for name, job in jobs.items():
            if job.job_id not in queued:
                del self.jobs[name]
        await self.start()

    async def close(self) -> None:
        self.closed = True
        for job in list(self.jobs.values()):
            await job.close()  # scancel
        self.jobs.clear()


def _require_slurm(cfg: dict) -> None:
    if shutil.which("sbatch") is None:
        raise RuntimeError("'cluster.kind' is slurm but 'sbatch' is not on PATH: run on a SLURM login node")
    interface = cfg["cluster"]["slurm"]["interface"]
    if interface:
        import psutil

        if interface not in psutil.net_if_addrs():
            raise RuntimeError(f"'cluster.slurm.interface' ({interface}) is not a network interface of this "
                               f"host (it has {', '.join(sorted(psutil.net_if_addrs()))})")


async def _queue() -> dict[str, tuple[str, str]] | None:
    """This user's jobs that SLURM still knows (pending, running, completing), as job id ->
    (state, reason); None if squeue fails."""
    proc = await asyncio.create_subprocess_exec("squeue", "--me", "-h", "-o", "%i %T %r",
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        return None
    rows = (line.split(None, 2) for line in out.decode().splitlines() if line.strip())
    return {row[0]: (row[1], row[2] if len(row) > 2 else "") for row in rows}


# Why a job may wait that needs no one's attention; any other pending reason (held, launch
# failed, a partition down, an account or QOS limit) is reported once by report_stuck.
WAITING = {"None", "Priority", "Resources", "BeginTime", "Dependency", "Prolog", "Reservation"}


def report_stuck(queue: dict, job_ids, reported: set) -> list[str]:
    """One line on stderr for each of ``job_ids`` that SLURM keeps pending for a reason not
    in WAITING, once per (job, reason); returns the lines. A campaign whose worker jobs cannot
    start would otherwise wait in silence."""
    lines = []
    for job in job_ids:
        st, reason = queue.get(job, ("", ""))
        if st == "PENDING" and reason not in WAITING and (job, reason) not in reported:
            reported.add((job, reason))
            lines.append(f"worker job {job} is pending: {reason}. SLURM will not start it as it stands "
                         f"(scontrol show job {job}; sinfo -R)")
    for line in lines:
        print(line, file=sys.stderr, flush=True)
    return lines


def keep_jobs(cluster, interval_s: float = 2.0) -> None:
    """Keep ``cluster`` at its planned worker jobs: submit a job in place of one that ended, and
    report a job that SLURM will not start (:func:`report_stuck`).

    SpecCluster forgets a job whose worker left (after ``distributed.deploy.lost-worker-timeout``)
    but submits a new one only when it is next scaled; a job cancelled before its worker ever
    connected it never forgets. This periodic callback on the cluster's loop does both.
    """
    from distributed.core import Status
    from tornado.ioloop import PeriodicCallback

    connected_jobs: set[str] = set()  # jobs whose worker has connected
    known: dict[str, float] = {}      # job id -> when keep_jobs first saw it
    reported: set = set()             # (job id, pending reason) already reported
    last_queue_check = [0.0]

    async def check():
        if cluster.status != Status.running:
            return
        names = {w.get("name") for w in cluster.scheduler_info.get("workers", {}).values()}
        now = time.monotonic()
        for name, job in cluster.workers.items():
            if job.job_id:
                known.setdefault(job.job_id, now)
                if name in names:
                    connected_jobs.add(job.job_id)
        if now - last_queue_check[0] > QUEUE_CHECK_S:
            last_queue_check[0] = now
            queued = await _queue()
            if queued is not None:
                report_stuck(queued, [job.job_id for job in cluster.workers.values() if job.job_id], reported)
            for name, job in list(cluster.workers.items()):
                if (queued is not None and job.job_id and job.job_id not in connected_jobs
                        and job.job_id not in queued and known.get(job.job_id, now) < now):
                    del cluster.workers[name]  # left the queue without ever running a worker
                    await job.close()
        if set(cluster.worker_spec) - set(cluster.workers) and cluster.status == Status.running:
            await cluster._correct_state()  # SpecCluster's own way to match its worker spec

    pc = PeriodicCallback(check, interval_s * 1000)
    cluster.periodic_callbacks["keep-jobs"] = pc  # stopped by cluster.close()
    cluster.loop.add_callback(pc.start)


def _spare_busy_workers():
    """A scheduler plugin for adaptive scaling: never retire a worker that is running a task (an
    MD task would start again from scratch elsewhere) nor a GPU worker (a fixed pool)."""
    from distributed.diagnostics.plugin import SchedulerPlugin

    class SpareBusyWorkers(SchedulerPlugin):
        name = "stz-spare-busy-workers"

        def valid_workers_downscaling(self, scheduler, workers):
            return [ws for ws in workers if not ws.processing and GPU not in ws.resources]

    return SpareBusyWorkers()


@contextlib.contextmanager
def slurm_cluster(cfg: dict):
    """A distributed.Client on SLURM worker jobs: CPU jobs (fixed ``jobs``, or adaptive between
    ``minimum_jobs`` and ``maximum_jobs``) and ``gpu_jobs`` GPU jobs, on one scheduler in this
    process, every connection TLS unless ``cluster.slurm.security`` is false (campaign.security).
    The jobs are cancelled and the temporary credentials removed when the block ends, however it
    ends."""
    from dask_jobqueue import SLURMCluster
    from distributed import Client
    from tornado.ioloop import PeriodicCallback

    from campaign.security import credentials

    _require_slurm(cfg)
    s = cfg["cluster"]["slurm"]
    sched_file = scheduler_file(cfg)
    os.makedirs(os.path.dirname(sched_file), exist_ok=True)
    scheduler_options = {"dashboard_address": cfg["cluster"]["dashboard_address"],
                         "allowed_failures": s["max_task_retries"], "scheduler_file": sched_file,
                         "plugins": [_spare_busy_workers()]}
    with contextlib.ExitStack() as stack:
        security = stack.enter_context(credentials(cfg))
        stack.callback(lambda: os.path.exists(sched_file) and os.remove(sched_file))
        cpu = stack.enter_context(SLURMCluster(name="cpu", scheduler_options=scheduler_options,
                                               silence_logs="error", **job_kwargs(cfg, "cpu", security)))
        client = stack.enter_context(Client(cpu, security=security))
        if s["gpu_jobs"] > 0:
            pool = GpuPool(cfg, cpu.scheduler.address, security)
            stack.callback(cpu.sync, pool.close)  # before the CPU cluster closes
            cpu.sync(pool.start)
            cpu.periodic_callbacks["gpu-pool"] = pc = PeriodicCallback(pool.check, QUEUE_CHECK_S * 1000)
            cpu.loop.add_callback(pc.start)
        if s["adaptive"]:
            cpu.adapt(minimum_jobs=s["minimum_jobs"], maximum_jobs=s["maximum_jobs"])
        else:
            cpu.scale(jobs=s["jobs"])
        keep_jobs(cpu)
        yield client


# --- what runs where, for ``campaign status`` ----------------------------------

def _worker_report(dask_worker) -> dict:
    """Run on each worker: its SLURM job, host, and the tasks it is executing now."""
    import socket

    return {"job": os.environ.get("SLURM_JOB_ID"), "name": str(dask_worker.name), "host": socket.gethostname(),
            "executing": sorted(str(ts.key) for ts in dask_worker.state.executing)}


def running_tasks(cfg: dict, timeout_s: float = 5.0) -> dict[str, dict] | None:
    """Tasks executing now, by Dask key ('stage-key'): {"job": SLURM job id, "name": worker, "host"}.
    None when no launch is running (no scheduler file, or its scheduler does not answer)."""
    import json

    path = scheduler_file(cfg)
    try:
        with open(path) as f:
            address = json.load(f)["address"]
    except (OSError, ValueError, KeyError):
        return None
    from distributed import Client

    from campaign.security import security

    try:
        with Client(address, timeout=timeout_s, set_as_default=False, security=security(cfg)) as client:
            reports = client.run(_worker_report, on_error="return")
    except (OSError, TimeoutError):
        return None
    out = {}
    for report in reports.values():
        if isinstance(report, dict):
            for key in report["executing"]:
                out[key] = {k: report[k] for k in ("job", "name", "host")}
    return out
