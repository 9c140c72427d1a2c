"""The Dask cluster a campaign runs on."""
from __future__ import annotations

import contextlib
import os

RESOURCE = "cores"  # Dask worker resource: cores a task's MPI ranks x threads occupy


@contextlib.contextmanager
def local_cluster(cfg: dict):
    """A distributed.LocalCluster in this process: one worker whose threads only
    wait on MPI subprocesses, with ``cores`` of the ``cores`` resource."""
    from distributed import Client, LocalCluster

    cores = cfg["cluster"]["cores"] or os.cpu_count()
    with LocalCluster(n_workers=1, threads_per_worker=cores, processes=False,
                      resources={RESOURCE: cores}, dashboard_address=cfg["cluster"]["dashboard_address"],
                      silence_logs=40) as cluster, Client(cluster) as client:
        yield client


def open_cluster(cfg: dict):
    if cfg["cluster"]["kind"] == "local":
        return local_cluster(cfg)
    raise NotImplementedError(f"cluster.kind '{cfg['cluster']['kind']}' is not available in this version")
