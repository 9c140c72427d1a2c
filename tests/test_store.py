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


def shear_like(g, steps: int, atoms: int = 100, shard_bytes: int = 100_000, stop_after: int | None = None):
    """A shear's per-step arrays, as the shear job writes them; returns what was written."""
    rng = np.random.default_rng(steps)
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
    for steps in (20, 400, 2000):
        root = zarr.open_group(str(tmp_path / f"s{steps}.zarr"), mode="w")
        rows = shear_like(root.require_group("shear"), steps, shard_bytes=2**20)
        counts[steps] = layout.count_files(str(tmp_path / f"s{steps}.zarr" / "shear"))
        back = layout.read(root, "shear", tuple(rows))
        for name, value in rows.items():
            np.testing.assert_array_equal(back[name], value)
    # 7 arrays and their group: a directory, a metadata file and one shard file each while a shard
    # holds them all; then one file per shard_bytes (positions: 2000 x 2400 B = 4.8 MB, 5 shards)
    assert counts[20] == counts[400] == 1 + 7 * 3, counts
    assert counts[2000] <= counts[20] + 4 + 1, counts


def test_the_layout_of_issue_16_would_have_made_fourteen_files_per_step(tmp_path):
    """The old layout (a chunk file per step and array, in nested directories) against the new one."""
    g = zarr.open_group(str(tmp_path / "old.zarr"), mode="w")
    for name, shape in {"positions": (100, 3), "d2min_A2": (100,), "strain": ()}.items():
        a = g.create_array(name, shape=(50, *shape), chunks=(1, *shape), dtype="float64")
        for i in range(50):
            a[i] = np.random.default_rng(i).random(shape)
    assert layout.count_files(str(tmp_path / "old.zarr")) > 3 * 50 * 2  # a file and directories per step


def test_a_task_killed_mid_write_leaves_nothing_that_counts_and_its_rerun_is_the_same(tmp_path):
    store = str(tmp_path / "s.zarr")
    root = zarr.open_group(store, mode="w")
    root.require_group("tasks")
    code = (f"import sys; sys.path[:0] = {sys.path!r}; import zarr; from tests.test_store import shear_like; "
            f"shear_like(zarr.open_group({store!r}).require_group('shear/k1'), 300, stop_after=150)")
    res = subprocess.run([sys.executable, "-c", code], cwd=os.path.dirname(os.path.dirname(__file__)))
    assert res.returncode == 9
    assert os.listdir(os.path.join(store, "shear", "k1", "positions"))  # some shards were written
    assert records.read(store, "k1") is None  # but no record: nothing counts
    with pytest.raises(layout.StoreError, match="task k1 has no completion record"):
        read_input(store, "k1", ("positions",))
    # the rerun empties the group and writes it whole
    g = zarr.open_group(store).require_group("shear/k1")
    for name in list(g.array_keys()):
        del g[name]
    rows = shear_like(g, 300)
    fresh = zarr.open_group(str(tmp_path / "fresh.zarr"), mode="w")
    shear_like(fresh.require_group("shear/k1"), 300)
    for name in rows:
        np.testing.assert_array_equal(zarr.open_group(store)[f"shear/k1/{name}"][...],
                                      fresh[f"shear/k1/{name}"][...])


def done_task(store: str, key: str, arrays: dict) -> dict:
    """A task's data and its done record, as a job writes them."""
    root = zarr.open_group(store, mode="a")
    g = root.require_group(f"things/{key}")
    layout.write_arrays(g, arrays)
    return records.write(store, key, records.DONE, "test", stage="thing", path=f"things/{key}",
                         params={"stage": "thing", "n": 1}, checksums=records.checksums(g))


def flip_a_byte(path: str, at: int = -8) -> None:
    data = bytearray(open(path, "rb").read())
    data[at] ^= 0xFF
    with open(path, "wb") as f:
        f.write(bytes(data))


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


def test_records_are_written_atomically_and_keep_no_temporary_files(tmp_path):
    store = str(tmp_path / "s.zarr")
    zarr.open_group(store, mode="w").require_group("tasks")
    records.write(store, "k1", records.DONE, "test", stage="thing", path="p", params={"a": 1})
    assert os.listdir(os.path.join(store, "tasks", "k1")) == ["zarr.json"]
    assert zarr.open_group(store)["tasks/k1"].attrs["params"] == {"a": 1}  # a Zarr group's attributes
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
        with open(os.path.join(store, lock.NAME, "zarr.json"), "w") as f:  # another launcher took it
            json.dump({"attributes": {**holder, "token": "someone else"}}, f)
        time.sleep(2.5)
        assert held.lost


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
    assert "differ in 1 parameter(s)" in text and "thresholds_A2: [0.05, 0.1, 0.2, 0.4]  |  [0.05, 0.1, 0.2, 0.3]" in text
    assert cli.main(["show", "--store", store, "nosuchkey"]) == 1
