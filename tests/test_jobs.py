"""Each LAMMPS job on a tiny system, for real, as ``mpiexec -n 2 python -m jobs``."""
import dataclasses
import importlib
import os

import numpy as np
import pytest

from campaign import config, plan, state
from campaign.dispatch import spec as job_spec
from campaign.execute import execute
from campaign.tasks import Section
from store import layout, records

pytestmark = pytest.mark.mpi

TINY = {  # 250 atoms: the smallest box wider than twice the potential's 7.6 A cutoff
    "system": {"n_atoms": 250},
    "liquid": {"discard_ps": 1.0, "equilibration_ps": 5.0, "snapshot_interval_ps": 1.0},
    "quench": {"specimens": 5, "rate_K_per_s": 1.0e15},
    "shear": {"directions": ["xy", "-yz"], "max_strain": 0.006, "strain_step": 0.001, "early_stop": False},
    "labels": {"thresholds_A2": [0.0003, 0.05, 0.1, 10.0], "min_group_size": 1},
}
N = 250


def run(task, store, cfg, ranks=2):
    return execute(job_spec(task, str(store), cfg), ranks, 1, "mpiexec")


def data(store, tasks, label):
    """The data group of the task ``label``, through its record."""
    task = next(t for t in tasks if t.label == label)
    return layout.group(layout.open_root(str(store)), records.read(str(store), task.key)["path"])


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    store = tmp_path_factory.mktemp("jobs") / "s.zarr"
    cfg = config.load("smoke", overrides={**TINY, "store": str(store)})
    tasks = [t for t in plan.plan(cfg) if t.STAGE == "liquid" or getattr(t, "specimen", None) == 0]
    state.init_store(str(store), cfg, tasks, config.science_hash(cfg), "test")
    outcomes = {t.label: run(t, store, cfg=cfg) for t in tasks}
    return cfg, tasks, store, outcomes


def test_every_job_succeeds_on_two_ranks(campaign):
    _, tasks, store, outcomes = campaign
    assert {o.status for o in outcomes.values()} == {"done"}, outcomes
    recs = records.read_all(str(store))
    for t in tasks:
        assert recs[t.key]["ranks"] == 2
        assert recs[t.key]["checksums"]  # what it wrote, read back
        # resources, from the job itself: peak memory and CPU time of every rank that ran it (a LAMMPS job runs
        # on both ranks, so the sum of their peaks is more; a serial job's second rank returns at once)
        rec = recs[t.key]
        module, name = t.JOB.split(":")
        if getattr(importlib.import_module(module), name).EVERY_RANK:
            assert 50 < rec["peak_rss_MiB"] < rec["peak_rss_MiB_all_ranks"] < 4096, rec
        else:
            assert 50 < rec["peak_rss_MiB"] == rec["peak_rss_MiB_all_ranks"] < 4096, rec
        assert 0 < rec["cpu_seconds"] < 2 * 2 * rec["seconds"] + 5, rec


