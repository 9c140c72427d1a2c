"""Progress you can see: a job of known constant rate on a real local Dask cluster, run by the
launcher's own loop, shown by ``status`` while it runs, and not once it is gone."""
import contextlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

from campaign import config, dispatch, plan, state
from campaign.outcome import Outcome
from campaign.resources import local_worker
from campaign.status import status
from store import layout, lock, records

STEPS, STEP_S = 30, 0.1  # the fake job: 30 steps of 0.1 s


def fake_execute(spec, ranks, threads, launcher):
    """In place of campaign.execute.execute: a job that reports its progress as the real ones do
    (jobs.common.Progress), at a constant rate, then writes its record."""
    code = ("import sys, time, json; from jobs.common import Progress, Spec; "
            f"p = Progress(Spec(**json.loads(sys.argv[1])), every_s=0)\n"
            f"for i in range({STEPS}):\n    time.sleep({STEP_S}); p(i + 1, {STEPS}, 'steps', temperature_K=300)")
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(spec)],
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    fake_execute.proc = proc
    code = proc.wait()
    with contextlib.suppress(FileNotFoundError):  # as execute() does when a job ends
        os.remove(layout.progress_path(spec["store"], spec["key"]))
    status_ = records.DONE if code == 0 else records.FAILED
    records.write(spec["store"], spec["key"], status_, "test", stage=spec["stage"], reason=f"exit {code}")
    return Outcome(status_, {spec["key"]: status_}, time.time() - t0, reason=f"exit {code}")


class Terminal(io.StringIO):
    def isatty(self):
        return True


def run_one(tmp_path, monkeypatch, out, kill=False):
    """The launcher's loop on a real LocalCluster, running the liquid task with the fake job;
    ``status`` taken once the job reports and again a second later (then the job is killed, if
    asked), and once more after the loop. Returns (status texts, launcher output)."""
    from distributed import Client, LocalCluster

    store = str(tmp_path / "s.zarr")
    cfg = config.load("smoke", overrides={"store": store})
    tasks = plan.plan(cfg)
    state.init_store(store, cfg, tasks, config.science_hash(cfg), "test")
    states = state.task_states(tasks, store, cfg)
    monkeypatch.setattr(dispatch, "execute", fake_execute)
    seen = []

    def status_text():
        text = io.StringIO()
        status(cfg, text)
        return text.getvalue()

    with lock.StoreLock(store, 600) as held, \
            LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0",
                         resources=local_worker(cfg, 1)) as cluster, Client(cluster) as client:
        runner = threading.Thread(target=dispatch.run, args=(client, cfg, tasks, tasks[:1], states, store, out, held))
        runner.start()
        deadline = time.time() + 30
        while progress_of(text := status_text()) is None and time.time() < deadline:
            time.sleep(0.2)  # until the job's first report (its interpreter starts in its own time)
        seen.append(text)
        time.sleep(1.0)
        seen.append(status_text())
        if kill:
            fake_execute.proc.kill()
        runner.join(30)
        seen.append(status_text())
    return seen, out.getvalue()


def progress_of(text):
    m = re.search(r"running liquid .* (\d+) of 30 steps \((\d+)%\), about (\d+) s left", text)
    return (int(m.group(1)), int(m.group(3))) if m else None


def test_status_shows_a_running_job_with_advancing_progress_and_a_fair_estimate(tmp_path, monkeypatch):
    seen, printed = run_one(tmp_path, monkeypatch, io.StringIO())
    (done1, _), (done2, left2) = progress_of(seen[0]), progress_of(seen[1])
    assert 0 < done1 < done2 < STEPS, seen
    true_left = (STEPS - done2) * STEP_S
    assert abs(left2 - true_left) <= max(1.5, 0.5 * true_left), (left2, true_left)
    assert "temperature_K 300" in seen[1] and "estimated end in about" in seen[1]
    assert "running liquid" not in seen[2]  # finished: no longer shown
    # not on a terminal: the plain line per finished task, nothing else
    assert re.fullmatch(r"\[  1/1\] done   liquid +\d+\.\d s  \nfinished in [\d.]+ s: 1 done, 0 failed, "
                        r"0 not run \(an upstream task failed\)\n", printed), printed


