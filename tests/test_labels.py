"""First-event labels on hand-made D2min arrays."""
import numpy as np

from kernels.labels import first_events

T = np.array([0.1, 0.5])


def test_threshold_never_reached():
    d2 = np.full((5, 8), 0.05)
    ev = first_events(d2, T, min_group_size=1)
    assert ev.step.tolist() == [-1, -1]
    assert not ev.mask.any() and not ev.complete


def test_reached_on_last_step_only():
    d2 = np.zeros((4, 6))
    d2[3, 2] = 0.2
    ev = first_events(d2, T, min_group_size=1)
    assert ev.step.tolist() == [3, -1]
    assert ev.mask[0].tolist() == [False, False, True, False, False, False]
    assert not ev.mask[1].any()


def test_several_atoms_at_once_and_later_steps_ignored():
    d2 = np.zeros((5, 6))
    d2[1, [0, 4, 5]] = [0.3, 0.6, 0.11]
    d2[3, :] = 1.0  # a later, larger event must not change the first one
    ev = first_events(d2, T, min_group_size=1)
    assert ev.step.tolist() == [1, 1]
    assert np.flatnonzero(ev.mask[0]).tolist() == [0, 4, 5]
    assert np.flatnonzero(ev.mask[1]).tolist() == [4]
    assert ev.complete


def test_min_group_size_skips_lone_atoms():
    d2 = np.zeros((4, 6))
    d2[1, 0] = 0.2          # one atom: not a group
    d2[2, [1, 2, 3]] = 0.2  # three atoms: the event
    ev = first_events(d2, T[:1], min_group_size=3)
    assert ev.step.tolist() == [2]
    assert np.flatnonzero(ev.mask[0]).tolist() == [1, 2, 3]


def test_threshold_is_strictly_exceeded():
    d2 = np.zeros((2, 3))
    d2[1, :] = 0.1
    assert first_events(d2, T, 1).step.tolist() == [-1, -1]


def chain_pairs(n, links):
    """Neighbour pairs (both orders) of the given links between n atoms."""
    i = np.array([a for a, b in links] + [b for a, b in links], dtype=np.int64)
    j = np.array([b for a, b in links] + [a for a, b in links], dtype=np.int64)
    return lambda step: (i, j)


def test_cluster_events_need_neighbouring_atoms():
    """Step 1: three atoms above 0.1 far apart (an event anywhere, not a cluster); step 2: three
    neighbours above it (the cluster event), plus one lone atom labelled only as 'above'."""
    from kernels.labels import first_cluster_events

    d2 = np.zeros((3, 8))
    d2[1, [0, 3, 6]] = 0.2
    d2[2, [1, 2, 3, 7]] = 0.2
    pairs = chain_pairs(8, [(1, 2), (2, 3), (4, 5)])
    anywhere = first_events(d2, T[:1], 3)
    assert anywhere.step.tolist() == [1]
    cluster = first_cluster_events(d2, T[:1], 3, pairs)
    assert cluster.step.tolist() == [2] and np.flatnonzero(cluster.mask[0]).tolist() == [1, 2, 3]
    above = first_cluster_events(d2, T[:1], 3, pairs, positive="above")
    assert above.step.tolist() == [2] and np.flatnonzero(above.mask[0]).tolist() == [1, 2, 3, 7]
    never = first_cluster_events(d2, np.array([0.5]), 3, pairs)
    assert never.step.tolist() == [-1] and not never.mask.any()


def test_cluster_events_agree_with_anywhere_when_every_group_is_one_cluster():
    from kernels.labels import first_cluster_events

    rng = np.random.default_rng(0)
    d2 = rng.random((6, 20)) * 0.3
    everyone = [(a, b) for a in range(20) for b in range(a + 1, 20)]  # all neighbours: one cluster
    for g in (1, 3, 5):
        a = first_events(d2, T, g)
        c = first_cluster_events(d2, T, g, chain_pairs(20, everyone), positive="above")
        np.testing.assert_array_equal(a.step, c.step)
        np.testing.assert_array_equal(a.mask, c.mask)
