"""Helpers shared by the test modules."""


class OneRank:
    """An MPI communicator of one rank, for running a job's methods in the test process."""

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1


def flip_a_byte(path, at: int | None = None) -> None:
    """Damage a file: one byte (the middle one unless ``at``) inverted."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[len(data) // 2 if at is None else at] ^= 0xFF
    with open(path, "wb") as f:
        f.write(bytes(data))
