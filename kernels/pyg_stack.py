"""Any PyG convolution as the model: F plain PyG models trained together (the generic path).

``PyGNet`` is the study's architecture with another convolution: L layers of
``torch_geometric.nn.<conv>(in, M)`` (with N heads, concatenated, where the convolution has heads;
with ``edge_dim`` where it takes edge features), Mish, then FC(· -> M) -> Mish -> FC(M -> 2).
``PyGStack`` holds F of them with the interface of ``kernels.gat.StackedGAT`` (forward over the
disjoint union of the F models' graphs, ``like``, ``select``, ``stack``), so that
``kernels.training.fit`` trains either; it runs the F models one after another, so it is slower than
the stacked GAT, which stays the path of the study's grid.
"""
from __future__ import annotations

import copy
import inspect

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.utils import remove_self_loops

from kernels.attention import Adjacency


def conv_class(name: str) -> type:
    """The PyG convolution ``torch_geometric.nn.<name>``; ValueError naming it if there is none."""
    import torch_geometric.nn as pyg_nn
    from torch_geometric.nn.conv import MessagePassing

    cls = getattr(pyg_nn, name, None)
    if not (inspect.isclass(cls) and issubclass(cls, MessagePassing)):
        raise ValueError(f"'{name}' is not a convolution of torch_geometric.nn (e.g. GATv2Conv, TransformerConv)")
    return cls


def takes_edge_features(name: str) -> bool:
    """Whether the convolution ``name`` attends with (or otherwise uses) edge features: it has ``edge_dim``."""
    return "edge_dim" in inspect.signature(conv_class(name)).parameters


def _layer(cls: type, in_dim: int, width: int, kwargs: dict) -> tuple[nn.Module, int]:
    """One convolution ``cls(in_dim, width, **kwargs)`` and the width of what it returns, found by a
    forward pass on a three-node graph; ValueError naming the convolution if either fails (one that
    needs other arguments, like GINConv's network, cannot be a layer here)."""
    try:
        layer = cls(in_dim, width, **kwargs)
        edges = torch.tensor([[0, 1, 2, 1], [1, 2, 0, 0]])
        args = (torch.zeros(3, in_dim), edges) + ((torch.zeros(4, kwargs["edge_dim"]),) if "edge_dim" in kwargs else ())
        with torch.no_grad():
            out = layer(*args)
    except Exception as e:  # any failure of a foreign class: say which and why
        raise ValueError(f"{cls.__name__}({in_dim}, {width}, {kwargs}) cannot be a layer of this model: {e}") from None
    if not isinstance(out, torch.Tensor) or out.shape[0] != 3:
        raise ValueError(f"{cls.__name__} does not return one row per node")
    return layer, out.shape[1]


class PyGNet(nn.Module):
    """One model: x (n, in_dim), edge_index (2, E), edge_attr (E, edge_dim) or None -> logits (n, 2).
    Each convolution sees the graph as given (it adds self loops itself, or not, as in plain PyG)."""

    def __init__(self, conv: str, in_dim: int, layers: int, width: int, heads: int, edge_dim: int = 0):
        super().__init__()
        cls = conv_class(conv)
        options = inspect.signature(cls).parameters
        kwargs = {"heads": heads} if "heads" in options else {}
        if edge_dim:
            if "edge_dim" not in options:
                raise ValueError(f"{conv} takes no edge features (it has no edge_dim)")
            kwargs["edge_dim"] = edge_dim
        self.convs, dim = nn.ModuleList(), in_dim
        for _ in range(layers):
            layer, dim = _layer(cls, dim, width, kwargs)
            self.convs.append(layer)
        self.fc1, self.fc2 = nn.Linear(dim, width), nn.Linear(width, 2)
        self.edge_dim = edge_dim

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor | None = None):
        for conv in self.convs:
            x = F.mish(conv(x, edge_index, edge_attr) if self.edge_dim else conv(x, edge_index))
        return self.fc2(F.mish(self.fc1(x)))


class PyGStack(nn.Module):
    """F ``PyGNet`` models: forward(x (F, n, in_dim), adj: the union of their graphs (node f·n + i is
    node i of model f), ``kernels.attention.Adjacency`` with edge features or none) -> logits (F, n, 2),
    as ``StackedGAT``. The self
    loops the union carries for the stacked GAT are removed: each model sees its graph as plain PyG
    would."""

    def __init__(self, conv: str, in_dim: int, layers: int, width: int, heads: int, folds: int = 1,
                 edge_dim: int = 0, nets: list[PyGNet] | None = None):
        super().__init__()
        self.conv, self.in_dim, self.layers, self.width, self.heads = conv, in_dim, layers, width, heads
        self.edge_dim = edge_dim
        self.nets = nn.ModuleList(nets if nets is not None else
                                  [PyGNet(conv, in_dim, layers, width, heads, edge_dim) for _ in range(folds)])
        self.folds = len(self.nets)

    def forward(self, x: torch.Tensor, adj: Adjacency):
        n = x.shape[1]
        edge_index, edge_attr = remove_self_loops(adj.edge_index, adj.edge_attr)  # the stacked GAT's, not PyG's
        model_of_edge = edge_index[0] // n
        out = []
        for f, net in enumerate(self.nets):
            mine = model_of_edge == f
            out.append(net(x[f], edge_index[:, mine] - f * n, None if edge_attr is None else edge_attr[mine]))
        return torch.stack(out)

    def like(self, folds: int) -> PyGStack:
        return PyGStack(self.conv, self.in_dim, self.layers, self.width, self.heads, folds, self.edge_dim)

    def select(self, f: int) -> PyGStack:
        """Model f as a stack of one (a copy)."""
        return self._of([copy.deepcopy(self.nets[f])])  # type: ignore[list-item]  # ModuleList holds Modules

    @staticmethod
    def stack(models: list[PyGStack]) -> PyGStack:
        """Stacks of one as one stack (copies)."""
        return models[0]._of([copy.deepcopy(m.nets[0]) for m in models])  # type: ignore[misc]  # as above

    def _of(self, nets: list[PyGNet]) -> PyGStack:
        return PyGStack(self.conv, self.in_dim, self.layers, self.width, self.heads, edge_dim=self.edge_dim, nets=nets)

    def __repr__(self) -> str:
        edges = f", edge_dim={self.edge_dim}" if self.edge_dim else ""
        return (f"PyGStack({self.conv}, L={self.layers}, M={self.width}, N={self.heads}, folds={self.folds}"
                f"{edges})")
