#!/usr/bin/env bash
# device call 5 (2026-12-01): branch batched-mma b2a98fe (rebased on eb6bd10): batched step time, CUDA cores vs tensor cores vs CUDA cores at each batch size, same process
set -u
cd carry && xz -d -T0 *.xz && cd ..
O=$OUT/r; mkdir -p $O; export CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
GRAPHRUN_BATCH_PRESETS=1.5b,7b GRAPHRUN_BATCH_SIZES=2,4,8 timeout 200 carry/gpu_batch batched_step_time_by_batch_size --ignored --nocapture > $O/gpu_batch_step_ab.log 2>&1; grep -E "step|result" $O/gpu_batch_step_ab.log | tail -20
cd $OUT && tar czf r.tgz r && rm -rf r
