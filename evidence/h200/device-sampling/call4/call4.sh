#!/usr/bin/env bash
# device call 5 of 2026-12-02 (third session): the parity suites on 8338c58's binary (main: the device sampler; every
# kernel family recompiled with the new SampleArgs/SAMPLE_* header): backend_ops, gpu_persistent, gpu_e2e in the time left.
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x graphrun backend_ops gpu_e2e gpu_persistent; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
export GRAPHRUN_BIN=$C/graphrun
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
echo "=== backend_ops $(date +%T)"
GRAPHRUN_PARITY_REPORT=$O/backend_ops.jsonl timeout 90 $C/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1; echo "backend_ops exit $?" >> $O/backend_ops.log; tail -3 $O/backend_ops.log
echo "=== gpu_persistent $(date +%T)"
timeout 120 $C/gpu_persistent --ignored --nocapture --test-threads 1 > $O/gpu_persistent.log 2>&1; echo "gpu_persistent exit $?" >> $O/gpu_persistent.log; grep -E "^test |test result|exit" $O/gpu_persistent.log | cut -c1-160
echo "=== gpu_e2e in the time left $(date +%T)"
left=$((400 - SECONDS)); [ $left -gt 30 ] && { timeout $left $C/gpu_e2e --ignored --nocapture --test-threads 1 > $O/gpu_e2e.log 2>&1; echo "gpu_e2e exit $? (limit $left s)" >> $O/gpu_e2e.log; grep -E "^test |test result|exit" $O/gpu_e2e.log | cut -c1-160; }
cd $OUT && tar czf r.tgz r && rm -rf r
