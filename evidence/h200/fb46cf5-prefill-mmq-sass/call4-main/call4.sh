#!/usr/bin/env bash
# device call 4 (2026-12-01): main fb46cf5 (SASS embedded; new mmq): serve aggregate rates on the 1.5B, then the batched-decode GPU suite
set -u
cd carry && xz -d -T0 *.xz && cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O
export CUDA_CACHE_PATH=/tmp/cudacache
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
SERVEBENCH_PRESETS=1.5b SERVEBENCH_REPS=2 timeout 150 scripts/gpu-check $C $O servebench 2>&1 | tail -6
timeout 330 scripts/gpu-check $C $O batch 2>&1 | tail -8
cd $OUT && tar czf r.tgz r && rm -rf r
