"""Periodic Voronoi tessellation: exact crystals, triclinic boxes, and OVITO / freud (voro++) on a glass.

The voro++ references (OVITO, freud) run in a subprocess: loading them in a process that has loaded
LAMMPS segfaults, and other tests in this session may import LAMMPS.
"""
import importlib.util
import itertools
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from kernels.neighbours import neighbour_pairs
from kernels.voronoi import Tessellation, is_icosahedral, voronoi

DENSITY = 0.06      # atoms / Å³, like a metallic glass
A_FCC = 3.61        # Å, Cu
A_BCC = 2.87        # Å, Fe


def lammps_cell(lx, ly, lz, xy=0.0, xz=0.0, yz=0.0):
    return np.array([[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]])


def to_lammps(vectors):
    """Rows A, B, C of any right-handed cell -> the same lattice as LAMMPS rows a, b, c (rotated)."""
    A, B, C = np.asarray(vectors, dtype=float)
    lx = np.linalg.norm(A)
    xy = B @ A / lx
    ly = np.sqrt(B @ B - xy**2)
    xz = C @ A / lx
    yz = (B @ C - xy * xz) / ly
    lz = np.sqrt(C @ C - xz**2 - yz**2)
    return lammps_cell(lx, ly, lz, xy, xz, yz)


def lattice(basis, cell_vectors, reps):
    """Positions (reps³·len(basis), 3) and cell (3,3) of a reps×reps×reps supercell, LAMMPS orientation."""
    unit = to_lammps(cell_vectors)
    grid = np.array(list(itertools.product(range(reps), repeat=3)), dtype=float)
    s = (grid[:, None, :] + np.asarray(basis, dtype=float)[None]).reshape(-1, 3)
    return s @ unit, reps * unit


def random_images(positions, cell, rng):
    return positions + rng.integers(-3, 4, size=positions.shape) @ cell


BOXES = {
    "orthogonal": lammps_cell(18.0, 17.0, 19.0),
    "triclinic": lammps_cell(18.0, 17.0, 19.0, xy=9.0, xz=-9.0, yz=8.5),      # LAMMPS's tilt limit
    "beyond-limit": lammps_cell(18.0, 17.0, 19.0, xy=25.0, xz=-20.0, yz=30.0),
}


def check_symmetric(t):
    n = len(t.volume)
    key = t.i * n + t.j
    assert (np.diff(key) >= 0).all(), "not sorted by i then j"
    o = np.lexsort((t.area, t.i, t.j))          # the reversed list, sorted by (j, i, area)
    np.testing.assert_array_equal(t.j[o], t.i)
    np.testing.assert_array_equal(t.i[o], t.j)
    np.testing.assert_allclose(t.area[o], t.area, rtol=1e-9, atol=0)


@pytest.mark.parametrize("box", BOXES)
def test_volumes_tile_the_box_for_unwrapped_positions(box):
    rng = np.random.default_rng(1)
    cell = BOXES[box]
    positions = rng.random((350, 3)) @ cell
    t = voronoi(random_images(positions, cell, rng), cell)
    assert isinstance(t, Tessellation)
    assert t.volume.shape == (350,) and t.index.shape == (350, 8) and t.i.dtype == np.int64
    np.testing.assert_allclose(t.volume.sum(), abs(np.linalg.det(cell)), rtol=1e-9)
    assert (t.volume > 0).all()
    check_symmetric(t)
    ref = voronoi(positions, cell)                   # same tessellation whatever the images
    np.testing.assert_allclose(t.volume, ref.volume, rtol=1e-9)
    np.testing.assert_array_equal(t.index, ref.index)
    np.testing.assert_array_equal(t.i, ref.i)
    np.testing.assert_array_equal(t.j, ref.j)


