"""The stacked GAT on tiny hand-made graphs, and against PyG's GATConv."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch_geometric.nn import GATConv

from kernels.gat import StackedGAT, StackedGATLayer, union_graph

EDGES = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 0, 0, 2], [1, 0, 2, 1, 3, 2, 0, 3, 2, 0]])  # a square + diagonal


@pytest.fixture(autouse=True)
def seeded():
    """Each test draws from its own seed, whatever ran before it."""
    torch.manual_seed(0)


def test_layer_equals_pyg_gatconv():
    x = torch.randn(4, 5)
    ours = StackedGATLayer(5, 3, heads=2, folds=1)
    ref = GATConv(5, 3, heads=2)
    with torch.no_grad():
        ref.lin.weight.copy_(ours.weight[0].T)
        ref.att_src.copy_(ours.att_src[0][None])
        ref.att_dst.copy_(ours.att_dst[0][None])
        ref.bias.copy_(ours.bias[0])
    out = ours(x[None], union_graph([EDGES], 4))[0]
    torch.testing.assert_close(out, ref(x, EDGES), rtol=1e-5, atol=1e-6)


def test_a_layer_with_edge_features_equals_pyg_gatconv_with_edge_dim():
    """Edge features enter the attention as in GATConv(edge_dim=3): self loops get the mean of their
    node's incoming edges' features; every fold of a stack is its own GATConv."""
    x, attr = torch.randn(2, 4, 5), torch.randn(2, EDGES.shape[1], 3)
    ours = StackedGATLayer(5, 3, heads=2, folds=2, edge_dim=3)
    adj = union_graph([EDGES, EDGES], 4, [attr[0], attr[1]])
    out = ours(x, adj)
    for f in range(2):
        ref = GATConv(5, 3, heads=2, edge_dim=3)
        with torch.no_grad():
            ref.lin.weight.copy_(ours.weight[f].T)
            ref.lin_edge.weight.copy_(ours.lin_edge[f].T)
            for name in ("att_src", "att_dst", "att_edge"):
                getattr(ref, name).copy_(getattr(ours, name)[f][None])
            ref.bias.copy_(ours.bias[f])
        torch.testing.assert_close(out[f], ref(x[f], EDGES, attr[f]), rtol=1e-5, atol=1e-6)
    flipped = ours(
        x, union_graph([EDGES, EDGES], 4, [-attr[0], -attr[1]])
    )  # the bond's direction matters: reversed vectors, other attention
    assert not torch.allclose(out, flipped)


def test_the_edge_maps_start_as_pyg_initialises_them():
    layer = StackedGATLayer(19, 20, heads=6, folds=3, edge_dim=3)
    ref = GATConv(19, 20, heads=6, edge_dim=3)
    bound = np.sqrt(6 / (3 + 120))  # Glorot of a (3, H·C) map
    assert layer.lin_edge.abs().max() <= bound and ref.lin_edge.weight.abs().max() <= bound
    assert layer.lin_edge.std().item() == pytest.approx(ref.lin_edge.weight.std().item(), rel=0.2)
    assert layer.att_edge.std().item() == pytest.approx(ref.att_edge.std().item(), rel=0.2)


def test_output_shape_repr_and_attention_range():
    model = StackedGAT(5, layers=2, width=3, heads=4, folds=2)
    x = torch.randn(2, 4, 5)
    adj = union_graph([EDGES, EDGES[:, :6]], 4)
    assert model(x, adj).shape == (2, 4, 2)
    assert repr(model) == "StackedGAT(L=2, M=3, N=4, folds=2)"
    _, alpha = model.convs[0](x, adj, return_attention=True)
    assert alpha.shape == (len(adj.src), 4) == (10 + 6 + 8, 4)
    assert torch.all(alpha >= 0) and torch.all(alpha <= 1)
    # attention over each target node's incoming edges sums to one
    sums = torch.zeros(8, 4).index_add_(0, adj.dst, alpha)
    torch.testing.assert_close(sums, torch.ones(8, 4))


def test_folds_are_independent_models():
    """Model f's output depends only on its own nodes, edges and weights."""
    model = StackedGAT(5, layers=2, width=3, heads=2, folds=2)
    x = torch.randn(2, 4, 5)
    adj = union_graph([EDGES, EDGES], 4)
    out = model(x, adj)
    x2 = x.clone()
    x2[1] += 1.0
    out2 = model(x2, adj)
    torch.testing.assert_close(out[0], out2[0])
    assert not torch.allclose(out[1], out2[1])


