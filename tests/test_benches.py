"""Every bench that can run without a campaign's store runs here in its quick mode, so that none rots
unnoticed (bench/aqs_vs_lammps.py once broke with the store's layout and nobody saw). The figures are
not checked, only that each bench runs to its end and says what it measured. The benches that read a
campaign's store (single_predictors, event_definitions, local_yield, lys_surroundings, softening_path) run in the slow
tier on the smoke campaign the slow modules share (``full_run``, conftest.py): about 30 s together."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bench(name: str, *args: str, timeout: int = 300) -> str:
    """Run bench/NAME with ``args`` from the repository's root; its output (it must exit 0)."""
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, os.path.join("bench", name), *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def test_bench_gat_memory_quick(tmp_path):
    bench("gat_memory.py", "--nodes", "40", "--points", "2,10,6", "--json", str(tmp_path / "memory.json"))
    row = json.loads((tmp_path / "memory.json").read_text())["rows"][0]
    assert row["stacked_GiB"] == pytest.approx(row["model_GiB"], rel=1e-3)  # the model counts what is saved


def test_bench_aqs_vs_lammps_quick(tmp_path):
    out = bench("aqs_vs_lammps.py", "--atoms", "250", "--steps", "3", "--repeats", "1", "--skip-campaign",
                "--json", str(tmp_path / "aqs.json"))
    assert json.loads((tmp_path / "aqs.json").read_text())["median_ratio"] > 0 and "median of 1" in out


def test_bench_store_layout_quick():
    assert "files" in bench("store_layout.py", "--steps", "5", "--atoms", "100")


def test_bench_gpu_check_runs_on_the_cpu_at_reduced_size(tmp_path):
    """bench/gpu_check.sh as a GPU session will run it, every step made small: gat_vs_pyg.py (alternating
    the trainers twice), gpu_training_job.py (killed at its first checkpoint, resumed, against the CPU),
    gpu_eigensolver.py (a 500-atom fcc crystal: the glass file has 10,000 atoms) and the gpu tier."""
    a, n = 3.615, 5
    cube = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    positions = np.array([(np.array([i, j, k]) + b) * a for i in range(n) for j in range(n) for k in range(n)
                          for b in cube])
    np.savez(tmp_path / "crystal.npz", types=np.ones(len(positions), np.int8), positions=positions,
             cell=np.eye(3) * a * n)
    env = {**os.environ, "OUT": str(tmp_path), "DEVICE": "cpu", "GLASS": str(tmp_path / "crystal.npz"),
           "GAT": "--device cpu --nodes 100 --graphs 4 --epochs 1 --points 2,10,6 --repeats 2",
           "OMP_NUM_THREADS": "1"}
    res = subprocess.run(["bash", "bench/gpu_check.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    assert len(summary["gat"]["results"][0]["speedups"]) == 2
    assert summary["job"]["checks"] == {"device_recorded": True, "resumed_from_a_checkpoint": True,
                                        "metrics_equal_to_cpu": True}
    assert summary["eigen"]["modes"] == 15 and summary["eigen"]["max_residual_over_largest_eigenvalue"] < 1e-8


def test_bench_hessian_vs_dynmat_quick():
    out = bench("hessian_vs_dynmat.py", "--sizes", "250,300", "--lammps-size", "250", "--solver-size", "250")
    assert "-> OK" in out and "log-log slope" in out


@pytest.mark.slow
def test_benches_reading_a_store_quick(full_run):
    store, res, _ = full_run
    assert res.returncode == 0, res.stdout + res.stderr
    out = bench("single_predictors.py", "--store", str(store), "--specimens", "0")
    assert "participation" in out and "seconds per specimen" in out
    assert "Jaccard" in bench("event_definitions.py", "--store", str(store))
    out = bench("local_yield.py", "--store", str(store), "--specimens", "0", "--directions", "xy",
                "--regions-per-axis", "1")
    assert "per region" in out and "-dtau_c (its own shear)" in out
    out = bench("lys_surroundings.py", "--store", str(store), "--preset", "smoke", "--regions", "0",
                "--shells", "7.6", "--replicate", "2")
    assert "shell 7.6" in out
    out = bench("softening_path.py", "--store", str(store), "--specimens", "0", "--steps", "2")
    assert "softening_path" in out and "gamma_path vs first_strain" in out
