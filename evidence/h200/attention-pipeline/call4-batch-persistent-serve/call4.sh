#!/usr/bin/env bash
# device call 4 (2026-12-02): the shared-input tree (call 3's new) through the suites that prefill before decoding:
# gpu_batch (bit identity of batched rows), gpu_persistent (persistent decode after prompts of every length), and
# the server's aggregate decode with 1/2/4/8 streams (#14's servebench) on the synthetic 1.5B.
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x graphrun gpu_batch gpu_persistent; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
echo "=== gpu_batch $(date +%T)"
timeout 150 $C/gpu_batch --ignored --nocapture --test-threads 1 > $O/gpu_batch.log 2>&1; echo "gpu_batch exit $?" >> $O/gpu_batch.log; grep -E "test result|exit|step time|B = " $O/gpu_batch.log | head -12
echo "=== gpu_persistent $(date +%T)"
timeout 150 $C/gpu_persistent --ignored --nocapture --test-threads 1 > $O/gpu_persistent.log 2>&1; echo "gpu_persistent exit $?" >> $O/gpu_persistent.log; grep -E "^test |test result|exit" $O/gpu_persistent.log | head -12
echo "=== servebench $(date +%T)"
left=$((540 - SECONDS)); [ $left -gt 60 ] && SERVEBENCH_PRESETS=1.5b SERVEBENCH_REPS=1 timeout $left scripts/gpu-check carry $O servebench > $O/servebench_stage.log 2>&1; tail -6 $O/servebench_stage.log
cd $OUT && tar czf r.tgz r && rm -rf r
