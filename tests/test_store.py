"""The store keeps its word: few files per task, damage detected and named, old layouts refused,
records atomic and bound to their data, one launcher at a time."""
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import zarr

from campaign import cli, config, plan, state
from jobs.common import DamagedInput, read_input
from store import layout, lock, records

from conftest import OneRank, flip_a_byte


def shear_like(g, steps: int, atoms: int = 200, shard_bytes: int = 100_000, stop_after: int | None = None,
               seed: int = 0):
    """A shear's per-step arrays, as the shear job writes them; returns what was written. With 200
    atoms a row of positions (4,800 B) is an inner chunk of its own inside shards; D2min rows
    (1,600 B) are chunked a shard at a time."""
    rng = np.random.default_rng(seed)
    rows = {"positions": rng.random((steps, atoms, 3)), "d2min_A2": rng.random((steps, atoms)),
            "cell": rng.random((steps, 3, 3)), "origin": rng.random((steps, 3)), "strain": rng.random(steps),
            "energy_eV": rng.random(steps), "stress_GPa": rng.random((steps, 6))}
    writer = layout.StepWriter(g, steps + 10, {k: v.shape[1:] for k, v in rows.items()}, shard_bytes=shard_bytes)
    for i in range(steps):
        if stop_after is not None and i == stop_after:
            os._exit(9)  # killed mid-write, as by SIGKILL: nothing runs after this
        writer.write(i, **{k: v[i] for k, v in rows.items()})
    writer.close()
    return rows


def test_a_shear_of_many_steps_writes_a_bounded_number_of_files(tmp_path):
    counts = {}
    for steps in (20, 200, 2000):
        root = zarr.open_group(str(tmp_path / f"s{steps}.zarr"), mode="w")
        rows = shear_like(root.require_group("shear"), steps, shard_bytes=2**20)
        counts[steps] = layout.count_files(str(tmp_path / f"s{steps}.zarr" / "shear"))
        back = layout.read(root, "shear", tuple(rows))
        for name, value in rows.items():
            np.testing.assert_array_equal(back[name], value)
        if steps == 2000:
            assert root["shear/positions"].shards == (218, 200, 3) and root["shear/positions"].chunks == (1, 200, 3)
    # 7 arrays and their group: a directory, a metadata file and one data file each while one shard
    # holds every step; beyond that one file per shard_bytes (2000 steps: positions 9.6 MB in 10
    # shards, D2min 3.2 MB in 4 chunks): 14 files for 2000 steps where layout 1 wrote 14,000
    assert counts[20] == counts[200] == 1 + 7 * 3, counts
    assert counts[2000] == counts[20] + 9 + 3, counts


def test_a_task_killed_mid_write_leaves_nothing_that_counts_and_its_rerun_writes_only_its_own(tmp_path):
    """Killed after 250 of 300 steps (several shards written), a task has no record; its rerun,
    through the job's own fresh group, leaves none of the dead run's files: exactly the files of
    a store written once."""
    from jobs.common import Job, Spec

    store = str(tmp_path / "s.zarr")
    zarr.open_group(store, mode="w").require_group("tasks")
    code = (f"import sys; sys.path[:0] = {sys.path!r}; import zarr; from tests.test_store import shear_like; "
            f"shear_like(zarr.open_group({store!r}).require_group('shear/k1'), 300, stop_after=250, seed=1)")
    res = subprocess.run([sys.executable, "-c", code], cwd=os.path.dirname(os.path.dirname(__file__)))
    assert res.returncode == 9
    assert len(os.listdir(os.path.join(store, "shear", "k1", "positions"))) > 2  # shards of the dead run
    assert records.read(store, "k1") is None  # but no record: nothing counts
    for leftover in ("zarr.0123456789abcdef0123456789abcdef.partial", "c.0.0123456789abcdef0123456789abcdef.tmp"):
        open(os.path.join(store, "shear", "k1", leftover), "w").close()  # half-written files of a killed write
    with pytest.raises(layout.StoreError, match="task k1 has no completion record"):
        read_input(store, "k1", ("positions",))
    job = Job(
        Spec(
            stage="shear",
            job="jobs.shear:ShearJob",
            key="k1",
            store=store,
            code_version="test",
            params={},
            path="shear/k1",
        ),
        OneRank(),
    )
    rows = shear_like(job.fresh_group(), 100, seed=2)  # a shorter rerun: the dead run's later shards must go
    fresh = zarr.open_group(str(tmp_path / "fresh.zarr"), mode="w")
    shear_like(fresh.require_group("shear/k1"), 100, seed=2)
    assert layout.count_files(os.path.join(store, "shear", "k1")) == \
        layout.count_files(str(tmp_path / "fresh.zarr" / "shear" / "k1"))
    back = layout.read(zarr.open_group(store), "shear/k1", tuple(rows))
    for name in rows:
        np.testing.assert_array_equal(back[name], rows[name])