def test_faces_and_volumes_consistent_without_threshold():
    """V_i = Σ_j A_ij |r_ij| / 6 (pyramids), every face in both lists and in the index."""
    rng = np.random.default_rng(2)
    cell = BOXES["orthogonal"]
    positions = rng.random((350, 3)) @ cell
    t = voronoi(positions, cell, face_area_fraction=0.0)
    check_symmetric(t)
    pi, pj, d = neighbour_pairs(positions, cell, 8.4)   # minimum image is unambiguous below L/2
    key = dict(zip(zip(pi.tolist(), pj.tolist()), np.linalg.norm(d, axis=1)))
    dist = np.array([key[p] for p in zip(t.i.tolist(), t.j.tolist())])
    np.testing.assert_allclose(np.bincount(t.i, t.area * dist / 6.0, minlength=350), t.volume, rtol=1e-10)
    np.testing.assert_array_equal(t.index.sum(axis=1), np.bincount(t.i, minlength=350))
    surface = np.bincount(t.i, t.area, minlength=350)
    assert (surface**3 >= 36 * np.pi * t.volume**2).all()     # isoperimetric inequality

    kept = voronoi(positions, cell)                    # 1 %: fewer faces, same volumes
    np.testing.assert_array_equal(kept.volume, t.volume)
    assert kept.index.sum() < t.index.sum() and len(kept.i) < len(t.i)
    check_symmetric(kept)
    frac = kept.area / surface[kept.i]
    assert (frac >= 0.01).all() and (kept.area / surface[kept.j] >= 0.01).all()


FCC = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
BCC = [[0, 0, 0], [0.5, 0.5, 0.5]]
CRYSTALS = {   # name: (positions, cell, index, volume per atom)
    "fcc-cubic": (*lattice(FCC, A_FCC * np.eye(3), 4), [0, 12, 0, 0], A_FCC**3 / 4),
    "fcc-primitive": (*lattice([[0, 0, 0]], A_FCC / 2 * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]]), 4),
                      [0, 12, 0, 0], A_FCC**3 / 4),
    "bcc-cubic": (*lattice(BCC, A_BCC * np.eye(3), 4), [0, 6, 0, 8], A_BCC**3 / 2),
    "bcc-primitive": (*lattice([[0, 0, 0]], A_BCC / 2 * np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]]), 5),
                      [0, 6, 0, 8], A_BCC**3 / 2),
}


@pytest.mark.parametrize("name", CRYSTALS)
def test_perfect_crystals(name):
    """Exact lattice sites, no perturbation needed: qhull merges the cospherical (degenerate) vertices."""
    positions, cell, index, volume = CRYSTALS[name]
    t = voronoi(random_images(positions, cell, np.random.default_rng(3)), cell, face_area_fraction=0.0)
    np.testing.assert_array_equal(t.index, np.broadcast_to(index + [0] * 4, t.index.shape))
    np.testing.assert_allclose(t.volume, volume, rtol=1e-12)
    n_faces = sum(index)
    assert len(t.i) == n_faces * len(positions)
    check_symmetric(t)
    if name.startswith("fcc"):      # rhombic dodecahedron of edge e: V = 16√3/9 e³, S = 8√2 e², 12 faces
        e = (9 * volume / (16 * np.sqrt(3))) ** (1 / 3)
        np.testing.assert_allclose(t.area, 8 * np.sqrt(2) * e**2 / 12, rtol=1e-12)
    assert not is_icosahedral(t.index).any()


def test_tiny_boxes_repeat_pairs_per_face():
    """One fcc unit cell (4 atoms): every neighbour is one of 4 images of the 3 others."""
    positions, cell = lattice(FCC, A_FCC * np.eye(3), 1)
    t = voronoi(positions, cell, face_area_fraction=0.0)
    np.testing.assert_allclose(t.volume, A_FCC**3 / 4, rtol=1e-12)
    assert (t.index[:, 1] == 12).all() and len(t.i) == 48
    assert (np.unique(np.c_[t.i, t.j], axis=0, return_counts=True)[1] == 4).all()
    one, cell1 = lattice([[0, 0, 0]], A_FCC / 2 * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]]), 1)
    t1 = voronoi(one, cell1, face_area_fraction=0.0)      # a single atom: all faces with itself
    np.testing.assert_allclose(t1.volume, A_FCC**3 / 4, rtol=1e-12)
    assert (t1.i == 0).all() and (t1.j == 0).all() and t1.index[0, 1] == 12


