"""Specimen-grouped splits: all six shear directions of a specimen stay in one set."""
from __future__ import annotations

import numpy as np


def split_specimens(n: int, sizes: tuple[int, int, int], seed: int) -> tuple[list[int], list[int], list[int]]:
    """(train, validation, test) specimen ids from a seeded permutation of range(n); sizes sum to n."""
    if sum(sizes) != n:
        raise ValueError(f"split sizes {sizes} do not add up to {n} specimens")
    order = np.random.default_rng(seed).permutation(n).tolist()
    a, b = sizes[0], sizes[0] + sizes[1]
    return sorted(order[:a]), sorted(order[a:b]), sorted(order[b:])


def cv_folds(specimens: list[int], folds: int, seed: int) -> list[list[int]]:
    """Disjoint held-out groups of ``specimens`` for ``folds``-fold cross-validation (sizes differ by ≤ 1)."""
    if len(specimens) < folds:
        raise ValueError(f"{len(specimens)} specimens cannot make {folds} folds")
    order = np.random.default_rng(seed + 1).permutation(sorted(specimens)).tolist()
    return [sorted(order[f::folds]) for f in range(folds)]


def inner_validation(specimens: list[int], fractions: list[float], seed: int) -> list[int]:
    """The specimens of a CV fold's training set that it early-stops on: the same share of them as
    the validation set has of train + validation (``fractions`` train : validation : test), at
    least one, chosen by a seeded permutation; so CV folds and final models follow one protocol."""
    n_val = max(1, int(round(len(specimens) * fractions[1] / (fractions[0] + fractions[1]))))
    if n_val >= len(specimens):
        raise ValueError(f"{len(specimens)} training specimens leave none to train on beside {n_val} to stop on")
    return sorted(np.random.default_rng(seed + 2).permutation(sorted(specimens)).tolist()[:n_val])


def fold_sets(specimens: list[int], folds: int, fractions: list[float], seed: int,
              inner_seed: int | None = None) -> list[tuple[tuple, tuple, tuple]]:
    """(held out, fitted on, stopped on) specimens of each of ``folds`` specimen-grouped folds: each
    fold trains on the others' specimens less an inner share it early-stops on (``inner_validation``,
    seeded ``inner_seed + f``; default ``seed``), as the final models train on train and stop on
    validation."""
    inner_seed = seed if inner_seed is None else inner_seed
    out = []
    for f, held in enumerate(cv_folds(specimens, folds, seed)):
        rest = sorted(set(specimens) - set(held))
        stop_on = inner_validation(rest, fractions, inner_seed + f)
        out.append((tuple(held), tuple(s for s in rest if s not in stop_on), tuple(stop_on)))
    return out