def test_the_temporary_files_of_killed_writes_are_removed_and_only_they(tmp_path):
    """Zarr warns at every half-written file it lists (an error under this suite's strict warnings);
    the launcher removes them once its jobs have ended, and nothing else."""
    store = str(tmp_path / "s.zarr")
    zarr.open_group(store, mode="w").require_group("tasks")
    done_task(store, "k1", {"x": np.arange(5.0)})
    before = {os.path.join(d, f) for d, _, files in os.walk(store) for f in files}
    for leftover in (
        "things/zarr.0123456789abcdef0123456789abcdef.partial",
        "things/k1/x/c.0123456789abcdef0123456789abcdef.partial",
        "tasks/k1/zarr.json.%s.tmp" % ("f" * 32),
    ):
        open(os.path.join(store, leftover), "w").close()
    with pytest.warns(zarr.errors.ZarrUserWarning, match="not recognized"):
        dict(zarr.open_group(store, mode="r").members(max_depth=None))
    assert layout.remove_leftovers(store) == 3
    assert {os.path.join(d, f) for d, _, files in os.walk(store) for f in files} == before
    dict(zarr.open_group(store, mode="r").members(max_depth=None))  # no warning: the strict suite passes
    assert records.read_checked(store, "k1", ("x",))["x"].tolist() == list(range(5))


def done_task(store: str, key: str, arrays: dict) -> dict:
    """A task's data and its done record, as a job writes them."""
    root = zarr.open_group(store, mode="a")
    g = root.require_group(f"things/{key}")
    layout.write_arrays(g, arrays)
    return records.write(store, key, records.DONE, "test", stage="thing", path=f"things/{key}",
                         params={"stage": "thing", "n": 1}, checksums=records.checksums(g))


def test_a_flipped_byte_is_named_by_the_read_by_verify_and_by_the_job_that_reads_it(tmp_path):
    store = str(tmp_path / "s.zarr")
    zarr.open_group(store, mode="w").require_group("tasks")
    rec = done_task(store, "k1", {"d2min_A2": np.linspace(0, 1, 1000), "mask": np.arange(1000) % 7 == 0})
    assert records.damage(store, rec) == []
    np.testing.assert_array_equal(read_input(store, "k1", ("d2min_A2",))["d2min_A2"], np.linspace(0, 1, 1000))
    flip_a_byte(os.path.join(store, "things", "k1", "d2min_A2", "c.0"), at=40)
    with pytest.raises(layout.StoreError, match=r"things/k1/d2min_A2' is damaged \(chunk file c\.0\).*checksum"):
        layout.read(zarr.open_group(store), "things/k1", ("d2min_A2",))
    assert len(records.damage(store, rec)) == 1 and "d2min_A2" in records.damage(store, rec)[0]
    with pytest.raises(DamagedInput, match="input k1 is damaged"):
        read_input(store, "k1", ("d2min_A2", "mask"))
    assert records.read(store, "k1") is None  # moved aside: the next launch runs it again
    assert "d2min_A2" in records.damaged(store)["k1"]["damage"][0]


