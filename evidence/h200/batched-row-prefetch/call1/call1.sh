#!/usr/bin/env bash
# Call 1 (H200): batched-step time per batch size, same call, base / v1 / v2 / base, then the
# gpu_batch correctness suite on v2. Binaries come xz-compressed in carry/ab/<variant>/.
#   base: bf6c7bb (main)
#   v1:   the batched matvec loads row b+1's activations during row b's dots;
#         __launch_bounds__(256, 2) on the batched kernels
#   v2:   v1 + a grid of one wave of CTAs looping over tiles, each prefetching its next
#         tile's weights into L2
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/ab
for v in base v1 v2; do mkdir -p /tmp/ab/$v; for f in graphrun gpu_batch; do [ -f carry/ab/$v/$f.xz ] || continue; xz -dc carry/ab/$v/$f.xz > /tmp/ab/$v/$f; chmod +x /tmp/ab/$v/$f; done; done
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv > $OUT/nvidia-smi.csv
time_run() {  # variant, tag
  GRAPHRUN_BIN=/tmp/ab/v2/graphrun GRAPHRUN_BATCH_PRESETS=1.5b,7b timeout 150 /tmp/ab/$1/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/steptime_$2.log 2>&1
  echo "== $2"; grep "step " $OUT/steptime_$2.log
}
time_run base base1; time_run v1 v1; time_run v2 v2; time_run base base2
GRAPHRUN_BIN=/tmp/ab/v2/graphrun timeout 260 /tmp/ab/v2/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size > $OUT/gpu_batch_v2.log 2>&1
echo "gpu_batch v2: exit $?"; grep "test result\|passed\|FAILED\|panicked" $OUT/gpu_batch_v2.log | head