def test_a_killed_job_leaves_the_list_and_is_recorded_failed(tmp_path, monkeypatch):
    seen, printed = run_one(tmp_path, monkeypatch, io.StringIO(), kill=True)
    assert progress_of(seen[1]) is not None
    assert "running liquid" not in seen[2] and "failed  liquid" in seen[2]
    assert "0 done, 1 failed" in printed


def test_nothing_runs_when_the_launcher_is_dead(tmp_path):
    """A launcher killed with its list of running jobs still beside the store: its lock is stale
    (its pid is gone), so status shows no running job, whatever the files say."""
    store = str(tmp_path / "s.zarr")
    cfg = config.load("smoke", overrides={"store": store})
    state.init_store(store, cfg, plan.plan(cfg), config.science_hash(cfg), "test")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    layout.write_json(os.path.join(store, lock.NAME, "zarr.json"), {"attributes": {
        "host": socket.gethostname(), "pid": dead.pid, "started": "then", "heartbeat": time.time()}})
    layout.write_json(layout.running_path(store), {"token": "its", "jobs": {"liquid-k": {
        "key": "k", "label": "liquid", "stage": "liquid", "submitted": time.time()}}})
    text = io.StringIO()
    status(cfg, text)
    assert "running liquid" not in text.getvalue() and "no launch running" in text.getvalue()


@pytest.mark.filterwarnings("ignore")
def test_on_a_terminal_the_launcher_draws_one_progress_line(tmp_path, monkeypatch):
    _, printed = run_one(tmp_path, monkeypatch, Terminal())
    assert "submitted=" in printed and "\r" in printed  # tqdm's line, redrawn in place
    lines = [ln.split("\r")[-1] for ln in printed.split("\n")]  # what a terminal shows of each line
    assert any(ln.startswith("[  1/1] done   liquid") for ln in lines), lines
    assert any(ln.startswith("finished in ") for ln in lines), lines


def test_a_dead_jobs_last_report_is_not_shown_as_its_progress(tmp_path):
    """The launcher is alive and still lists the job, but the process that wrote the report is gone
    (same host): its progress is not shown as current."""
    store = str(tmp_path / "s.zarr")
    cfg = config.load("smoke", overrides={"store": store})
    state.init_store(store, cfg, plan.plan(cfg), config.science_hash(cfg), "test")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with lock.StoreLock(store, 600) as held:
        layout.write_json(layout.running_path(store), {"token": held.token, "jobs": {"liquid-k": {
            "key": "k", "label": "liquid", "stage": "liquid", "submitted": time.time()}}})
        report = {"host": socket.gethostname(), "pid": dead.pid, "started": time.time() - 5,
                  "first": [time.time() - 5, 0], "time": time.time(), "done": 10, "total": 30, "unit": "steps",
                  "now": {}}
        layout.write_json(layout.progress_path(store, "k"), report)
        text = io.StringIO()
        status(cfg, text)
        assert "queued  liquid" in text.getvalue() and "10 of 30" not in text.getvalue()
        assert "no progress report yet" in text.getvalue()
        layout.write_json(layout.running_path(store), {"token": "another launcher's", "jobs": {"liquid-k": {
            "key": "k", "label": "liquid", "stage": "liquid", "submitted": time.time()}}})
        text = io.StringIO()
        status(cfg, text)
        assert "submitted now: 0 job(s)" in text.getvalue()  # not this launcher's list
        layout.write_json(layout.running_path(store), {"token": held.token, "jobs": {"liquid-k": {
            "key": "k", "label": "liquid", "stage": "liquid", "submitted": time.time()}}})
        layout.write_json(layout.progress_path(store, "k"), {**report, "pid": os.getpid()})  # alive: shown
        text = io.StringIO()
        status(cfg, text)
        assert "10 of 30 steps" in text.getvalue()
