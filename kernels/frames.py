"""Rotations into the frame of the applied shear, and Voigt tensors rotated by them.

Simple shear in direction ``d`` (e.g. ``-xz``: atoms displaced along x in
proportion to z, the negative way) has the symmetric strain
s * gamma * sym(e_disp ⊗ e_grad), s = ±1. For each of the six directions the
proper rotation R (det +1) maps the displaced axis onto +y and the gradient
axis onto s*z, so every applied shear becomes the same +yz (Voigt 4) shear
in the rotated frame; the third axis goes to ±x as det R = +1 requires:

    xy:  x->y,  y->z,  z->x        -xy:  x->y,  y->-z, z->-x
    yz:  identity                  -yz:  y->y,  z->-z, x->-x
    xz:  x->y,  z->z,  y->-x       -xz:  x->y,  z->-z, y->x

Voigt order xx yy zz yz xz xy; stiffness C (6x6) relates stress to
engineering strain, so C_IJ = C_ijkl without factors.
"""
from __future__ import annotations

import numpy as np

AXIS = {"x": 0, "y": 1, "z": 2}
VOIGT_PAIRS = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]


def shear_axes(direction: str) -> tuple[int, int, float]:
    """(displaced axis, gradient axis, sign) of a shear direction such as 'xy' or '-yz'."""
    sign = -1.0 if direction.startswith("-") else 1.0
    axes = direction.lstrip("-")
    return AXIS[axes[0]], AXIS[axes[1]], sign


def shear_rotation(direction: str) -> np.ndarray:
    """(3, 3) proper rotation R taking the applied shear onto +yz: v' = R v."""
    disp, grad, sign = shear_axes(direction)
    other = 3 - disp - grad
    r = np.zeros((3, 3))
    r[1, disp] = 1.0
    r[2, grad] = sign
    r[0, other] = 1.0
    if np.linalg.det(r) < 0:
        r[0, other] = -1.0
    return r


def tilt(direction: str, cell: np.ndarray, strain: float) -> tuple[str, float]:
    """(LAMMPS tilt factor 'xy', 'xz' or 'yz'; its value in Å) of simple shear ``strain`` in
    ``direction`` of the orthogonal box ``cell`` (3, 3) Å: atoms displaced along the first axis by
    ``strain`` times their coordinate along the second, the negative way for '-xy' and the like."""
    disp, grad, sign = shear_axes(direction)
    return direction.lstrip("-"), float(sign * strain * cell[grad, grad])


def voigt_shear(j: int) -> str:
    """The shear direction of Voigt component j = 3, 4, 5: 'yz', 'xz', 'xy'."""
    a, b = VOIGT_PAIRS[j]
    return "xyz"[a] + "xyz"[b]


def spin_correction(stress_voigt: np.ndarray, j: int) -> np.ndarray:
    """W S - S W per unit simple shear of Voigt component j (3, 4, 5), W its spin (the rotation a
    simple shear adds to the symmetric strain), for stresses S (..., 6) -> (..., 6): what the
    rotation alone changes of a pre-stress."""
    a, b = VOIGT_PAIRS[j]
    w = np.zeros((3, 3))
    w[a, b], w[b, a] = 0.5, -0.5
    s = voigt_to_tensor2(stress_voigt)
    return tensor2_to_voigt(w @ s - s @ w)


def applied_strain(direction: str, gamma: float = 1.0) -> np.ndarray:
    """(3, 3) symmetric strain of simple shear ``gamma`` in ``direction``."""
    disp, grad, sign = shear_axes(direction)
    e = np.zeros((3, 3))
    e[disp, grad] = e[grad, disp] = 0.5 * sign * gamma
    return e


def voigt_to_tensor2(v: np.ndarray) -> np.ndarray:
    """(..., 6) Voigt stress -> (..., 3, 3)."""
    t = np.empty(v.shape[:-1] + (3, 3))
    for k, (a, b) in enumerate(VOIGT_PAIRS):
        t[..., a, b] = t[..., b, a] = v[..., k]
    return t


def tensor2_to_voigt(t: np.ndarray) -> np.ndarray:
    return np.stack([t[..., a, b] for a, b in VOIGT_PAIRS], axis=-1)


def voigt_to_tensor4(c: np.ndarray) -> np.ndarray:
    """(..., 6, 6) Voigt stiffness -> (..., 3, 3, 3, 3) with minor symmetries."""
    t = np.empty(c.shape[:-2] + (3, 3, 3, 3))
    for i, (a, b) in enumerate(VOIGT_PAIRS):
        for j, (k, m) in enumerate(VOIGT_PAIRS):
            for p, q in {(a, b), (b, a)}:
                for r, s in {(k, m), (m, k)}:
                    t[..., p, q, r, s] = c[..., i, j]
    return t


def tensor4_to_voigt(t: np.ndarray) -> np.ndarray:
    c = np.empty(t.shape[:-4] + (6, 6))
    for i, (a, b) in enumerate(VOIGT_PAIRS):
        for j, (k, m) in enumerate(VOIGT_PAIRS):
            c[..., i, j] = t[..., a, b, k, m]
    return c


def rotate_stress(voigt: np.ndarray, r: np.ndarray) -> np.ndarray:
    """(N, 6) Voigt stresses in the frame rotated by R: sigma' = R sigma Rᵀ."""
    return tensor2_to_voigt(np.einsum("ia,jb,nab->nij", r, r, voigt_to_tensor2(voigt)))


def rotate_stiffness(c: np.ndarray, r: np.ndarray) -> np.ndarray:
    """(N, 6, 6) Voigt stiffnesses in the frame rotated by R: C'_ijkl = R_ia R_jb R_kc R_ld C_abcd."""
    t = voigt_to_tensor4(c)
    return tensor4_to_voigt(np.einsum("ia,jb,kc,ld,nabcd->nijkl", r, r, r, r, t, optimize=True))
