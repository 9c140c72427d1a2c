#!/usr/bin/env bash
# The GPU check for a session lent a device machine: one short run, then give the machine back.
#
#   bash bench/gpu_check.sh [extra gat_vs_pyg.py options]
#
# Times this project's stacked-fold trainer against the plain PyG loop of
# shared/bench/pyg_gat_baseline.py at the study's graph size (10,000 nodes, 270 training graphs
# per fold, 4 folds) for three grid points, 2 timed epochs each: about 3-4 minutes on an H200
# (from the baseline's per-epoch figures). Writes $OUT/gat.json and $OUT/gpu_check.log.
# Wheels that the machine lacks (torch_geometric) travel in .whl/ (see the device tool's notes).
# Extra options override the defaults (argparse keeps the last), e.g. a CPU dry run:
#   OUT=/tmp bash bench/gpu_check.sh --device cpu --nodes 200 --graphs 4 --epochs 1 --points 2,10,6
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp}
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
{
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch, torch_geometric; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'pyg', torch_geometric.__version__)"
    python3 bench/gat_vs_pyg.py --device cuda --points "2,10,6;4,15,9;8,25,12" --epochs 2 --json "$OUT/gat.json" "$@"
} 2>&1 | tee "$OUT/gpu_check.log"
