#!/usr/bin/env bash
# Call 1 (H200): where the batched matvec's time goes. Nsight Compute `--set full` (with
# source-level SASS sampling) on one 7B decode step's first 9 matvec_batch launches at 8
# rows (attn_out Q4_K add, gate+up Q4_K SwiGLU, down Q6_K add, ..., down Q4_K add), build
# v9 = 45c4e9c. Prints the details page and the per-instruction SASS page as CSV.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
v=v9; mkdir -p /tmp/ab/$v
for f in graphrun gpu_batch; do xz -dc carry/ab/$v/$f.xz > /tmp/ab/$v/$f; chmod +x /tmp/ab/$v/$f; done
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
ncu --version > $OUT/ncu-version.txt
GRAPHRUN_BIN=/tmp/ab/$v/graphrun GRAPHRUN_BATCH_PRESETS=7b GRAPHRUN_BATCH_SIZES=8 timeout 400 ncu --target-processes all \
  -k regex:matvec_batch --launch-skip 255 --launch-count 9 --set full --import-source no -o /tmp/rep \
  /tmp/ab/$v/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/ncu_run.log 2>&1
echo "ncu: exit $?"
ncu --import /tmp/rep.ncu-rep --page details > $OUT/details.txt 2>&1
ncu --import /tmp/rep.ncu-rep --page raw --csv > $OUT/raw.csv 2>&1
ncu --import /tmp/rep.ncu-rep --page source --csv --print-source sass > $OUT/source_all.csv 2> $OUT/source_all.err
grep -n "Duration\|Registers Per\|Achieved Occupancy\|Issue Slots Busy\|Memory Throughput\|Warp Cycles Per Issued" $OUT/details.txt | head -60
ls -la $OUT
xz -9 $OUT/raw.csv $OUT/source_*.csv
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