def test_data_that_is_not_what_its_record_describes_is_caught_even_with_sound_chunks(tmp_path):
    store = str(tmp_path / "s.zarr")
    zarr.open_group(store, mode="w").require_group("tasks")
    rec = done_task(store, "k1", {"x": np.arange(10.0)})
    zarr.open_group(store)["things/k1/x"][3] = -1.0  # rewritten whole, with a valid checksum
    assert "sha256 differs" in records.damage(store, rec)[0]


def test_records_are_written_atomically_and_keep_no_temporary_files(tmp_path, monkeypatch):
    store = str(tmp_path / "s.zarr")
    zarr.open_group(store, mode="w").require_group("tasks")
    records.write(store, "k1", records.DONE, "test", stage="thing", path="p", params={"a": 1})
    assert os.listdir(os.path.join(store, "tasks", "k1")) == ["zarr.json"]
    assert zarr.open_group(store)["tasks/k1"].attrs["params"] == {"a": 1}  # a Zarr group's attributes

    def dies_half_way(obj, f):  # a writer killed in the middle of the file
        f.write(json.dumps(obj)[:20])
        raise KeyboardInterrupt

    monkeypatch.setattr(records.json, "dump", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        records.write(store, "k1", records.FAILED, "test", reason="x")
    monkeypatch.undo()
    assert records.read(store, "k1")["status"] == "done"  # the whole old record, not half a new one
    records.write(store, "k1", records.FAILED, "test", reason="x")
    assert records.read(store, "k1")["status"] == "failed"


def test_a_store_of_the_old_layout_is_refused_with_its_layout_named(tmp_path, capsys):
    store = str(tmp_path / "old.zarr")
    zarr.open_group(store, mode="w").attrs.update({"layout": 1})
    with pytest.raises(layout.StoreError, match="has store layout 1; this code reads and writes layout 2"):
        layout.open_root(store)
    with pytest.raises(layout.StoreError, match="layout 1"):
        state.check_store(store)
    for command in ("status", "launch", "verify"):
        assert cli.main([command, "--store", store]) == 1
        assert "layout 1" in capsys.readouterr().err


# --- one launcher per store ------------------------------------------------------

def test_a_second_launcher_is_refused_with_the_holder_named(tmp_path):
    store = str(tmp_path / "s.zarr")
    with lock.StoreLock(store, 60):
        holder = lock.read_holder(store)
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(lock.LockHeld, match=f"pid {os.getpid()} on {socket.gethostname()}"):
            lock.StoreLock(store, 60).acquire()
    assert lock.read_holder(store) is None and not os.path.exists(os.path.join(store, lock.NAME))


def write_holder(store, **holder):
    os.makedirs(os.path.join(store, lock.NAME))
    with open(os.path.join(store, lock.NAME, "zarr.json"), "w") as f:
        json.dump({"zarr_format": 3, "node_type": "group", "attributes": holder}, f)


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_lock_whose_holder_is_dead_is_taken_over_with_a_message(tmp_path, capsys):
    store = str(tmp_path / "s.zarr")
    write_holder(store, host=socket.gethostname(), pid=dead_pid(), started="then", heartbeat=time.time())
    with lock.StoreLock(store, 600, out=sys.stdout):
        assert lock.read_holder(store)["pid"] == os.getpid()
    assert "took over the store's lock from a dead launcher" in capsys.readouterr().out


def test_a_lock_on_another_host_is_stale_only_once_its_heartbeat_is_old(tmp_path):
    store = str(tmp_path / "s.zarr")
    write_holder(store, host="node-elsewhere", pid=1, started="then", heartbeat=time.time() - 30)
    with pytest.raises(lock.LockHeld, match="node-elsewhere"):
        lock.StoreLock(store, 600).acquire()
    with lock.StoreLock(store, 20):  # 30 s silent is dead when 20 s is the limit
        assert lock.read_holder(store)["host"] == socket.gethostname()


def test_the_heartbeat_refreshes_the_lock_and_notices_a_takeover(tmp_path):
    store = str(tmp_path / "s.zarr")
    with lock.StoreLock(store, 4) as held:  # a heartbeat every second
        first = lock.read_holder(store)["heartbeat"]
        time.sleep(2.5)
        assert lock.read_holder(store)["heartbeat"] > first and not held.lost
        holder = lock.read_holder(store)
        path = os.path.join(store, lock.NAME, "zarr.json")
        with open(path + ".other", "w") as f:  # another launcher took it over, as the lock writes
            json.dump({"attributes": {**holder, "token": "someone else"}}, f)
        os.replace(path + ".other", path)
        time.sleep(2.5)
        assert held.lost and not held.still_held()


# --- records explain themselves ----------------------------------------------------

def test_show_prints_a_tasks_parameters_and_how_two_keys_differ(tmp_path, capsys):
    store = str(tmp_path / "s.zarr")
    zarr.open_group(store, mode="w").require_group("tasks")
    cfg = config.load("smoke", overrides={"store": store})
    other = config.load("smoke", overrides={"store": store, "labels": {"thresholds_A2": [0.05, 0.1, 0.2, 0.3]}})
    a = next(t for t in plan.plan(cfg) if t.STAGE == "labels")
    b = next(t for t in plan.plan(other) if t.STAGE == "labels")
    for t in (a, b):
        records.write(store, t.key, records.DONE, "test", stage=t.STAGE, path=t.path, params=t.described())
    assert cli.main(["show", "--store", store, a.key]) == 0
    text = capsys.readouterr().out
    assert f"params.shear_key: \"{a.shear_key}\"" in text and "params.thresholds_A2: [0.05, 0.1, 0.2, 0.4]" in text
    assert cli.main(["show", "--store", store, a.key, b.key[:8]]) == 0
    text = capsys.readouterr().out
    assert (
        "differ in 1 parameter(s)" in text and "thresholds_A2: [0.05, 0.1, 0.2, 0.4]  |  [0.05, 0.1, 0.2, 0.3]" in text
    )
    assert cli.main(["show", "--store", store, "nosuchkey"]) == 1


def test_status_exits_non_zero_when_a_task_failed(tmp_path, capsys):
    store = str(tmp_path / "s.zarr")
    cfg = config.load("smoke", overrides={"store": store})
    tasks = plan.plan(cfg)
    state.init_store(store, cfg, tasks, config.science_hash(cfg), "test")
    assert cli.main(["status", "--store", store]) == 0  # all pending: nothing wrong
    records.write(store, tasks[0].key, records.FAILED, "test", stage="liquid", reason="LammpsFailure: boom")
    assert cli.main(["status", "--store", store]) == 1
    assert "failed  liquid" in capsys.readouterr().out


def test_verify_retires_a_damaged_task_and_its_done_dependants_only(tmp_path, capsys):
    """Done records (with stand-in data) for the liquid, one quench, one of its shears and that
    shear's labels; one chunk of the quench is damaged: verify moves aside the quench and its two
    done dependants, not the liquid, and exits 1."""
    store = str(tmp_path / "s.zarr")
    cfg = config.load("smoke", overrides={"store": store})
    tasks = plan.plan(cfg)
    state.init_store(store, cfg, tasks, config.science_hash(cfg), "test")
    by_label = {t.label: t for t in tasks}
    chain = [by_label[x] for x in ("liquid", "quench s000", "shear s000 xy", "labels s000 xy")]
    assert chain[2].quench_key == chain[1].key and chain[3].shear_key == chain[2].key
    root = zarr.open_group(store)
    for i, t in enumerate(chain):
        g = root.require_group(t.path)
        layout.write_arrays(g, {"positions": np.full((300, 3), float(i))})
        records.write(store, t.key, records.DONE, "test", stage=t.STAGE, path=t.path, params=t.described(),
                      checksums=records.checksums(g))
    flip_a_byte(os.path.join(store, chain[1].path, "positions", "c.0.0"), at=10)
    assert cli.main(["verify", "--store", store]) == 1
    out = capsys.readouterr().out
    assert "damaged  quench s000" in out and "1 damaged, 2 dependants retired" in out
    assert set(records.read_all(store)) == {chain[0].key}
    assert set(records.damaged(store)) == {t.key for t in chain[1:]}
    assert cli.main(["status", "--store", store]) == 1
    assert f"damaged quench s000  {chain[1].key}" in capsys.readouterr().out
