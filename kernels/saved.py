"""Counting what autograd keeps for backward (torch only; ``kernels.memory`` is the model it checks)."""
from __future__ import annotations

import torch


class SavedBytes(torch.autograd.graph.saved_tensors_hooks):
    """Counts what autograd saves for backward inside the context: the bytes of every distinct
    storage (views and tensors saved twice once), what stays allocated between forward and backward."""

    def __init__(self):
        self.storages: dict[int, int] = {}

        def pack(t):
            if t.device.type != "meta":
                s = t.untyped_storage()
                self.storages[s.data_ptr()] = s.nbytes()
            return t

        super().__init__(pack, lambda t: t)

    @property
    def bytes(self) -> int:
        return sum(self.storages.values())

    @property
    def gib(self) -> float:
        return self.bytes / 2**30
