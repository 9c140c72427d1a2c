"""Any PyG convolution as the model (kernels.pyg_stack): F plain PyG models trained as one stack."""
import numpy as np
import pytest
import torch
from torch_geometric.nn import GATv2Conv

from kernels.gat import union_graph
from kernels.pyg_stack import PyGNet, PyGStack, takes_edge_features
from kernels.training import Prepared, TrainOptions, fit

EDGES = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 0, 0, 2], [1, 0, 2, 1, 3, 2, 0, 3, 2, 0]])


def test_a_stacked_model_is_its_plain_pyg_model_on_its_own_graph_only():
    torch.manual_seed(0)
    stack = PyGStack("GATv2Conv", 5, layers=2, width=3, heads=2, folds=2, edge_dim=3)
    assert isinstance(stack.nets[0].convs[0], GATv2Conv) and stack.nets[0].convs[0].heads == 2
    x, attrs = torch.randn(2, 4, 5), [torch.randn(10, 3), torch.randn(10, 3)]
    adj = union_graph([EDGES, EDGES], 4, attrs)
    out = stack(x, adj)
    torch.testing.assert_close(out[1], stack.nets[1](x[1], EDGES, attrs[1]))  # as plain PyG, on the plain graph
    local = union_graph([EDGES], 4, attrs[1:])
    x2 = x.clone()
    x2[0] += 1.0
    torch.testing.assert_close(stack(x2, adj)[1], out[1])  # model 1 sees nothing of model 0
    assert not torch.allclose(
        stack(x, union_graph([EDGES, EDGES], 4, [-a for a in attrs]))[0], out[0]
    )  # the bonds' direction matters
    one = stack.select(1)
    torch.testing.assert_close(one(x[1:], local)[0], out[1])
    assert repr(PyGStack.stack([stack.select(0), one])) == "PyGStack(GATv2Conv, L=2, M=3, N=2, folds=2, edge_dim=3)"


def test_a_fold_of_any_convolution_trains_the_same_stacked_or_alone():
    rng = np.random.default_rng(0)
    sets = [Prepared([{"x": rng.standard_normal((4, 19)).astype(np.float32), "edge_index": EDGES.numpy(),
                       "edge_attr": rng.standard_normal((10, 3)).astype(np.float32), "y": rng.integers(0, 2, 4)}
                      for _ in range(3)], np.zeros(19, np.float32), np.ones(19, np.float32), "cpu") for _ in range(3)]
    w = [torch.tensor([1.0, 2.0])] * 3
    opts = TrainOptions(epochs=3, learning_rate=1e-2, batch_graphs=2, loss="weighted_ce", sampling="none",
            focal_gamma=2.0, sampling_ratio=1.0, seed=0)
    stacked, hist = fit(sets, w, 2, 3, 2, opts, seeds=[10, 11, 12], conv="TransformerConv")
    alone, _ = fit(sets[2:], w[2:], 2, 3, 2, opts, seeds=[12], conv="TransformerConv")
    assert stacked[2].nets[0].edge_dim == 3 and len(hist[0]["train_loss"]) == 3
    for a, b in zip(stacked[2].parameters(), alone[0].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_a_convolution_that_is_not_one_or_takes_no_edge_features_is_named():
    with pytest.raises(ValueError, match="'NoSuchConv' is not a convolution of torch_geometric.nn"):
        PyGNet("NoSuchConv", 5, 1, 3, 2)
    assert takes_edge_features("GATv2Conv") and not takes_edge_features("GCNConv")
    with pytest.raises(ValueError, match="GCNConv takes no edge features"):
        PyGNet("GCNConv", 5, 1, 3, 2, edge_dim=3)
    PyGNet("GCNConv", 5, 2, 3, 2)  # without edge features it is a model like any other
    with pytest.raises(ValueError, match="GINConv.*cannot be a layer of this model"):
        PyGNet("GINConv", 5, 1, 3, 2)  # it needs a network, not two widths
    fea = PyGNet("FeaStConv", 5, 2, 3, 2)  # heads, but not concatenated: the width is found, not assumed
    assert fea(torch.randn(4, 5), EDGES).shape == (4, 2)


def test_a_convolution_without_self_loops_of_its_own_sees_none():
    """TransformerConv adds no self loops: on the stack's union (which carries the GAT's) it must see
    the graph as given, the same as alone."""
    torch.manual_seed(1)
    stack = PyGStack("TransformerConv", 5, layers=1, width=3, heads=2, folds=1, edge_dim=3)
    x, attr = torch.randn(1, 4, 5), torch.randn(10, 3)
    torch.testing.assert_close(stack(x, union_graph([EDGES], 4, [attr]))[0], stack.nets[0](x[0], EDGES, attr))
