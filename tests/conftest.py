"""Helpers shared by the test modules, and the smoke campaign the slow modules share."""
import time

import pytest


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
