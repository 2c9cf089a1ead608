#!/usr/bin/env bash
# The GPU suites other than gpu_batch on f5609ad (46efc79 renamed QkvArgs' unused `pad` to
# `stage`, in the args.cuh every kernel family includes): backend_ops, gpu_e2e (synthetic
# presets), gpu_persistent, gpu_sample. Binaries: GPU_TESTS="backend_ops gpu_e2e
# gpu_persistent gpu_sample" scripts/make-gpu-carry, stripped, carried as one xz tar.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/su && xz -dc carry/suites.tar.xz | tar xf - -C /tmp/su && chmod +x /tmp/su/s/*
C=/tmp/su/s
export GRAPHRUN_BIN=$C/graphrun
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/nvidia-smi.csv
GRAPHRUN_PARITY_REPORT=$OUT/backend_ops.jsonl timeout 120 $C/backend_ops --ignored --nocapture --test-threads 1 > $OUT/backend_ops.log 2>&1
echo "backend_ops: exit $? ($SECONDS s)"; grep "test result" $OUT/backend_ops.log
GRAPHRUN_E2E_PRESETS=tiny,tiny-llama,0.5b,1.5b,7b GRAPHRUN_E2E_REPORT=$OUT/gpu_e2e.jsonl timeout 170 $C/gpu_e2e synthetic --ignored --nocapture > $OUT/gpu_e2e.log 2>&1
echo "gpu_e2e: exit $? ($SECONDS s)"; grep "test result" $OUT/gpu_e2e.log
timeout 110 $C/gpu_persistent --ignored --nocapture --test-threads 1 > $OUT/gpu_persistent.log 2>&1
echo "gpu_persistent: exit $? ($SECONDS s)"; grep "test result" $OUT/gpu_persistent.log
timeout 50 $C/gpu_sample --ignored --nocapture --test-threads 1 > $OUT/gpu_sample.log 2>&1
echo "gpu_sample: exit $? ($SECONDS s)"; grep "test result" $OUT/gpu_sample.log
