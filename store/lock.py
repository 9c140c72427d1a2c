"""One launcher per store: an advisory lock in the store, with a heartbeat.

The lock is the directory ``<store>/launch_lock`` (a Zarr group whose attributes name
the holder: host, pid, start time, heartbeat). It is taken with ``mkdir``, which is atomic
on local file systems, NFS and Lustre alike (``fcntl`` locks are not reliable on all of
them), and its attributes are replaced atomically (``os.replace``) at every heartbeat.

A lock whose holder is dead is taken over, with a message: on the same host, when its
pid is gone (or is another process than the one that took it); on another host, when its
heartbeat is older than ``stale_after_s`` (the holder cannot be asked, so its silence is
the only sign; the heartbeat interval is a quarter of that age). Taking over renames the
stale lock away first and checks that what it moved is the lock it judged stale (another
launcher may have taken it over meanwhile: then it is put back), so of two launchers that
find it stale at once only one takes it.
"""
from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid

import psutil

from store.layout import StoreError, read_json, timestamp, write_json

NAME = "launch_lock"


class LockHeld(StoreError):
    """Another launcher holds the store; the message names it."""


def _holder_path(store: str) -> str:
    return os.path.join(store, NAME, "zarr.json")


def _holder_in(lock_dir: str) -> dict | None:
    meta = read_json(os.path.join(lock_dir, "zarr.json"))
    return meta.get("attributes") if isinstance(meta, dict) else None


def read_holder(store: str) -> dict | None:
    """The lock's holder, or None when the store is not locked (or its lock is half made)."""
    return _holder_in(os.path.join(store, NAME))


def describe(holder: dict) -> str:
    age = time.time() - holder.get("heartbeat", 0)
    return (f"pid {holder.get('pid')} on {holder.get('host')}, launched {holder.get('started')}, "
            f"last heartbeat {age:.0f} s ago")


def _process_started(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def is_stale(holder: dict, stale_after_s: float) -> bool:
    """Whether the holder is dead: its process gone (same host), or silent too long (any host)."""
    if holder.get("host") == socket.gethostname():
        started = _process_started(int(holder.get("pid", -1)))
        return started is None or abs(started - holder.get("process_started", started)) > 1.0
    return time.time() - holder.get("heartbeat", 0) > stale_after_s


class StoreLock:
    """``with StoreLock(store, stale_after_s): ...`` holds the store's lock for the block.

    ``lost`` becomes true if another launcher took the lock over meanwhile (this one was
    silent for longer than ``stale_after_s``, e.g. a suspended process); the launcher then
    stops submitting tasks.
    """

    def __init__(self, store: str, stale_after_s: float, out=None):
        self.store, self.stale_after_s, self.out = store, stale_after_s, out
        self.token = uuid.uuid4().hex
        self.lost = False
        self.last_beat = time.time()
        self._stop = threading.Event()
        self._thread = None

    def _holder(self) -> dict:
        return {"host": socket.gethostname(), "pid": os.getpid(), "process_started": _process_started(os.getpid()),
                "started": timestamp(), "heartbeat": time.time(), "token": self.token}

    def _write(self, holder: dict) -> None:
        write_json(_holder_path(self.store), {"zarr_format": 3, "node_type": "group", "attributes": holder})

    def acquire(self) -> None:
        lock_dir = os.path.join(self.store, NAME)
        try:  # the first thing a launch writes: a path that cannot be made is named here
            os.makedirs(self.store, exist_ok=True)
        except OSError as e:
            where = self.store
            while not os.path.exists(where) and os.path.dirname(where) != where:
                where = os.path.dirname(where)
            why = f"{where} is not a folder" if not os.path.isdir(where) else e.strerror
            raise StoreError(f"the store {self.store} cannot be made: {why}; choose another 'store' "
                             "path (--store)") from None
        for _ in range(3):
            try:
                os.mkdir(lock_dir)
            except FileExistsError:
                holder = read_holder(self.store)
                if holder is None:  # being made, or left half made by a launcher killed in between
                    made = os.stat(lock_dir).st_mtime if os.path.exists(lock_dir) else 0
                    if time.time() - made < 10:
                        time.sleep(1)
                        continue
                    holder = {"host": "?", "pid": "?", "started": "?", "heartbeat": made}
                elif not is_stale(holder, self.stale_after_s):
                    raise LockHeld(f"{self.store} is being launched by another launcher ({describe(holder)}); "
                                   "status, report, verify and --dry-run work meanwhile. If that launcher is "
                                   f"dead on another host, its lock is taken over once its heartbeat is older "
                                   f"than {self.stale_after_s:.0f} s (cluster.lock_stale_after)") from None
                stale = f"{lock_dir}.stale-{self.token}"
                try:
                    os.rename(lock_dir, stale)
                except OSError:  # another launcher took it over first
                    continue
                moved = _holder_in(stale)
                if moved is not None and moved.get("token", moved) != holder.get("token", holder):
                    # not the lock judged stale: another launcher took it over meanwhile; put it back
                    try:
                        os.rename(stale, lock_dir)
                    except OSError:
                        shutil.rmtree(stale, ignore_errors=True)
                    continue
                shutil.rmtree(stale, ignore_errors=True)
                if self.out is not None:
                    print(f"took over the store's lock from a dead launcher ({describe(holder)})", file=self.out)
                continue
            self._write(self._holder())
            return
        raise LockHeld(f"{self.store}: could not take the store's lock (other launchers are taking it)")

    def _heartbeat(self) -> None:
        while not self._stop.wait(max(1.0, self.stale_after_s / 4)):
            try:
                holder = read_holder(self.store)
                if holder is None or holder.get("token") != self.token:
                    raise OSError("the lock is another launcher's")
                self.last_beat = time.time()
                self._write({**holder, "heartbeat": self.last_beat})
            except OSError:  # taken over, or the file system failed us: either way, not ours to trust
                self.lost = True
                return
            if (read_holder(self.store) or {}).get("token") != self.token:  # taken over while we wrote
                self.lost = True
                return

    def still_held(self) -> bool:
        """Whether this launcher still holds the store: its heartbeat has neither failed nor been
        silent for longer than the stale age (a suspended process), and the lock names it."""
        if self.lost:
            return False
        if time.time() - self.last_beat > self.stale_after_s:
            self.lost = (read_holder(self.store) or {}).get("token") != self.token
        return not self.lost

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        holder = read_holder(self.store)
        if holder is not None and holder.get("token") == self.token:
            shutil.rmtree(os.path.join(self.store, NAME), ignore_errors=True)

    def __enter__(self):
        self.acquire()
        self._thread = threading.Thread(target=self._heartbeat, name="store-lock-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.release()
