"""A graph attention network, and F independent copies of it trained as one model.

The study's model: L ``GATConv`` layers of width M with N attention heads,
Mish activations, fully connected layers after them, two-class output
(Lee & Ryu 2022; Veličković et al. 2018). Heads are CONCATENATED (each
layer outputs N·M channels), as in PyG's default and the shared baseline: with
averaged heads N would add attention samples but no capacity, and the study
varies M and N as separate axes of capacity.

``StackedGAT`` holds ``folds`` such models with the same architecture and
separate weights. Its forward pass runs all of them at once on a batch that
holds, for each model, graphs of the same node count (every graph of a
campaign has the same atoms): the dense maps are one batched matmul, the
attention is one scatter over the disjoint union of the graphs. With
``folds=1`` it is numerically the plain PyG model (tests check it against
``torch_geometric.nn.GATConv``). This is how the 4 folds of a grid point
train together and fill a GPU that one small model leaves idle.

With ``edge_dim`` > 0 the edges carry features that enter the attention, as in
``GATConv(edge_dim=...)``: the direction-aware model gives each bond its vector in
the shear frame, so that a bond along the shear and one across it are told apart.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn.inits import glorot

from kernels.attention import Adjacency, attend, attention_weights


class StackedGATLayer(nn.Module):
    """``folds`` GATConv layers (in_dim -> heads x out_dim, concatenated) evaluated together.

    For model f, node i and head k (GATConv, heads concatenated)::

        h_i = x_i W_f,   e_ij = LeakyReLU(a_src·h_j + a_dst·h_i [+ a_edge·(e_ij W_edge)]),
        α_ij = softmax over the edges j -> i of e_ij,   out_i = Σ_j α_ij h_j + b_f

    Shapes: x (F, n, in_dim); ``adj`` the union of the F models' graphs (node f·n + i is node i of
    model f; ``Adjacency.union`` of one per model), self loops included, edge features in
    ``adj.edge_attr`` (E, edge_dim) with ``edge_dim``. Returns (F, n, heads·out_dim) and, if asked,
    the attention (E, heads) in ``adj``'s edge order. The aggregation is ``kernels.attention.attend``:
    sparse products that save O(n) per layer for backward, not the E×H×C gathered messages.
    """

    def __init__(self, in_dim: int, out_dim: int, heads: int, folds: int = 1, negative_slope: float = 0.2,
                 edge_dim: int = 0):
        super().__init__()
        self.in_dim, self.out_dim, self.heads, self.folds = in_dim, out_dim, heads, folds
        self.negative_slope, self.edge_dim = negative_slope, edge_dim
        self.weight = nn.Parameter(torch.empty(folds, in_dim, heads * out_dim))
        self.att_src = nn.Parameter(torch.empty(folds, heads, out_dim))
        self.att_dst = nn.Parameter(torch.empty(folds, heads, out_dim))
        if edge_dim:
            self.lin_edge = nn.Parameter(torch.empty(folds, edge_dim, heads * out_dim))
            self.att_edge = nn.Parameter(torch.empty(folds, heads, out_dim))
        self.bias = nn.Parameter(torch.empty(folds, heads * out_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyG's GATConv initialisation, model by model: Glorot on the (in, H·C) weight and on each
        (1, H, C) attention vector (bound √(6/(H + C))), likewise the edge map and its attention, zero bias."""
        for f in range(self.folds):
            glorot(self.weight.data[f])
            glorot(self.att_src.data[f:f + 1])
            glorot(self.att_dst.data[f:f + 1])
            if self.edge_dim:
                glorot(self.lin_edge.data[f])
                glorot(self.att_edge.data[f:f + 1])
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor, adj: Adjacency, return_attention: bool = False):
        f, n, _ = x.shape
        h = torch.bmm(x, self.weight).view(f, n, self.heads, self.out_dim)             # (F, n, H, C)
        a_src = (h * self.att_src[:, None]).sum(-1).reshape(f * n, self.heads)          # (F·n, H)
        a_dst = (h * self.att_dst[:, None]).sum(-1).reshape(f * n, self.heads)
        a_edge = self._edge_term(adj, f) if self.edge_dim else None                     # (E, H)
        h = h.reshape(f * n, self.heads, self.out_dim)
        out = attend(h, a_src, a_dst, adj, a_edge, self.negative_slope)
        out = out.view(f, n, self.heads * self.out_dim) + self.bias[:, None]
        return (out, attention_weights(a_src, a_dst, adj, a_edge, self.negative_slope)) if return_attention else out

    def _edge_term(self, adj: Adjacency, f: int) -> torch.Tensor:
        """GATConv's att_edge · lin_edge(e_ij) per edge and head (E, H): the two maps folded into one
        (D, H) per model, applied to the edges of each model of the union (``adj.parts``)."""
        folded = (self.lin_edge.view(f, self.edge_dim, self.heads, self.out_dim) * self.att_edge[:, None]).sum(-1)
        parts = adj.parts if f > 1 else (0, len(adj.src))
        if len(parts) != f + 1:
            raise ValueError(f"a union of {len(parts) - 1} graphs for {f} stacked models")
        assert adj.edge_attr is not None  # a direction-aware layer reads the bond vectors
        return torch.cat([adj.edge_attr[parts[k]:parts[k + 1]] @ folded[k] for k in range(f)])

    def __repr__(self) -> str:
        edges = f", edge_dim={self.edge_dim}" if self.edge_dim else ""
        return (f"{self.__class__.__name__}({self.in_dim}, {self.out_dim}, heads={self.heads}, "
                f"folds={self.folds}{edges})")


