#!/usr/bin/env bash
# Builds q6plane and q4plane on the CPU machine (no GPU needed). FAM: main's generated matvec family
# ($CARGO_TARGET_DIR/release/build/graphrun-*/out/kernels_matvec.cu after a release build of main 7a1c85b),
# copied as carry/fam_q6.cu. Toolkit: the CUDA 13.0.88 wheels (nvidia-cuda-nvcc, -crt, -runtime, nvidia-nvvm,
# all ==13.0.88) unpacked with `pip install --no-deps --target $TK`: mixing in 13.5's headers makes ptxas fail on
# __nv_idp4a_s_s_impl, and 13.5's static runtime would need a newer driver than the device's 580.
set -euo pipefail
TK=${TK:-/tmp/tk13}/nvidia/cu13
mkdir -p /tmp/q6 && cp carry/fam_q6.cu /tmp/q6/fam.cu
for h in q6plane q4plane; do
  PATH=$TK/bin:$PATH nvcc -O3 -arch=sm_90 -std=c++17 -DFAM='"fam.cu"' -I/tmp/q6 -L$TK/lib -Xptxas -v \
    evidence/h100/q6-plane/$h.cu -o /tmp/q6/$h 2> /tmp/q6/ptxas_$h.txt
  xz -9e -T2 -c /tmp/q6/$h > carry/$h.xz
done
