#!/usr/bin/env bash
# Call 12 (H200): the GPU suites that a build change after call 10 touches, on main's
# d77ad1a (`GPU_TESTS="backend_ops gpu_batch" scripts/make-gpu-carry`): the single-row q8
# Q5_K SwiGLU kernel without the 3-CTA launch bound (v13 had it), every other kernel v13's.
# backend_ops (every kernel against the interpreter) and gpu_batch (batched rows bit for
# bit), side by side.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/f && xz -dc carry/final.tar.xz | tar xf - -C /tmp/f && chmod +x /tmp/f/final/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
S=/tmp/f/final; export GRAPHRUN_BIN=$S/graphrun GRAPHRUN_REFERENCE=$PWD/tests/reference
suite() {  # tag, command...
  local tag=$1; shift
  timeout 200 "$@" > $OUT/$tag.log 2>&1
  echo "$tag: exit $? ($SECONDS s) $(grep 'test result' $OUT/$tag.log | tr '\n' ' ')"
}
suite backend_ops $S/backend_ops --ignored --nocapture --test-threads 1 &
suite gpu_batch $S/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size &
wait
$S/graphrun kernels 2>&1 | tail -2 > $OUT/kernels.txt
echo "end ($SECONDS s)"
