"""A stage is one task class and one job: the plan, the job a task runs, its dependency edges,
its place in the store and its label all come from the class."""
import importlib
import inspect
import pkgutil
import sys
import textwrap
import threading
from dataclasses import dataclass
from typing import ClassVar

import pytest

import jobs
from campaign import config, dispatch, plan, state
from campaign.resources import local_worker
from campaign.tasks import STAGES, Task, upstream
from jobs.common import Job
from store import lock, records

TOY_JOBS = '''
from dataclasses import dataclass

import numpy as np
from jobs.common import Job, Params, Seq
from store import layout


@dataclass(frozen=True, kw_only=True)
class SquareParams(Params):
    specimen: int


class SquareJob(Job):
    """Writes its specimen's number squared."""
    Params = SquareParams

    def run(self):
        if self.rank0:
            layout.write_arrays(self.fresh_group(), {"square": np.array([self.p.specimen ** 2])})
        self.finish()


@dataclass(frozen=True, kw_only=True)
class SumParams(Params):
    square_keys: Seq


class SumJob(Job):
    """Adds up the squares of its inputs."""
    Params = SumParams

    def run(self):
        if self.rank0:
            total = sum(int(self.input(k, ("square",))["square"][0]) for k in self.p.square_keys)
            layout.write_arrays(self.fresh_group(), {"total": np.array([total])})
        self.finish()
'''


@pytest.fixture
def toy_stages():
    """Two stages defined here and nothing else: squares of each specimen's number, and their sum."""
    @dataclass(frozen=True)
    class Square(Task):
        STAGE: ClassVar[str] = "toy-square"
        VERSION: ClassVar[int] = 1
        JOB: ClassVar[str] = "toy_jobs:SquareJob"
        PLACE: ClassVar[str] = "toy/s{specimen:03d}"
        LABEL: ClassVar[str] = "square s{specimen:03d}"
        RESOURCES: ClassVar[str] = "serial"
        specimen: int

        @classmethod
        def plan(cls, cfg, planned):
            return [cls(specimen=q.specimen) for q in planned["quench"]]

    @dataclass(frozen=True)
    class Sum(Task):
        STAGE: ClassVar[str] = "toy-sum"
        VERSION: ClassVar[int] = 1
        JOB: ClassVar[str] = "toy_jobs:SumJob"
        PLACE: ClassVar[str] = "toy/sum"
        LABEL: ClassVar[str] = "sum of squares"
        RESOURCES: ClassVar[str] = "serial"
        square_keys: tuple = upstream("keys")

        @classmethod
        def plan(cls, cfg, planned):
            return [cls(square_keys=tuple(t.key for t in planned["toy-square"]))]

    yield Square, Sum
    del STAGES["toy-square"], STAGES["toy-sum"]


def test_a_toy_stage_needs_one_task_class_and_one_job(toy_stages, tmp_path, monkeypatch):
    from distributed import Client, LocalCluster

    (tmp_path / "toy_jobs.py").write_text(textwrap.dedent(TOY_JOBS))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{':'.join(sys.path)}")  # where the job's process finds it
    store = str(tmp_path / "s.zarr")
    cfg = config.load("smoke", overrides={"store": store})
    tasks = plan.plan(cfg)
    toys = [t for t in tasks if t.STAGE.startswith("toy")]
    squares, (total,) = toys[:-1], toys[-1:]
    assert len(squares) == cfg["quench"]["specimens"] and set(total.deps) == {t.key for t in squares}
    assert total.path == f"toy/sum/{total.key}" and squares[1].label == "square s001"
    state.init_store(store, cfg, tasks, config.science_hash(cfg), "test")
    states = state.task_states(tasks, store, cfg)
    with lock.StoreLock(store, 600) as held, \
            LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0",
                         resources=local_worker(cfg, 2)) as cluster, Client(cluster) as client:
        import io
        runner = threading.Thread(target=dispatch.run, args=(client, cfg, tasks, toys, states, store, io.StringIO(),
                                                            held))
        runner.start()
        runner.join(120)
    assert all(states[t.key] == state.DONE for t in toys)
    want = sum(k * k for k in range(cfg["quench"]["specimens"]))
    assert records.read_checked(store, total.key, ("total",))["total"][0] == want


def test_every_stage_has_a_job_and_every_job_a_stage():
    import campaign.stages  # noqa: F401

    named = {}
    for stage, cls in STAGES.items():
        module, name = cls.JOB.split(":")
        job = getattr(importlib.import_module(module), name)
        assert issubclass(job, Job), f"stage {stage}: {cls.JOB} is not a Job"
        named[job] = stage
    defined = set()
    for info in pkgutil.iter_modules(jobs.__path__):
        if info.name == "__main__":
            continue
        module = importlib.import_module(f"jobs.{info.name}")
        defined |= {obj for _, obj in inspect.getmembers(module, inspect.isclass)
                    if issubclass(obj, Job) and obj is not Job and obj.__module__ == module.__name__}
    assert defined == set(named), f"jobs without a stage: {defined - set(named)}"


def test_every_stage_names_its_place_label_and_resources():
    import campaign.stages  # noqa: F401
    from campaign.tasks import RESOURCES

    cfg = config.load("smoke")
    for t in plan.plan(cfg):
        assert t.path.endswith(t.key) and not t.place.startswith(("/", records.TASKS)) and ".." not in t.place
        assert t.label and t.RESOURCES in RESOURCES


def test_a_parameter_two_fields_would_give_the_job_is_an_error():
    from campaign.tasks import Section

    @dataclass(frozen=True)
    class Clash(Task):
        seed: int
        train: Section

    with pytest.raises(ValueError, match="'seed' comes from two"):
        Clash(seed=1, train=Section.of({"seed": 2})).params()
    assert Clash(seed=1, train=Section.of({"epochs": 2})).params() == {"seed": 1, "epochs": 2}


def test_no_stage_field_hides_what_every_task_has():
    """A field named like a Task attribute (path, key, label, ...) replaces it on that stage's tasks: the
    softening's 'path' field did, and its jobs were sent a section for their group in the store."""
    from dataclasses import fields

    from campaign import tasks

    base = {name for name in dir(tasks.Task) if not name.startswith("_")}
    hidden = {cls.STAGE: sorted({f.name for f in fields(cls)} & base) for cls in tasks.STAGES.values()}
    assert {stage: names for stage, names in hidden.items() if names} == {}
    for cls in tasks.STAGES.values():
        assert isinstance(vars(tasks.Task)["path"], property) and "path" not in vars(cls)
