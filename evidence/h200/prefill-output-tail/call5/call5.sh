#!/usr/bin/env bash
# device call 5 of 2026-12-02 (third session): the serve path after this session's prefill changes
# (QkvPost, the norm prologue, the output tail at the logit rows): gpu_batch (batched rows equal each
# sequence alone and the interpreter, join/leave, batched sampling, step time by batch size) and
# gpu_sample (sampled decode on the device against the host sampler), on the working tree's binaries
# (bfa572f..HEAD's code); then bench of the three presets (pp512/2048/8192, tg128 at depth 0 and 4096).
set -u
cd carry && for f in *.xz; do [ -e "$f" ] && xz -d -T0 $f; done; chmod +x *; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
export PATH=$PATH:/usr/local/cuda/bin
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
echo "=== gpu_batch, gpu_sample $(date +%T)"
GRAPHRUN_BATCH_PRESETS=1.5b timeout 150 $C/gpu_batch --ignored --nocapture --test-threads 1 > $O/gpu_batch.log 2>&1; echo "gpu_batch exit $?" >> $O/gpu_batch.log
grep -E "^test |batch [0-9]: step|test result|panicked|exit" $O/gpu_batch.log | cut -c1-180
timeout 60 $C/gpu_sample --ignored --nocapture --test-threads 1 > $O/gpu_sample.log 2>&1; echo "gpu_sample exit $?" >> $O/gpu_sample.log; grep -E "^test |test result|exit" $O/gpu_sample.log | cut -c1-160
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== bench $(date +%T)"
for m in 7b 1.5b 0.5b; do timeout 90 $G bench /tmp/gr/$m.gguf -p 512,2048,8192 -n 128 -d 0,4096 -r 2 --json > $O/bench_$m.json 2> $O/bench_$m.err; tail -7 $O/bench_$m.err | cut -c1-120; done
cd $OUT && tar czf r.tgz r && rm -rf r
