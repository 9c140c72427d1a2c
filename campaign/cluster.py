"""The Dask cluster a campaign runs on: a local one, or worker jobs on SLURM (campaign.slurm)."""
from __future__ import annotations

import contextlib
import os

from campaign.resources import local_worker


@contextlib.contextmanager
def local_cluster(cfg: dict):
    """A distributed.LocalCluster in this process: one worker whose threads only
    wait on MPI subprocesses, with ``cores`` of the ``cores`` resource and this machine's memory (less a
    margin) of the ``memory`` resource, so that two jobs of 10 GB do not start together on a 16 GB machine."""
    from distributed import Client, LocalCluster

    cores = cfg["cluster"]["cores"] or os.cpu_count()
    with LocalCluster(n_workers=1, threads_per_worker=cores, processes=False,
                      resources=local_worker(cfg, cores), dashboard_address=cfg["cluster"]["dashboard_address"],
                      silence_logs=40) as cluster, Client(cluster) as client:
        yield client


def open_cluster(cfg: dict):
    """A context manager yielding a connected distributed.Client on the configured cluster."""
    if cfg["cluster"]["kind"] == "local":
        return local_cluster(cfg)
    if cfg["cluster"]["kind"] == "slurm":
        from campaign.slurm import slurm_cluster

        return slurm_cluster(cfg)
    raise NotImplementedError(f"cluster.kind '{cfg['cluster']['kind']}' is not available in this version")


def declares_gpu_pool(cfg: dict) -> bool:
    """Whether the configuration asks for GPU workers (they may still wait in a queue)."""
    return cfg["cluster"]["kind"] == "slurm" and cfg["cluster"]["slurm"]["gpu_jobs"] > 0


def lost(error: BaseException, members: list[str], stage: str, store: str, code_version: str):
    """The outcome of a task the cluster lost, not the job: its workers died (KilledWorker after
    ``max_task_retries``), or its future failed in the cluster. Every member gets a failure
    record with the reason, so that ``status`` shows it and the next launch runs it again;
    returns its ``campaign.outcome.Outcome``."""
    from campaign.outcome import Outcome
    from store import records

    deaths = getattr(error, "allowed_failures", None) if type(error).__name__ == "KilledWorker" else None
    if deaths is not None:
        last = getattr(getattr(error, "last_worker", None), "address", "?")
        reason = f"worker died {deaths + 1} times while running it (KilledWorker; last on {last})"
    else:
        reason = f"lost by the cluster: {type(error).__name__}: {str(error).strip()[:500]}"
    for key in members:
        records.write(store, key, records.FAILED, code_version, stage=stage, reason=reason)
    return Outcome.failed({k: records.FAILED for k in members}, 0.0, reason)
