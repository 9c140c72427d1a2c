#!/usr/bin/env bash
# The GPU check (issue 22), for a session lent a GPU machine: one run of about 5 minutes on one H200.
#
#   bash bench/gpu_prepare.sh            # here, once: wheels and the potential into .whl/ (ignored)
#   device run, carry [".whl"]:  OUT=$OUT bash bench/gpu_check.sh
#
# Needs on the GPU machine: python3 with torch (CUDA), torch_geometric, numpy, scipy, scikit-learn,
# pyyaml and mpi4py (the H200 image has them); not LAMMPS, not Dask. Carried in .whl/: zarr, numcodecs,
# donfig, google-crc32c (the store) and CuZr_mm.eam.fs (the potential, shipped here with lammps).
# Steps, each writing a JSON under $OUT, gathered into $OUT/gpu_check.json (commit it as
# bench/results/gpu-<date>.json):
#   1. gat: both trainers at the five grid points of issue 22, 10,000-node graphs, 136 training graphs
#      per fold (half the study's 270: ratios per epoch are what is compared), 4 folds, 1 timed epoch;
#      peak memory of each beside kernels.memory's prediction            (~3 min)
#   2. job: a grid point's training job through python -m jobs on CUDA, killed at its first checkpoint
#      and resumed, metrics against the same job on the CPU               (~30 s)
#   3. eigen: the structure stage's lowest 1% of modes of a 10,000-atom glass with the torch solver (~1 min)
#   4. tests: the gpu pytest tier                                         (~30 s)
# A CPU dry run at reduced size: GAT="--device cpu --nodes 300 --graphs 8 --points 2,10,6" DEVICE=cpu
#   GLASS=/path/small.npz OUT=/tmp bash bench/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp}
DEVICE=${DEVICE:-cuda}
GAT=${GAT:---device cuda --nodes 10000 --graphs 136 --epochs 1 --points 2,10,6;4,15,9;4,40,9;8,25,12;12,40,15}
GLASS=${GLASS:-bench/data/glass-10000.npz}
POTENTIAL=CuZr_mm.eam.fs
if ls .whl/*.whl >/dev/null 2>&1 && python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
[ -f .whl/CuZr_mm.eam.fs ] && POTENTIAL=.whl/CuZr_mm.eam.fs
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
status=0
step() {  # name, then the command; its output to $OUT/NAME.log, its status remembered
    local name=$1; shift
    echo "== $name: $*"
    local t0=$SECONDS
    "$@" 2>&1 | tee "$OUT/$name.log" || status=1
    echo "== $name took $((SECONDS - t0)) s"
}
{
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch, torch_geometric; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'pyg', torch_geometric.__version__)"
    IFS=' ' read -r -a gat_args <<< "$GAT"
    step gat python3 bench/gat_vs_pyg.py "${gat_args[@]}" --json "$OUT/gat.json"
    step job python3 bench/gpu_training_job.py --device "$DEVICE" --json "$OUT/job.json"
    step eigen python3 bench/gpu_eigensolver.py --glass "$GLASS" --potential "$POTENTIAL" \
        --method "$([ "$DEVICE" = cuda ] && echo torch || echo dense)" --json "$OUT/eigen.json"
    step tests python3 -m pytest -q -m gpu tests/test_gpu.py -p no:cacheprovider
    python3 - "$OUT" <<'EOF'
import json, os, subprocess, sys
out = sys.argv[1]
summary = {"code": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()}
for name in ("gat", "job", "eigen"):
    path = os.path.join(out, f"{name}.json")
    summary[name] = json.load(open(path)) if os.path.exists(path) else None
summary["tests"] = open(os.path.join(out, "tests.log")).read().strip().splitlines()[-1:]
json.dump(summary, open(os.path.join(out, "gpu_check.json"), "w"), indent=1)
print("wrote", os.path.join(out, "gpu_check.json"))
EOF
} 2>&1 | tee "$OUT/gpu_check.log"
exit $status