def test_gradient_step_lowers_the_weighted_loss():
    model = StackedGAT(5, layers=2, width=4, heads=2, folds=1)
    x = torch.randn(1, 4, 5)
    y = torch.tensor([0, 1, 0, 0])
    w = torch.tensor([1.0, 3.0])
    adj = union_graph([EDGES], 4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        loss = F.cross_entropy(model(x, adj)[0], y, weight=w)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_class_weights_are_n_over_two_n_c():
    from kernels.training import class_weights

    graphs = [{"y": np.array([0] * 50 + [1] * 5)}, {"y": np.array([0] * 40 + [1] * 5)}]
    torch.testing.assert_close(class_weights(graphs), torch.tensor([100 / 180, 100 / 20]))


OPTS = {"epochs": 1, "learning_rate": 1e-2, "batch_graphs": 1, "loss": "weighted_ce", "sampling": "none",
        "focal_gamma": 2.0, "sampling_ratio": 1.0}
NEG, POS = torch.tensor([2.0, -2.0]), torch.tensor([0.0, 0.0])  # identical logits within a class


def _imbalanced(n_neg=40, n_pos=4):
    logits = torch.stack([NEG] * n_neg + [POS] * n_pos)
    return logits, torch.tensor([0] * n_neg + [1] * n_pos)


def _nll(row, label):
    return -torch.log_softmax(row, 0)[label]


def test_every_branch_of_the_loss_by_hand():
    from kernels.training import TrainOptions, loss_fn

    logits, y = _imbalanced()
    w = torch.tensor([0.55, 5.5])
    gen = torch.Generator().manual_seed(0)
    nll0, nll1 = _nll(NEG, 0), _nll(POS, 1)
    weighted = (40 * 0.55 * nll0 + 4 * 5.5 * nll1) / (40 * 0.55 + 4 * 5.5)
    torch.testing.assert_close(loss_fn(logits, y, w, TrainOptions(**OPTS), gen), weighted)
    p0, p1 = torch.exp(-nll0), torch.exp(-nll1)  # focal: alpha = w / sum(w), (1 - p)^gamma
    a0, a1 = 0.55 / 6.05, 5.5 / 6.05
    focal = (40 * a0 * (1 - p0) ** 2 * nll0 + 4 * a1 * (1 - p1) ** 2 * nll1) / (40 * a0 + 4 * a1)
    torch.testing.assert_close(loss_fn(logits, y, w, TrainOptions(**{**OPTS, "loss": "focal"}), gen), focal)
    # under-sampling to 1:1: the 4 positives and 4 of the negatives, unweighted
    torch.testing.assert_close(loss_fn(logits, y, w, TrainOptions(**{**OPTS, "sampling": "undersample"}), gen),
                               (4 * nll0 + 4 * nll1) / 8)
    # over-sampling to 1:1: the 40 negatives and 40 draws of the positives, unweighted
    torch.testing.assert_close(loss_fn(logits, y, w, TrainOptions(**{**OPTS, "sampling": "oversample"}), gen),
                               (40 * nll0 + 40 * nll1) / 80)
    # ratio 2: two negatives per positive
    ratio_2 = TrainOptions(**{**OPTS, "sampling": "undersample", "sampling_ratio": 2.0})
    torch.testing.assert_close(loss_fn(logits, y, w, ratio_2, gen), (8 * nll0 + 4 * nll1) / 12)


def test_reset_parameters_changes_weights():
    model = StackedGAT(5, layers=1, width=2, heads=2)
    before = model.convs[0].weight.clone()
    model.reset_parameters()
    assert not torch.equal(before, model.convs[0].weight)


def _tiny_sets(n_sets: int, n_graphs: int, seed: int = 0):
    """n_sets Prepared sets of n_graphs random 4-node graphs on EDGES, standardised as they are."""
    from kernels.training import Prepared

    rng = np.random.default_rng(seed)
    mean, std = np.zeros(19, np.float32), np.ones(19, np.float32)
    return [Prepared([{"x": rng.standard_normal((4, 19)).astype(np.float32), "edge_index": EDGES.numpy(),
                       "y": rng.integers(0, 2, 4)} for _ in range(n_graphs)], mean, std, "cpu")
            for _ in range(n_sets)]


def test_a_fold_trains_the_same_stacked_or_alone():
    """Stacking is an implementation detail: fold f's model does not depend on its companions."""
    from kernels.training import TrainOptions, fit

    sets = _tiny_sets(3, 3)
    w = [torch.tensor([1.0, 2.0])] * 3
    opts = TrainOptions(epochs=3, learning_rate=1e-2, batch_graphs=2, loss="weighted_ce", sampling="none",
            focal_gamma=2.0, sampling_ratio=1.0, seed=0)
    stacked, _ = fit(sets, w, 2, 3, 2, opts, seeds=[10, 11, 12])
    alone, _ = fit(sets[2:], w[2:], 2, 3, 2, opts, seeds=[12])
    for a, b in zip(stacked[2].parameters(), alone[0].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_training_killed_after_a_checkpoint_ends_where_an_uninterrupted_one_does(tmp_path):
    """Weights, optimiser, generators and early-stopping state survive a save/load through a file."""
    from kernels.training import TrainOptions, fit

    train, val = _tiny_sets(2, 4), _tiny_sets(2, 2, seed=1)
    w = [torch.tensor([1.0, 3.0])] * 2
    opts = TrainOptions(epochs=7, patience=3, learning_rate=1e-2, batch_graphs=2, loss="weighted_ce",
            sampling="undersample", focal_gamma=2.0, sampling_ratio=1.0, seed=0)
    whole, whole_hist = fit(train, w, 2, 3, 2, opts, val_sets=val, seeds=[5, 6])

    class Killed(Exception):
        pass

    path = tmp_path / "train.pt"

    def save_then_die(state):
        torch.save(state, path)
        if state["epoch"] == 3:
            raise Killed

    with pytest.raises(Killed):
        fit(train, w, 2, 3, 2, opts, val_sets=val, seeds=[5, 6], save=save_then_die, save_every=2)
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert state["epoch"] == 3
    resumed, resumed_hist = fit(train, w, 2, 3, 2, opts, val_sets=val, seeds=[5, 6], resume=state)
    assert resumed_hist == whole_hist
    for a, b in zip(whole, resumed):
        for pa, pb in zip(a.parameters(), b.parameters()):
            assert torch.equal(pa, pb)
    with pytest.raises(ValueError, match="seeds"):
        fit(train, w, 2, 3, 2, opts, val_sets=val, seeds=[5, 7], resume=state)


def test_initial_parameters_are_distributed_as_gatconvs():
    """Attention vectors and weights start as PyG's GATConv starts them (same Glorot bounds):
    two-sample KS tests over many initialisations, and the bound √(6/(H + C)) of the attention."""
    from scipy.stats import ks_2samp
    from torch_geometric.nn import GATConv

    torch.manual_seed(0)
    ours = {"att": [], "weight": []}
    theirs = {"att": [], "weight": []}
    for _ in range(40):
        layer = StackedGATLayer(19, 10, heads=6, folds=2)
        ours["att"].append(layer.att_src.detach().flatten())
        ours["weight"].append(layer.weight.detach().flatten())
        conv = GATConv(19, 10, heads=6)
        theirs["att"].append(conv.att_src.detach().flatten())
        theirs["weight"].append(conv.lin.weight.detach().flatten())
    for name in ours:
        a, b = torch.cat(ours[name]).numpy(), torch.cat(theirs[name]).numpy()
        assert ks_2samp(a, b).pvalue > 1e-3, name
    bound = (6 / (6 + 10)) ** 0.5
    att = torch.cat(ours["att"])
    assert att.abs().max() <= bound and att.abs().max() > 0.98 * bound


@pytest.mark.parametrize("edge_dim", [0, 3])
def test_gradients_equal_pyg_gatconvs(edge_dim):
    """The sparse aggregation's own backward (kernels.attention) gives GATConv's gradients of the input,
    weights, attention vectors, edge maps and bias, fold by fold."""
    x = torch.randn(2, 4, 5, requires_grad=True)
    attr = [torch.randn(EDGES.shape[1], 3) for _ in range(2)] if edge_dim else None
    ours = StackedGATLayer(5, 3, heads=2, folds=2, edge_dim=edge_dim)
    upstream = torch.randn(2, 4, 6)
    (ours(x, union_graph([EDGES, EDGES], 4, attr)) * upstream).sum().backward()
    for f in range(2):
        ref = GATConv(5, 3, heads=2, edge_dim=edge_dim or None)
        with torch.no_grad():
            ref.lin.weight.copy_(ours.weight[f].T)
            for name in ("att_src", "att_dst") + (("att_edge",) if edge_dim else ()):
                getattr(ref, name).copy_(getattr(ours, name)[f][None])
            if edge_dim:
                ref.lin_edge.weight.copy_(ours.lin_edge[f].T)
            ref.bias.copy_(ours.bias[f])
        xf = x[f].detach().clone().requires_grad_(True)
        (ref(xf, EDGES, attr[f] if edge_dim else None) * upstream[f]).sum().backward()
        close = lambda a, b: torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)  # noqa: E731
        close(x.grad[f], xf.grad)
        close(ours.weight.grad[f], ref.lin.weight.grad.T)
        close(ours.att_src.grad[f], ref.att_src.grad[0])
        close(ours.att_dst.grad[f], ref.att_dst.grad[0])
        close(ours.bias.grad[f], ref.bias.grad)
        if edge_dim:
            close(ours.att_edge.grad[f], ref.att_edge.grad[0])
            close(ours.lin_edge.grad[f], ref.lin_edge.weight.grad.T)


def test_the_attention_backward_passes_gradcheck():
    """attend's hand-written backward against finite differences in float64, edge term included."""
    from torch.autograd import gradcheck

    from kernels.attention import attend

    adj = union_graph([EDGES, EDGES[:, :7]], 4)
    dtype = torch.float64
    h = torch.randn(8, 2, 3, dtype=dtype, requires_grad=True)
    a_src, a_dst = (torch.randn(8, 2, dtype=dtype, requires_grad=True) for _ in range(2))
    a_edge = torch.randn(len(adj.src), 2, dtype=dtype, requires_grad=True)
    assert gradcheck(lambda *t: attend(t[0], t[1], t[2], adj, t[3]), (h, a_src, a_dst, a_edge))
