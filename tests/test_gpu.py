"""The gpu tier (``pytest -m gpu``, run by bench/gpu_check.sh on a lent GPU; never in CI): a training
step on CUDA equals the CPU's, a real CUDA out-of-memory error is met by smaller stacks, a checkpoint
written on the GPU resumes there. Skipped where torch sees no CUDA device."""
import numpy as np
import pytest
import torch
from test_memory_plan import OPTS, POINT, assert_same_models, job, options, sets, train

from kernels import memory
from kernels.training import fit

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]
CUDA = torch.device("cuda")


def test_a_training_on_cuda_equals_the_cpu_one():
    """The same 3 epochs of 2 stacked folds, on the CPU and on CUDA: weights equal to float32 rounding."""
    w = [torch.tensor([1.0, 3.0])] * 2
    cpu, cpu_hist = fit(sets(2, 4), w, *POINT, options(), val_sets=sets(2, 2, seed=1), seeds=[1, 2])
    gpu, gpu_hist = fit(sets(2, 4, device=CUDA), w, *POINT, options(), val_sets=sets(2, 2, seed=1, device=CUDA),
                        device=CUDA, seeds=[1, 2])
    for a, b, ha, hb in zip(cpu, gpu, cpu_hist, gpu_hist):
        assert ha["train_loss"] == pytest.approx(hb["train_loss"], rel=1e-4)
        for pa, pb in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(pa, pb.cpu(), rtol=1e-4, atol=1e-5)


def test_a_real_out_of_memory_error_retries_the_stack_in_halves(tmp_path):
    """With this process's CUDA memory capped between what one fold and four folds of 4,000-node graphs
    need, the job's plan (budget unlimited by train.gpu_memory_GiB) stacks all four, CUDA runs out of
    memory, and the folds train in smaller stacks to the same models as on the CPU."""
    n, folds = 4000, 4
    total = torch.cuda.get_device_properties(CUDA).total_memory

    def prepared(device):
        return sets(folds, 4, n, device=device), sets(folds, 2, n, seed=1, device=device)

    def run(device, **params):
        j = job(tmp_path / device.type, folds, **params)
        train_sets, val_sets = prepared(device)
        return j.train_in_stacks(train_sets, [torch.tensor([1.0, 3.0])] * folds, val_sets,
                                 [100 + f for f in range(folds)], device)

    expected = run(torch.device("cpu"))
    torch.cuda.empty_cache()
    one = memory.step_bytes(*POINT, OPTS["batch_graphs"] * n, 1, 7.0)
    cap = torch.cuda.memory_allocated(CUDA) + memory.data_bytes(3 * folds * 4, n, 7.0) + 2.5 * one
    torch.cuda.set_per_process_memory_fraction(min(cap / total, 1.0), CUDA)
    try:
        retried = run(CUDA, gpu_memory_GiB=1000.0)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, CUDA)
    assert all(f["out_of_memory_retries"] >= 1 and f["stacked"] < folds for _, _, f in retried), \
        [f for _, _, f in retried]
    assert_same_models(expected, [(m.cpu(), h, f) for m, h, f in retried])


def test_a_checkpoint_written_on_cuda_resumes_there(tmp_path, monkeypatch):
    """Killed after its second epoch's checkpoint, a CUDA training resumes from it to the same models."""
    import jobs.learn

    whole = train(job(tmp_path / "whole", 2, device="cuda"), 2, CUDA)
    real_fit = jobs.learn.fit

    class Killed(Exception):
        pass

    def killed_after_epoch_two(*args, save, **kwargs):
        def save_then_die(state):
            save(state)
            if state.get("epoch") == 1:
                raise Killed
        return real_fit(*args, save=save_then_die, **kwargs)

    monkeypatch.setattr(jobs.learn, "fit", killed_after_epoch_two)
    with pytest.raises(Killed):
        train(job(tmp_path, 2, device="cuda"), 2, CUDA)
    monkeypatch.setattr(jobs.learn, "fit", real_fit)
    resumed = train(job(tmp_path, 2, device="cuda"), 2, CUDA)
    assert [f["resumed_from_epoch"] for _, _, f in resumed] == [2, 2]
    assert all(f["cuda_peak_GiB"] > 0 for _, _, f in resumed)
    assert_same_models([(m.cpu(), h, f) for m, h, f in whole], [(m.cpu(), h, f) for m, h, f in resumed])


def test_the_gpu_eigensolver_equals_the_cpu_one():
    """kernels.modes.low_modes with torch on CUDA: the dense solver's eigenvalues and participation."""
    from kernels import modes

    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 300))
    d = a @ a.T + 300 * np.eye(300)
    cpu_values, cpu_vectors = modes.low_modes(d, 5, "dense")
    gpu_values, gpu_vectors = modes.low_modes(d, 5, "torch")
    np.testing.assert_allclose(gpu_values, cpu_values, rtol=1e-10)
    np.testing.assert_allclose(modes.participation_fractions(gpu_vectors),
                               modes.participation_fractions(cpu_vectors), atol=1e-10)
