"""Helpers shared by the test modules, and the smoke campaign the slow modules share."""
import time

import pytest

pytest_plugins = [
    "lammps_systems",  # the fixtures pot, asymmetric and lammps_runs (LAMMPS's test systems)
    "slurm_cluster",  # the fixture slurm (the slurm tier's cluster, probed once)
]


class OneRank:
    """An MPI communicator of one rank, for running a job's methods in the test process."""

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1

    def bcast(self, obj, root=0):
        return obj

    def gather(self, obj, root=0):
        return [obj]


def planned_params(stage: str, overrides: dict) -> dict:
    """The params the campaign sends the job of the first ``stage`` task that the smoke preset, with
    ``overrides``, plans (``campaign.dispatch.group_spec``: its fields and runtime options)."""
    from campaign import config, dispatch, plan

    cfg = config.load("smoke", overrides=overrides)
    task = next(t for t in plan.plan(cfg) if t.STAGE == stage)
    return dispatch.group_spec([task], "x.zarr", cfg)["params"]


def run_on_a_quench(job_class, tmp_path, positions, cell, types, stage: str, params: dict) -> str:
    """Run ``job_class`` (a job reading one quench, params "quench_key" "q") as task "k" of ``stage`` on a
    fresh store holding the quench (positions, cell, types) with its record; returns the store's path."""
    import zarr

    from jobs.common import Spec
    from store import layout, records

    store = str(tmp_path / "s.zarr")
    g = zarr.open_group(store, mode="w").require_group("quenched/q")
    layout.write_arrays(g, {"positions": positions, "cell": cell, "types": types})
    records.write(store, "q", records.DONE, "test", stage="quench", path="quenched/q", checksums=records.checksums(g))
    params = {"quench_key": "q", **params}
    job_class(Spec(stage=stage, job=f"{job_class.__module__}:{job_class.__name__}", key="k", store=store,
                   code_version="test", params=params, path=f"{stage}/k", described={"stage": stage, **params}),
              OneRank()).run()
    return store


def flip_a_byte(path, at: int | None = None) -> None:
    """Damage a file: one byte (the middle one unless ``at``) inverted."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[len(data) // 2 if at is None else at] ^= 0xFF
    with open(path, "wb") as f:
        f.write(bytes(data))


@pytest.fixture(scope="session")
def full_run(tmp_path_factory):
    """The smoke campaign, launched once for every slow module: (store, the launch's result, seconds)."""
    from smoke_campaign import launch

    store = tmp_path_factory.mktemp("full") / "smoke.zarr"
    t0 = time.time()
    res = launch(store)
    return store, res, time.time() - t0