def test_icosahedron():
    golden = (1 + np.sqrt(5)) / 2
    ico = np.array([p for s1 in (-1, 1) for s2 in (-1, 1)
                    for p in ([0, s1, s2 * golden], [s1, s2 * golden, 0], [s2 * golden, 0, s1])])
    ico *= 2.7 / np.linalg.norm(ico[0])
    rng = np.random.default_rng(4)
    cell = lammps_cell(14.0, 14.0, 14.0, xy=3.0)
    positions = np.vstack([[7.0, 7.0, 7.0], 7.0 + ico, rng.random((60, 3)) @ cell])
    positions = positions[np.r_[0:13, 13 + np.flatnonzero(np.linalg.norm(positions[13:] - 7.0, axis=1) > 6.0)]]
    t = voronoi(positions, cell)
    np.testing.assert_array_equal(t.index[0], [0, 0, 12, 0, 0, 0, 0, 0])
    assert is_icosahedral(t.index)[0]
    assert sorted(t.j[t.i == 0].tolist()) == list(range(1, 13))
    index = np.array([[0, 0, 12, 0, 0, 0, 0, 0], [0, 0, 12, 0, 1, 0, 0, 0], [0, 1, 10, 2, 0, 0, 0, 0],
                      [0, 0, 12, 1, 0, 0, 0, 0], [1, 0, 12, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(is_icosahedral(index), [True, False, False, False, False])


def test_margin_errors():
    rng = np.random.default_rng(5)
    cell = BOXES["triclinic"]
    positions = rng.random((350, 3)) @ cell
    with pytest.raises(ValueError, match="larger margin"):
        voronoi(positions, cell, margin=0.5)
    np.testing.assert_allclose(voronoi(positions, cell, margin=9.0).volume, voronoi(positions, cell).volume,
                               rtol=1e-10)
    positions[7] = positions[3] + cell[1]
    with pytest.raises(ValueError, match="same place"):
        voronoi(positions, cell)


# ---------------------------------------------------------------------------- glass vs voro++


def soft_sphere_glass(n=400, seed=0, steps=250):
    """Cu64Zr36-like jammed packing: random positions at DENSITY, harmonic repulsion relaxed by descent."""
    rng = np.random.default_rng(seed)
    edge = (n / DENSITY) ** (1 / 3)
    cell = lammps_cell(edge, edge, edge, xy=0.2 * edge, xz=-0.1 * edge, yz=0.15 * edge)
    sigma = np.where(rng.random(n) < 0.36, 3.16, 2.56)       # Zr, Cu diameters (Å)
    s = rng.random((n, 3))
    inv = np.linalg.inv(cell)
    for _ in range(steps):
        i, j, d = neighbour_pairs(s @ cell, cell, 3.2)
        r = np.linalg.norm(d, axis=1)
        sij = 0.5 * (sigma[i] + sigma[j])
        f = -(np.clip(1 - r / sij, 0, None) / (sij * r))[:, None] * d
        s += 0.5 * np.stack([np.bincount(i, f[:, k], minlength=n) for k in range(3)], axis=1) @ inv
    return s @ cell, cell


REFERENCE = textwrap.dedent("""
    import json, sys
    import numpy as np
    z = np.load(sys.argv[1]); positions, cell = z["positions"], z["cell"]
    out, versions = {}, {}
    try:
        import ovito
        from ovito.data import DataCollection
        from ovito.modifiers import VoronoiAnalysisModifier
        from ovito.pipeline import Pipeline, StaticSource
        data = DataCollection()
        matrix = np.zeros((3, 4)); matrix[:, :3] = cell.T
        data.create_cell(matrix, pbc=(True, True, True))
        data.create_particles(count=len(positions)).create_property("Position", data=positions)
        for tag, threshold in (("0", 0.0), ("1", 0.01)):
            pipeline = Pipeline(source=StaticSource(data=data))
            pipeline.modifiers.append(VoronoiAnalysisModifier(
                compute_indices=True, relative_face_threshold=threshold, generate_bonds=True))
            result = pipeline.compute()
            out["ovito_volume"] = np.asarray(result.particles["Atomic Volume"])
            out["ovito_index" + tag] = np.asarray(result.particles["Voronoi Index"])
            out["ovito_bonds" + tag] = np.asarray(result.particles.bonds.topology)
        versions["ovito"] = ".".join(map(str, ovito.version))
    except ImportError:
        pass
    try:
        import freud
        box = freud.box.Box.from_matrix(cell.T)
        v = freud.locality.Voronoi()
        v.compute((box, box.wrap(positions)))
        out["freud_volume"] = np.asarray(v.volumes)
        out["freud_i"] = np.asarray(v.nlist.query_point_indices)
        out["freud_j"] = np.asarray(v.nlist.point_indices)
        out["freud_area"] = np.asarray(v.nlist.weights)
        versions["freud"] = freud.__version__
    except ImportError:
        pass
    np.savez(sys.argv[2], **out)
    print(json.dumps(versions))
""")

HAVE_REFERENCE = any(importlib.util.find_spec(m) is not None for m in ("ovito", "freud"))


@pytest.fixture(scope="module")
def glass_reference(tmp_path_factory):
    if not HAVE_REFERENCE:
        pytest.skip("neither ovito nor freud-analysis is installed")
    positions, cell = soft_sphere_glass()
    folder = tmp_path_factory.mktemp("voronoi")
    np.savez(folder / "in.npz", positions=positions, cell=cell)
    run = subprocess.run([sys.executable, "-c", REFERENCE, str(folder / "in.npz"), str(folder / "out.npz")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    versions = json.loads(run.stdout.strip().splitlines()[-1])
    return positions, cell, dict(np.load(folder / "out.npz")), versions


def pair_set(i, j):
    return set(zip(np.minimum(i, j).tolist(), np.maximum(i, j).tolist()))


def test_glass_against_ovito(glass_reference):
    positions, cell, ref, versions = glass_reference
    if "ovito" not in versions:
        pytest.skip("ovito is not installed")
    t0 = voronoi(positions, cell, face_area_fraction=0.0)
    t1 = voronoi(positions, cell, face_area_fraction=0.01)
    np.testing.assert_allclose(t0.volume, ref["ovito_volume"], rtol=1e-8)
    assert 40 < is_icosahedral(t1.index).sum() + (t1.index[:, 2] >= 8).sum()      # glassy, not a gas
    for t, tag in ((t0, "0"), (t1, "1")):
        ovito_index = ref["ovito_index" + tag]          # column k counts faces with k + 1 edges
        assert ovito_index[:, :2].sum() == 0 and ovito_index.shape[1] <= 11
        np.testing.assert_array_equal(t.index[:, : ovito_index.shape[1] - 2], ovito_index[:, 2:])
        assert t.index[:, ovito_index.shape[1] - 2:].sum() == 0
    assert pair_set(t0.i, t0.j) == pair_set(*ref["ovito_bonds0"].T)
    # OVITO keeps a bond if the lower-index atom keeps the face; ours needs both cells, so
    # ours ⊆ OVITO's ⊆ the faces kept by either cell.
    surface = np.bincount(t0.i, t0.area)
    either = (t0.area >= 0.01 * surface[t0.i]) | (t0.area >= 0.01 * surface[t0.j])
    ovito1 = pair_set(*ref["ovito_bonds1"].T)
    assert pair_set(t1.i, t1.j) <= ovito1 <= pair_set(t0.i[either], t0.j[either])


def test_glass_against_freud(glass_reference):
    """freud works in float32: volumes to 1e-5, faces above 1e-4 Å² (below, float32 noise)."""
    positions, cell, ref, versions = glass_reference
    if "freud" not in versions:
        pytest.skip("freud-analysis is not installed")
    t0 = voronoi(positions, cell, face_area_fraction=0.0)
    np.testing.assert_allclose(t0.volume, ref["freud_volume"], rtol=1e-5)
    fi, fj, fa = ref["freud_i"], ref["freud_j"], ref["freud_area"]
    big = fa > 1e-4
    assert set(zip(fi[big].tolist(), fj[big].tolist())) == set(zip(t0.i[t0.area > 1e-4].tolist(),
                                                                   t0.j[t0.area > 1e-4].tolist()))
    mine = dict(zip(zip(t0.i.tolist(), t0.j.tolist()), t0.area))
    np.testing.assert_allclose([mine[p] for p in zip(fi[big].tolist(), fj[big].tolist())], fa[big],
                               rtol=1e-4, atol=1e-5)


def test_ten_thousand_atoms_in_a_strongly_tilted_box():
    """The paper's size (its timing belongs in bench/, not here)."""
    rng = np.random.default_rng(6)
    edge = (10_000 / DENSITY) ** (1 / 3)
    cell = lammps_cell(edge, edge, edge, xy=0.3 * edge, xz=-0.2 * edge, yz=0.4 * edge)
    positions = rng.random((10_000, 3)) @ cell
    t = voronoi(positions, cell)
    np.testing.assert_allclose(t.volume.sum(), abs(np.linalg.det(cell)), rtol=1e-9)
