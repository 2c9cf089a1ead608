#!/usr/bin/env bash
# Call 3 (H200): v17 as committed (the one-step join only for prompts of at most n_slots
# tokens: a step's rows are the decode arena's, a row per slot): gpu_batch, all 4 tests.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/ab && xz -dc carry/ab.tar.xz | tar xf - -C /tmp/ab && chmod +x /tmp/ab/*/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
GRAPHRUN_BIN=/tmp/ab/v17/graphrun GRAPHRUN_BATCH_PRESETS=1.5b,7b timeout 260 /tmp/ab/v17/gpu_batch --ignored --nocapture --test-threads 1 > $OUT/gpu_batch_v17.log 2>&1
echo "gpu_batch v17: exit $? ($SECONDS s)"; grep "test result\|FAILED\|panicked\|differ\|^test " $OUT/gpu_batch_v17.log | head -20
