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