def test_a_job_without_lammps_runs_where_lammps_cannot_be_imported(campaign, tmp_path, monkeypatch):
    """GPU nodes need not have LAMMPS: the jobs that do not run it (labels, structure, graph, training) must
    not import it, not even through python -m jobs."""
    cfg, tasks, store, _ = campaign
    (tmp_path / "lammps").mkdir()
    (tmp_path / "lammps" / "__init__.py").write_text("raise ImportError('no LAMMPS on this node')\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    for stage in ("labels", "graph"):
        task = next(t for t in tasks if t.STAGE == stage)
        records.remove(str(store), task.key)
        outcome = run(task, store, ranks=1, cfg=cfg)
        assert outcome.status == "done", outcome
    shear = next(t for t in tasks if t.STAGE == "shear")
    records.remove(str(store), shear.key)
    outcome = run(shear, store, ranks=1, cfg=cfg)  # the fake package is seen: this job does need LAMMPS
    assert outcome.status == "failed" and "no LAMMPS on this node" in outcome.reason, outcome
    monkeypatch.undo()
    assert run(shear, store, cfg=cfg).status == "done"  # as it was, for the tests that read it


def test_fire_minimises_a_quenched_glass_at_zero_pressure_as_cg_does(campaign, tmp_path):
    """minimize.style fire (FIRE at a fixed box, the box relaxed by CG in between) ends in an inherent
    structure of the same liquid as CG's: another basin (4.5 meV/atom apart here, at 1e15 K/s), the same
    glass to 10 meV per atom and 1% in density, at zero pressure within 0.1 GPa."""
    cfg, tasks, store, _ = campaign
    cg = records.read(str(store), next(t for t in tasks if t.STAGE == "quench").key)["summary"]
    store = tmp_path / "fire.zarr"
    fire = config.load("smoke", overrides={**TINY, "store": str(store), "minimize": {"style": "fire"}})
    liquid, quench = (next(t for t in plan.plan(fire) if t.STAGE == s and getattr(t, "specimen", 0) == 0)
                      for s in ("liquid", "quench"))
    state.init_store(str(store), fire, [liquid, quench], config.science_hash(fire), "test")
    assert [run(t, store, cfg=fire).status for t in (liquid, quench)] == ["done", "done"]
    fired = records.read(str(store), quench.key)["summary"]
    assert abs(fired["energy_per_atom_eV"] - cg["energy_per_atom_eV"]) < 1e-2, (fired, cg)
    assert fired["density_per_A3"] == pytest.approx(cg["density_per_A3"], rel=0.01)
    assert abs(fired["pressure_bar"]) < 1000, fired
    with open(spec_log(job_spec(quench, str(store), fire))) as log:
        assert "min_style fire" in log.read()


def test_liquid_samples_microstates(campaign):
    cfg, tasks, store, _ = campaign
    liq = data(store, tasks, "liquid")
    assert liq["positions"].shape == (5, N, 3) and liq["velocities"].shape == (5, N, 3)
    assert (liq["types"][:] == 2).sum() == 90  # Cu64Zr36 of 250
    assert np.all(liq["temperature_K"][:] > 1000)


def test_quench_makes_a_dense_minimised_glass(campaign):
    _, tasks, store, outcomes = campaign
    s = next(iter(outcomes["quench s000"].summaries.values()))  # the job of one task: its summary
    assert 0.058 < s["density_per_A3"] < 0.066
    assert abs(s["pressure_bar"]) < 500
    q = data(store, tasks, "quench s000")
    assert q["pe"].shape == (N,) and np.all(q["pe"][:] < -2)


def test_shear_tilts_the_box_and_labels_first_events(campaign):
    cfg, tasks, store, _ = campaign
    from kernels.labels import first_events

    for direction, (row, col) in {"xy": (1, 0), "-yz": (2, 1)}.items():
        g = data(store, tasks, f"shear s000 {direction}")
        lab = data(store, tasks, f"labels s000 {direction}")
        cell = g["cell"][:]
        assert g["strain"].shape == (7,)
        np.testing.assert_allclose(g["strain"][:], np.arange(7) * 0.001)
        sign = -1 if direction.startswith("-") else 1
        lz_or_ly = cell[0][row, row]
        np.testing.assert_allclose(cell[:, row, col], sign * g["strain"][:] * lz_or_ly, atol=1e-9)
        d2 = g["d2min_A2"][:]
        assert d2.shape == (7, N) and np.all(d2[0] == 0) and np.all(d2 >= 0)
        ev = first_events(d2, np.array(cfg["labels"]["thresholds_A2"]), 1)
        np.testing.assert_array_equal(lab["first_step"][:], ev.step)
        np.testing.assert_array_equal(lab["mask"][:], ev.mask)
        assert ev.step[0] >= 1 and ev.step[-1] == -1  # 10 A^2 is never reached
        assert np.isnan(lab["first_strain"][-1])
        # shear stress responds to the shear with the sign of the shear
        voigt = {"xy": 5, "yz": 3}[direction.lstrip("-")]
        assert sign * (g["stress_GPa"][1, voigt] - g["stress_GPa"][0, voigt]) > 0


def test_per_atom_stiffness_averages_to_the_global_one(campaign):
    """Volume-weighted mean of per-atom C44 (stress response / Voronoi volume) = global C44 (2%)."""
    _, tasks, store, outcomes = campaign
    e = {k: data(store, tasks, "elastic s000")[k][...] for k in ("stiffness_volume", "global_stiffness_GPa")}
    v = data(store, tasks, "structure s000")["volume"][...]
    c_atom = e["stiffness_volume"] / v[:, None, None]
    for k in (3, 4, 5):
        mean = (v * c_atom[:, k, k]).sum() / v.sum()
        assert mean == pytest.approx(e["global_stiffness_GPa"][k, k], rel=0.02)
        assert 5 < e["global_stiffness_GPa"][k, k] < 80  # GPa: a (poorly quenched, tiny) Cu-Zr glass
    assert (c_atom[:, 3, 3] < 0).any()  # per-atom moduli of a glass are not all positive


def test_global_shear_modulus_equals_the_initial_slope_of_the_aqs_shear(campaign):
    """Two code paths: the elastic job's relaxed C44 and C66 (central differences of +-1e-4, spin term
    removed, tight minimisation) against dsigma/dgamma of the shear job's first strain step, at the
    same amplitude (a shear of its own: steps of 1e-4). A factor-2 engineering/tensor slip or a wrong
    spin term would show. Both minimise to 1e-8 eV/A. (The amplitude matters: this tiny, fast-quenched glass is
    far from linear,
    C44 from steps of 1e-3 is 18-21 GPa against 12.8 from 1e-4.)"""
    cfg, tasks, store, _ = campaign
    fine = config.load("smoke", overrides={**TINY, "store": str(store),
                                          "shear": {**TINY["shear"], "strain_step": 1e-4, "max_strain": 2e-4}})
    c = data(store, tasks, "elastic s000")["global_stiffness_GPa"][...]
    for direction, voigt in (("xy", 5), ("-yz", 3)):
        shear = next(t for t in plan.plan(fine) if t.label == f"shear s000 {direction}")
        shear = dataclasses.replace(shear, minimize=Section.of({**fine["minimize"], "ftol": 1e-8}))  # as elastic's
        assert run(shear, store, cfg=fine).status == "done"
        g = layout.group(layout.open_root(str(store)), shear.path)
        sign = -1.0 if direction.startswith("-") else 1.0
        stress, strain = g["stress_GPa"][:2], g["strain"][:2]
        slope = (stress[1, voigt] - stress[0, voigt]) / (sign * (strain[1] - strain[0]))
        print(f"{direction}: C{voigt + 1}{voigt + 1} {c[voigt, voigt]:.2f} GPa, AQS slope {slope:.2f} GPa")
        assert slope == pytest.approx(c[voigt, voigt], rel=0.05), direction


def test_structure_and_graph(campaign):
    from store.graphs import load_graph

    _, tasks, store, outcomes = campaign
    s = {k: data(store, tasks, "structure s000")[k][...] for k in ("volume", "participation", "neighbour_i",
                                                                 "neighbour_j")}
    q = {"cell": data(store, tasks, "quench s000")["cell"][...]}
    assert s["volume"].sum() == pytest.approx(np.linalg.det(q["cell"]), rel=1e-9)
    assert np.all(s["participation"] >= 0) and s["participation"].sum() == pytest.approx(1.0)
    pairs = set(zip(s["neighbour_i"].tolist(), s["neighbour_j"].tolist()))
    assert pairs == {(j, i) for i, j in pairs}
    for d in ("xy", "-yz"):
        graph = load_graph(str(store), 0, d)
        assert graph.x.shape == (N, 19) and not graph.x.isnan().any()
        np.testing.assert_array_equal(graph.edge_index.numpy(), np.stack([s["neighbour_i"], s["neighbour_j"]]))
        np.testing.assert_allclose(graph.x[:, 4].numpy(), s["volume"], rtol=1e-6)


def test_a_minimisation_that_does_not_converge_is_a_failure_with_its_reason(campaign, tmp_path):
    cfg, tasks, store, _ = campaign
    bad = config.load("smoke", overrides={**TINY, "store": str(store), "minimize": {"maxiter": 1, "maxeval": 2}})
    shear = [t for t in plan.plan(bad) if t.STAGE == "shear"][0]
    quench = [t for t in tasks if t.STAGE == "quench"][0]
    # same quench input (the minimiser settings are part of its key, so point the shear at the good one)
    import dataclasses
    shear = dataclasses.replace(shear, quench_key=quench.key)
    out = run(shear, store, bad, ranks=1)
    assert out.status == "failed"
    assert "did not converge" in out.reason
    assert records.read_all(str(store))[shear.key]["status"] == "failed"


def test_a_missing_potential_is_named(tmp_path):
    """Caught by the configuration before anything is written, and by a job if it vanished since."""
    import shutil

    from kernels.eam import potential_file

    store = tmp_path / "s.zarr"
    with pytest.raises(config.ConfigError, match="'system.potential'.*NoSuch.eam.fs"):
        config.load("smoke", overrides={**TINY, "store": str(store), "system": {"potential": "NoSuch.eam.fs"}})
    gone = tmp_path / "Gone.eam.fs"
    shutil.copy(potential_file("CuZr_mm.eam.fs"), gone)
    cfg = config.load("smoke", overrides={**TINY, "store": str(store), "system": {"potential": str(gone)}})
    tasks = plan.plan(cfg)
    state.init_store(str(store), cfg, tasks, "x", "test")
    gone.unlink()
    out = run(tasks[0], store, cfg, ranks=1)
    assert out.status == "failed" and "Gone.eam.fs" in out.reason


def test_a_killed_quench_goes_on_from_its_checkpoint(tmp_path):
    """SIGKILL a quench after its first restart file; the next run reads it (thermostat and
    barostat state included), runs only the rest of the ramp, and one segment on agrees with an
    uninterrupted run to 1e-6 relative (not bit for bit: see docs/slurm.md)."""
    import threading
    import time

    import psutil

    store = tmp_path / "q.zarr"
    cfg = config.load("smoke", overrides={**TINY, "store": str(store),
                                          "quench": {"specimens": 5, "rate_K_per_s": 5.0e13, "checkpoint_ps": 4.0}})
    liquid, quench = [t for t in plan.plan(cfg) if t.label in ("liquid", "quench s000")]
    state.init_store(str(store), cfg, [liquid, quench], config.science_hash(cfg), "test")
    assert run(liquid, store, cfg).status == "done"
    spec = job_spec(quench, str(store), cfg)
    checkpoint = layout.checkpoint_path(str(store), f"quench-{quench.key}.restart")

    result = []
    job = threading.Thread(target=lambda: result.append(execute(spec, 2, 1, "mpiexec")))
    job.start()
    deadline = time.time() + 120
    while not os.path.exists(checkpoint) and time.time() < deadline:
        time.sleep(0.1)
    assert os.path.exists(checkpoint), "no checkpoint written"
    for p in psutil.process_iter(["cmdline"]):  # the launcher and its ranks
        if quench.key in " ".join(p.info["cmdline"] or []):
            p.kill()
    job.join(60)
    assert result[0].status == "failed" and os.path.exists(checkpoint)

    resumed = execute(spec, 2, 1, "mpiexec")
    steps, every = resumed.summary(quench.key)["quench_steps"], int(round(4.0 / cfg["system"]["timestep_ps"]))
    assert resumed.status == "done", resumed.reason
    assert 0 < resumed.summary(quench.key)["resumed_from_step"] < steps
    assert resumed.summary(quench.key)["resumed_from_step"] % every == 0
    assert not os.path.exists(checkpoint)  # removed with the record written
    with open(spec_log(spec)) as f:
        resumed_log = f.read()
    assert "Resetting global fix info from restart file" in resumed_log  # thermostat and barostat state

    records.remove(str(store), quench.key)
    again = execute(spec, 2, 1, "mpiexec")
    assert again.status == "done" and again.summary(quench.key)["resumed_from_step"] == 0
    with open(spec_log(spec)) as f:
        uninterrupted_log = f.read()
    # the first segment after the restart continues the interrupted trajectory: at its end the
    # two runs agree far below any physical scale (bit-for-bit continuation LAMMPS does not give:
    # a last-bit difference in the restored box grows through the chaotic dynamics)
    step = resumed.summary(quench.key)["resumed_from_step"] + every
    a, b = thermo_at(resumed_log, step), thermo_at(uninterrupted_log, step)
    print(f"resumed at step {resumed.summary(quench.key)['resumed_from_step']} of {steps}; at step {step}: {a} vs {b}")
    for name in ("Temp", "PotEng", "Volume"):
        assert a[name] == pytest.approx(b[name], rel=1e-6), name


def spec_log(spec):
    return layout.log_path(spec["store"], f"{spec['stage']}-{spec['key']}.log")


def thermo_at(log: str, step: int) -> dict:
    """The first thermo row of a LAMMPS log at ``step``, by column name."""
    header = None
    for line in log.splitlines():
        words = line.split()
        if words[:1] == ["Step"]:
            header = words
        elif header and words and words[0] == str(step) and len(words) == len(header):
            return dict(zip(header, map(float, words)))
    raise AssertionError(f"no thermo row at step {step}")


def test_a_region_as_large_as_the_box_shears_as_the_whole_glass_and_a_small_one_stiffer(campaign):
    """The local yield stress job (jobs.lys): a region holding every atom (nothing frozen) follows the
    shear job's AQS stress, step by step (same tilt, same minimiser); a region of radius 6 A holds
    about the atoms of its sphere, starts at a stress of the glass's order, and, its surroundings
    held to the affine deformation, answers the first step more stiffly than the relaxed glass, and its
    stress is over its own (Voronoi) volume. Sheared to its first event, the whole glass's yield strain is
    refined to a tenth of the step, inside the step whose stress departed from the elastic response."""
    cfg, tasks, store, _ = campaign
    shear = data(store, tasks, "shear s000 xy")
    step = TINY["shear"]["strain_step"]
    over = {**TINY, "store": str(store), "lys": {"regions_per_axis": 2, "regions_per_task": 2, "radius_A": 100.0,
                                                 "strain_step": step, "max_strain": TINY["shear"]["max_strain"],
                                                 "departure_GPa": 50.0}}
    whole = next(t for t in plan.plan(config.load("smoke", overrides=over)) if t.label == "lys s000 xy r0")
    assert run(whole, store, cfg).status == "done"
    g = layout.group(layout.open_root(str(store)), whole.path)
    steps = len(shear["strain"][...])
    np.testing.assert_allclose(g["tau_GPa"][0, :steps], shear["stress_GPa"][:, 5], atol=2e-4)  # xy: Voigt 5
    assert g["n_inner"][0] == N and np.isnan(g["dtau_c_GPa"][0])  # no drop of 50 GPa
    global_slope = (g["tau_GPa"][0, 1] - g["tau_GPa"][0, 0]) / step
    over["lys"].update(radius_A=6.0, max_strain=0.02, departure_GPa=0.005)
    local = next(t for t in plan.plan(config.load("smoke", overrides=over)) if t.label == "lys s000 xy r0")
    assert run(local, store, cfg).status == "done"
    g = layout.group(layout.open_root(str(store)), local.path)
    volume = np.linalg.det(data(store, tasks, "quench s000")["cell"][...]) / N
    expected = 4 / 3 * np.pi * 6.0 ** 3 / volume
    assert np.all(np.abs(g["n_inner"][...] - expected) < 0.5 * expected), g["n_inner"][...]
    tau = g["tau_GPa"][...]
    assert np.all(np.abs(tau[:, 0]) < 3.0)  # residual stresses of a quenched glass: GPa, not more
    # their own volume: their Voronoi cells, within a few % of their share of the glass's
    np.testing.assert_allclose(g["volume_A3"][...], g["n_inner"][...] * volume, rtol=0.05)
    assert np.all((tau[:, 1] - tau[:, 0]) / step > global_slope), (tau[:, :2], global_slope)
    print("regions:", g["n_inner"][...], "tau0", tau[:, 0], "slopes", (tau[:, 1] - tau[:, 0]) / step,
          "global", global_slope, "dtau_c", g["dtau_c_GPa"][...])
    over["lys"].update(radius_A=100.0, max_strain=0.1, departure_GPa=0.005)
    whole = next(t for t in plan.plan(config.load("smoke", overrides=over)) if t.label == "lys s000 xy r0")
    assert run(whole, store, cfg).status == "done"  # the whole glass again, now to its first event
    g = layout.group(layout.open_root(str(store)), whole.path)
    tau = g["tau_GPa"][0]
    past = np.flatnonzero(np.isfinite(tau))[-1]  # the coarse step past the event
    fine = g["yield_strain"][0] / (step / 10)  # refined: on the grid of step / refine, within that coarse step
    assert abs(fine - round(fine)) < 1e-6 and (past - 1) * step - 1e-12 <= g["yield_strain"][0] < past * step, (
        g["yield_strain"][0], tau)
    assert tau[past] < 2 * tau[past - 1] - tau[past - 2] - 0.005 if past > 1 else tau[1] < tau[0] - 0.005
    # tau_c is the stress of the last elastic state: step past - 1's own where the event came in the first fine step
    tau_c, at_k = g["tau_c_GPa"][0], abs(g["yield_strain"][0] - (past - 1) * step) < 1e-12
    assert tau_c == tau[past - 1] if at_k else tau_c > tau[past - 1] - 0.005, (tau_c, tau[past - 1], tau[past])
