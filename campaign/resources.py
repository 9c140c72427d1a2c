"""What a job asks of a Dask worker, and what a worker offers: cores (MPI ranks x threads), a GPU, and
memory (the job's peak, ``Task.memory_bytes``), so that no worker starts more than it holds and no
campaign is launched whose jobs a SLURM worker job could not hold."""
from __future__ import annotations

from campaign.config import ConfigError
from campaign.tasks import PROCESS_BYTES

CORES = "cores"     # a task's MPI ranks x threads
MEMORY = "memory"   # bytes a task's job holds at its peak
GPU = "GPU"         # the GPU pool's workers offer it (campaign.slurm)
LOCAL_MEMORY_SHARE = 0.8  # of this machine's memory, for the local cluster's worker: at 0.9 two 10.2 GiB structure jobs
                          # started together on 23.5 GiB and left 1 GiB free (the rehearsal)


def worker_memory(cfg: dict) -> float:
    """Bytes of memory one worker offers its tasks: a SLURM worker job's request (cluster.slurm.memory), or
    LOCAL_MEMORY_SHARE of this machine's."""
    if cfg["cluster"]["kind"] == "slurm":
        from dask.utils import parse_bytes
        return float(parse_bytes(cfg["cluster"]["slurm"]["memory"]))
    import psutil
    return LOCAL_MEMORY_SHARE * psutil.virtual_memory().total


def local_worker(cfg: dict, cores: int) -> dict:
    """The resources of the local cluster's one worker: ``cores`` cores and this machine's memory."""
    return {CORES: cores, MEMORY: worker_memory(cfg)}


def job_memory(group: list, cfg: dict) -> float:
    """Peak bytes of one job running ``group`` (tasks batched into one job, usually one): its tasks'
    ``memory_bytes``, their processes counted once."""
    return sum(t.memory_bytes(cfg) for t in group) - (len(group) - 1) * PROCESS_BYTES


def resources(group: list, cfg: dict, gpu: bool) -> dict:
    """The Dask resources the job of ``group`` holds: a GPU where the cluster has GPU workers (``gpu``) and
    its tasks want one (``Task.wants_gpu``), else its cores; and its peak memory."""
    first = group[0]
    if gpu and first.wants_gpu:
        return {GPU: 1, MEMORY: job_memory(group, cfg)}
    ranks, threads = first.cores(cfg)
    return {CORES: ranks * threads, MEMORY: job_memory(group, cfg)}


def check_memory(groups: list[list], cfg: dict) -> None:
    """Refuse, before anything runs, a campaign with a job that needs more memory than a worker offers: on
    SLURM it would be killed on its node hours later."""
    offered = worker_memory(cfg)
    for group in groups:
        need = job_memory(group, cfg)
        if need > offered:
            where = ("'cluster.slurm.memory' (" + cfg["cluster"]["slurm"]["memory"] + ")"
                     if cfg["cluster"]["kind"] == "slurm" else f"this machine ({offered / 2**30:.1f} GiB usable)")
            raise ConfigError(
                f"stage {group[0].STAGE}: a job ({group[0].label}) needs about {need / 2**30:.1f} GiB at its peak, "
                f"more than {where} offers; ask for at least {need * 1.1 / 1e9:.0f}GB per worker job"
                + (
                    ", or choose a sparse eigensolver ('features.eigensolver')"
                    if group[0].STAGE in ("structure", "response")
                    else ""
                )
            )