class StackedLinear(nn.Module):
    """``folds`` linear maps: (F, n, in) -> (F, n, out)."""

    def __init__(self, in_dim: int, out_dim: int, folds: int = 1):
        super().__init__()
        self.in_dim, self.out_dim, self.folds = in_dim, out_dim, folds
        self.weight = nn.Parameter(torch.empty(folds, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(folds, 1, out_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.in_dim)  # torch.nn.Linear's default
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_dim}, {self.out_dim}, folds={self.folds})"


class StackedGAT(nn.Module):
    """L GAT layers (width M, N heads, concatenated), Mish, then FC(N·M -> M) -> Mish -> FC(M -> 2).

    forward(x (F, n, in_dim), adj: the union of the models' graphs, ``kernels.attention.Adjacency``, with
    edge features (E, edge_dim) if ``edge_dim``) -> logits (F, n, 2). Every layer sees the edge features.
    """

    def __init__(self, in_dim: int, layers: int, width: int, heads: int, folds: int = 1, edge_dim: int = 0):
        super().__init__()
        self.layers, self.width, self.heads, self.folds, self.edge_dim = layers, width, heads, folds, edge_dim
        self.in_dim = in_dim
        dims = [in_dim] + [width * heads] * layers
        self.convs = nn.ModuleList(StackedGATLayer(dims[i], width, heads, folds, edge_dim=edge_dim)
                                   for i in range(layers))
        self.fc1 = StackedLinear(width * heads, width, folds)
        self.fc2 = StackedLinear(width, 2, folds)

    def reset_parameters(self) -> None:
        for m in [*self.convs, self.fc1, self.fc2]:
            m.reset_parameters()

    def forward(self, x: torch.Tensor, adj: Adjacency):
        for conv in self.convs:
            x = F.mish(conv(x, adj))
        return self.fc2(F.mish(self.fc1(x)))

    def like(self, folds: int) -> StackedGAT:
        """A new stack of ``folds`` models of this architecture (fresh weights)."""
        return StackedGAT(self.in_dim, self.layers, self.width, self.heads, folds, self.edge_dim)

    def select(self, f: int) -> StackedGAT:
        """Model f of the stack as a folds=1 model (a copy, on the same device)."""
        single = self.like(folds=1)
        single.load_state_dict({k: v[f:f + 1].detach().clone() for k, v in self.state_dict().items()})
        return single.to(next(self.parameters()).device)

    @staticmethod
    def stack(models: list[StackedGAT]) -> StackedGAT:
        """folds=1 models of one architecture as one stacked model (weights copied)."""
        out = models[0].like(folds=len(models))
        states = [m.state_dict() for m in models]
        out.load_state_dict({k: torch.cat([s[k] for s in states]) for k in states[0]})
        return out

    def __repr__(self) -> str:
        edges = f", edge_dim={self.edge_dim}" if self.edge_dim else ""
        return (f"{self.__class__.__name__}(L={self.layers}, M={self.width}, N={self.heads}, "
                f"folds={self.folds}{edges})")


def union_graph(edge_indices: list[torch.Tensor], nodes_per_model: int,
                edge_attrs: list[torch.Tensor] | None = None) -> Adjacency:
    """The graphs of F models (each (2, E_f) over 0..nodes_per_model-1, with features (E_f, D) or
    none) as one ``Adjacency`` over the union, self loops added."""
    return Adjacency.union([Adjacency.of(e, nodes_per_model, None if edge_attrs is None else edge_attrs[f])
                            for f, e in enumerate(edge_indices)])
