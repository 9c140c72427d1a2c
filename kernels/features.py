"""The study's 19 per-atom features, in its order, for one shear direction.

f1-f2   Cu, Zr one-hot
f3-f4   Voronoi index <0,0,12,0> (full icosahedron) one-hot: [1,0] yes, [0,1] no
f5      Voronoi volume (Å³)
f6      potential energy (eV)
f7      participation fraction in the low-frequency vibrational modes
f8-f13  C14 C24 C34 C44 C54 C64 (GPa) of the atomic stiffness, in the shear frame
f14-f19 sigma11 sigma22 sigma33 sigma12 sigma23 sigma31 (GPa) of the atomic stress, in the shear frame

"Shear frame": rotated by ``kernels.frames.shear_rotation`` so that the applied
shear is +yz (Voigt 4) for every direction.
"""
from __future__ import annotations

import numpy as np

from kernels.frames import rotate_stiffness, rotate_stress

FEATURE_NAMES = (
    "Cu", "Zr", "icosahedral", "not_icosahedral", "voronoi_volume_A3", "potential_energy_eV",
    "participation_fraction",
    "C14_GPa", "C24_GPa", "C34_GPa", "C44_GPa", "C54_GPa", "C64_GPa",
    "sigma11_GPa", "sigma22_GPa", "sigma33_GPa", "sigma12_GPa", "sigma23_GPa", "sigma31_GPa",
)
# Voigt xx yy zz yz xz xy -> the study's sigma11 sigma22 sigma33 sigma12 sigma23 sigma31
STRESS_ORDER = [0, 1, 2, 5, 3, 4]


def atomic_tensors(stress_volume: np.ndarray, stiffness_volume: np.ndarray, volume: np.ndarray):
    """Per-atom stress (N, 6) and stiffness (N, 6, 6) in GPa from their volume-weighted
    forms (GPa·Å³) and the Voronoi volumes (N,) Å³."""
    return stress_volume / volume[:, None], stiffness_volume / volume[:, None, None]


def node_features(types, icosahedral, volume, energy, participation, stress, stiffness, rotation) -> np.ndarray:
    """(N, 19) float64 features of one (specimen, direction) graph.

    types (N,) 1 Cu / 2 Zr; icosahedral (N,) bool; volume (N,) Å³; energy (N,) eV;
    participation (N,); stress (N, 6) GPa and stiffness (N, 6, 6) GPa, Voigt, lab frame;
    rotation (3, 3) into the shear frame.
    """
    types = np.asarray(types)
    stiff = rotate_stiffness(stiffness, rotation)
    sig = rotate_stress(stress, rotation)
    columns = [
        types == 1, types == 2, icosahedral, ~np.asarray(icosahedral, dtype=bool),
        volume, energy, participation,
        *(stiff[:, k, 3] for k in range(6)),
        *(sig[:, k] for k in STRESS_ORDER),
    ]
    return np.stack([np.asarray(c, dtype=np.float64) for c in columns], axis=1)


# What a model's rows may hold beyond the study's 19: the linear response to its shear (kernels.response),
# and the local yield stress in its direction (kernels.lys: the region's residual strength, interpolated)
RESPONSE_NAMES = ("response_u_A", "response_low_u_A", "response_mode_drive_A2")
LYS_NAMES = ("lys_dtau_c_GPa",)
# the mode softening under the shear (kernels.softening): |ψ*_i|² of the predicted unstable mode, and the
# per-mode crossing score (dimensionless, each summing to 1 over a glass's atoms)
SOFTENING_NAMES = ("softening_psi", "softening_crossing")
# the softening followed along the path (kernels.continuation, softening.continuation_steps > 0): |ψ*_i|² at
# the last equilibrium before the predicted instability
PATH_NAMES = ("softening_path",)
STUDY = "study19"  # the study's own set: what a task without a feature_set uses
FEATURE_SETS = {STUDY: FEATURE_NAMES, "response": RESPONSE_NAMES, "study19+response": FEATURE_NAMES + RESPONSE_NAMES,
                "lys": LYS_NAMES, "study19+lys": FEATURE_NAMES + LYS_NAMES,
                "softening": SOFTENING_NAMES, "study19+softening": FEATURE_NAMES + SOFTENING_NAMES,
                "softening_path": PATH_NAMES, "study19+softening_path": FEATURE_NAMES + SOFTENING_NAMES + PATH_NAMES}


def _wanted(feature_sets, columns) -> set:
    return {c.lstrip("-") for c in columns} | {name for s in feature_sets for name in FEATURE_SETS[s]}


def needs_response(feature_sets=(), columns=()) -> bool:
    """Whether any of ``feature_sets`` (names of FEATURE_SETS) or ``columns`` (names of columns, a
    leading '-' for a negated score) holds a column of the linear response (a response task's)."""
    return bool(_wanted(feature_sets, columns) & set(RESPONSE_NAMES))


def needs_lys(feature_sets=(), columns=()) -> bool:
    """Whether any of them holds the local yield stress (the lys tasks')."""
    return bool(_wanted(feature_sets, columns) & set(LYS_NAMES))


def needs_softening(feature_sets=(), columns=()) -> bool:
    """Whether any of them holds a column of the mode softening (the softening tasks')."""
    return bool(_wanted(feature_sets, columns) & set(SOFTENING_NAMES + PATH_NAMES))


def needs_path(feature_sets=(), columns=()) -> bool:
    """Whether any of them holds the softening followed along the path (softening.continuation_steps > 0)."""
    return bool(_wanted(feature_sets, columns) & set(PATH_NAMES))


def set_holding(column: str) -> str:
    """The smallest feature set holding ``column`` (through which a single score reads it)."""
    return min((s for s, names in FEATURE_SETS.items() if column in names), key=lambda s: len(FEATURE_SETS[s]))


def columns_of(feature_set: str, names) -> np.ndarray:
    """Indices of ``feature_set``'s columns in rows whose columns are ``names``; ValueError naming
    the columns the rows lack."""
    names = list(names)
    missing = [n for n in FEATURE_SETS[feature_set] if n not in names]
    if missing:
        raise ValueError(
            f"feature set {feature_set}: no columns {missing} to read (the graph holds the study's 19; "
            "the others are joined from the response, softening or lys tasks, which this task was not given)"
        )
    return np.array([names.index(n) for n in FEATURE_SETS[feature_set]])
