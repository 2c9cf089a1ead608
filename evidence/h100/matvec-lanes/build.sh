#!/usr/bin/env bash
# Builds mvlanes (run from the repository root). FAM: the matvec family source of a release build of
# the commit measured (target/release/build/graphrun-*/out/kernels_matvec.cu); its `lanes_per_row`
# gets a first line returning `g_force_lanes` when set (the only change: every kernel's row order
# is otherwise the generated one). Needs the CUDA 13.0 nvcc from PyPI wheels unpacked in $TK
# (nvidia-cuda-nvcc, -crt, nvidia-nvvm, nvidia-cuda-runtime 13.0.x). Output: $OUTDIR/mvlanes.
set -eu
TK=${TK:-/tmp/cudatk}; FAM=${FAM:?kernels_matvec.cu}; OUTDIR=${OUTDIR:-carry}; D=$(mktemp -d)
python3 - "$FAM" "$D/fam.cu" <<'PY'
import sys
fam = open(sys.argv[1]).read()
old = "__device__ __forceinline__ int lanes_per_row(int units) {\n"
assert fam.count(old) == 1
fam = fam.replace(old, "__device__ int g_force_lanes;  // mvlanes: 0 = the generated rule\n" + old +
                  "    if (g_force_lanes) return g_force_lanes;\n")
open(sys.argv[2], 'w').write(fam)
PY
cp evidence/h200/matvec-lanes/mvlanes.cu "$D/"
(cd "$D" && "$TK/bin/nvcc" -O3 -arch=sm_90 -std=c++17 -DFAM='"fam.cu"' -I"$TK/include" -L"$TK/lib" mvlanes.cu -o mvlanes)
mkdir -p "$OUTDIR" && cp "$D/mvlanes" "$OUTDIR/" && strip "$OUTDIR/mvlanes" && ls -la "$OUTDIR/mvlanes"
