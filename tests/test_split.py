"""The split never puts a specimen in two sets; CV folds are disjoint and cover train + validation."""
import pytest

from kernels.split import cv_folds, split_specimens


@pytest.mark.parametrize("n,sizes", [(5, (3, 1, 1)), (10, (6, 2, 2)), (75, (45, 15, 15))])
def test_split_is_a_partition(n, sizes):
    train, val, test = split_specimens(n, sizes, seed=3)
    assert (len(train), len(val), len(test)) == sizes
    assert sorted(train + val + test) == list(range(n))
    assert not set(train) & set(val) and not set(train) & set(test) and not set(val) & set(test)


def test_split_is_seeded():
    assert split_specimens(10, (6, 2, 2), 1) == split_specimens(10, (6, 2, 2), 1)
    assert split_specimens(10, (6, 2, 2), 1) != split_specimens(10, (6, 2, 2), 2)


@pytest.mark.parametrize("n,folds", [(4, 4), (8, 4), (60, 4), (7, 3)])
def test_folds_are_disjoint_and_cover(n, folds):
    ids = list(range(100, 100 + n))
    groups = cv_folds(ids, folds, seed=0)
    assert len(groups) == folds
    flat = [s for g in groups for s in g]
    assert sorted(flat) == ids and len(set(flat)) == n
    assert max(map(len, groups)) - min(map(len, groups)) <= 1


def test_bad_sizes_are_errors():
    with pytest.raises(ValueError):
        split_specimens(5, (3, 1, 2), 0)
    with pytest.raises(ValueError):
        cv_folds([1, 2, 3], 4, 0)
