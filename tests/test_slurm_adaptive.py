"""Adaptive CPU worker jobs on the slurm tier's one-node SLURM (cluster.slurm.adaptive)."""
import subprocess
import threading
import time

import pytest

from campaign import config

from slurm_cluster import SLURM, TINY, squeue

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm")]  # the probe: tests/slurm_cluster.py


def test_adaptive_jobs_grow_while_tasks_wait_and_shrink_when_done(tmp_path):
    """cluster.slurm.adaptive with 1-core jobs between 0 and 2 (the node's 2 CPUs): with tasks
    waiting the CPU pool grows past one job, it returns to none when they are done, and every
    task runs exactly once (a retired busy worker would run one twice: campaign.slurm spares them)."""
    from campaign.slurm import slurm_cluster

    cfg = config.load("smoke", overrides={
        **TINY, "store": str(tmp_path / "t.zarr"), "mpi": {"ranks": 1},
        "cluster": {"kind": "slurm", "dashboard_address": ":0",
                    "slurm": {**SLURM, "cores": 1, "memory": "1GB", "adaptive": True, "minimum_jobs": 0,
                              "maximum_jobs": 2, "max_task_retries": 0}}})
    log = tmp_path / "runs"
    log.mkdir()
    # one prefix, as the launcher's keys: once one has run, dask knows the rest are long and asks for more
    durations = [12, 12, 12, 12, 30, 4]
    seen, t0 = [], time.time()

    def sample():
        while not stop.is_set():
            seen.append((round(time.time() - t0, 1),
                         sorted(j for j, name, st in squeue() if name == "stz-smoke-cpu" and st == "RUNNING")))
            time.sleep(1)

    stop = threading.Event()
    sampler = threading.Thread(target=sample, daemon=True)
    cmd = 'echo "$SLURM_JOB_ID $(date +%s)" >> {log}/{i}; sleep {s}; echo $SLURM_JOB_ID'
    with slurm_cluster(cfg) as client:
        sampler.start()
        futures = [client.submit(subprocess.run, ["bash", "-c", cmd.format(log=log, i=i, s=s)], capture_output=True,
                                 text=True, resources={"cores": 1}, pure=False, key=f"liquid-{i}")
                   for i, s in enumerate(durations)]
        ran_on = [f.result(timeout=300).stdout.strip() for f in futures]
        del futures  # as the launcher does: a worker that holds a result the client still wants stays up
        done_at = time.time() - t0
        deadline = time.time() + 60
        while len(client.scheduler_info()["workers"]) > 0 and time.time() < deadline:
            time.sleep(1)
        left = len(client.scheduler_info()["workers"])
    stop.set()
    sampler.join(timeout=5)
    peak = max(len(jobs) for _, jobs in seen)
    print(f"tasks done at {done_at:.0f} s on jobs {ran_on}; running jobs over time {seen}")
    assert peak == 2, f"the pool never grew to maximum_jobs: {seen}"
    assert left == 0, f"{left} worker(s) still up 60 s after the last task: the pool did not shrink"
    assert all(len((log / str(i)).read_text().splitlines()) == 1 for i in range(len(durations))), \
        {i: (log / str(i)).read_text() for i in range(len(durations))}
    assert len(set(ran_on)) >= 2
