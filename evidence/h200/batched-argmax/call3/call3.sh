#!/usr/bin/env bash
# Call 3 (H200): the other GPU suites on df1b207 (the commit; every kernel family's source
# changed, kernels/argmax.cu and the single-sequence decode's captured argmax among them):
# backend_ops, then gpu_e2e's synthetic suite split over processes that run side by side
# (the interpreter, on the host's 16 cores, is its slow part): tiny, tiny-llama, the 0.5B
# at 1/7/129, at 2,000 and at 2,049 tokens, and the 1.5B at 1/7/129.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/s && xz -dc carry/suites.tar.xz | tar xf - -C /tmp/s && chmod +x /tmp/s/*/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
timeout 120 /tmp/s/vC/backend_ops --ignored --nocapture --test-threads 1 > $OUT/backend_ops.log 2>&1
echo "backend_ops: exit $? ($SECONDS s)"; grep "test result" $OUT/backend_ops.log
e2e() {  # tag, presets, lengths
  GRAPHRUN_E2E_PRESETS=$2 GRAPHRUN_E2E_LENGTHS=$3 timeout 420 /tmp/s/vC/gpu_e2e --ignored --nocapture --test-threads 1 synthetic > $OUT/gpu_e2e_$1.log 2>&1
  echo "gpu_e2e $1: exit $? ($SECONDS s) $(grep 'test result' $OUT/gpu_e2e_$1.log)"
}
e2e tiny tiny 1,7,129,2000,2049 & e2e tiny-llama tiny-llama 1,7,129,2000,2049 & e2e 0.5b-short 0.5b 1,7,129 &
e2e 0.5b-2000 0.5b 2000 & e2e 0.5b-2049 0.5b 2049 & e2e 1.5b 1.5b 1,7,129 &
wait
echo "end ($SECONDS s)"
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
