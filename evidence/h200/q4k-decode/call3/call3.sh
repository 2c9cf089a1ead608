#!/usr/bin/env bash
# q4k-decode call 3 (H200, 2026-12-05): the GPU suites on main dc373e9 (code = persist-ldg2 668dabb: q6k-loads +
# q4k-consume + the persistent kernel's loads declared global/shared). Binaries: GPU_TESTS="backend_ops
# gpu_persistent gpu_e2e gpu_batch gpu_sample" built like scripts/make-gpu-carry (sm_90 SASS), stripped, one xz tar.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
mkdir -p /tmp/su && xz -dc carry/suites.tar.xz | tar xf - -C /tmp/su && chmod +x /tmp/su/s/*
C=/tmp/su/s; O=$OUT/r; mkdir -p $O
export GRAPHRUN_BIN=$C/graphrun
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv
# Where the 0.5B lost 1.5% (call 2): its fused decode profile, base (main 685704d, carry/graphrun-base.xz) and new.
xz -d carry/graphrun-base.xz && chmod +x carry/graphrun-base; mkdir -p /tmp/gr; $C/graphrun synth --preset 0.5b -o /tmp/gr/0.5b.gguf 2>&1 | tail -1
for b in base new new base; do X=$C/graphrun; [ $b = base ] && X=$PWD/carry/graphrun-base
  timeout 60 $X dump --stage fused --profile /tmp/gr/0.5b.gguf > $O/profile_0.5b_${b}_$SECONDS.txt 2>&1; echo "0.5b $b: $(grep "total kernel time" $O/profile_0.5b_${b}_*.txt | tail -1)"; done; pack
GRAPHRUN_PARITY_REPORT=$O/backend_ops.jsonl timeout 130 $C/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1
echo "backend_ops: exit $? ($SECONDS s)"; grep "test result" $O/backend_ops.log; xz -9 $O/backend_ops.jsonl; pack
timeout 120 $C/gpu_persistent --ignored --nocapture --test-threads 1 > $O/gpu_persistent.log 2>&1
echo "gpu_persistent: exit $? ($SECONDS s)"; grep "test result" $O/gpu_persistent.log; pack
timeout 100 $C/gpu_batch --ignored --nocapture --test-threads 1 > $O/gpu_batch.log 2>&1
echo "gpu_batch: exit $? ($SECONDS s)"; grep "test result" $O/gpu_batch.log; pack
GRAPHRUN_E2E_PRESETS=tiny,tiny-llama,0.5b,1.5b,7b GRAPHRUN_E2E_LENGTHS=1,7,129,513 GRAPHRUN_E2E_REPORT=$O/gpu_e2e.jsonl timeout 100 $C/gpu_e2e synthetic --ignored --nocapture > $O/gpu_e2e.log 2>&1
echo "gpu_e2e: exit $? ($SECONDS s)"; grep "test result" $O/gpu_e2e.log; [ -f $O/gpu_e2e.jsonl ] && xz -9 $O/gpu_e2e.jsonl; pack
[ $SECONDS -lt 440 ] && { timeout 50 $C/gpu_sample --ignored --nocapture --test-threads 1 > $O/gpu_sample.log 2>&1; echo "gpu_sample: exit $? ($SECONDS s)"; grep "test result" $O/gpu_sample.log; }
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
