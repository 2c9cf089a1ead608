#!/usr/bin/env bash
# Call 2 (H200): Nsight Compute on the batched SwiGLU matvec (v2 build), 7B, 8 rows: full
# section set for one launch, then its per-instruction SASS page (stall samples per line).
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/ab/v2
for f in graphrun gpu_batch; do xz -dc carry/ab/v2/$f.xz > /tmp/ab/v2/$f; chmod +x /tmp/ab/v2/$f; done
export GRAPHRUN_BIN=/tmp/ab/v2/graphrun GRAPHRUN_BATCH_PRESETS=7b GRAPHRUN_BATCH_SIZES=8
timeout 400 ncu --kernel-name regex:"${K:-matvec_batch_q4_k_q8_swiglu}" --launch-skip 84 --launch-count 1 --set full --import-source no \
  -o $OUT/swiglu /tmp/ab/v2/gpu_batch batched_step_time_by_batch_size --ignored --nocapture > $OUT/ncu_run.log 2>&1
echo "ncu exit $?"; tail -3 $OUT/ncu_run.log
ncu -i $OUT/swiglu.ncu-rep --print-details all > $OUT/swiglu_details.txt 2>&1
ncu -i $OUT/swiglu.ncu-rep --page source --print-source sass --csv > $OUT/swiglu_sass.csv 2>&1
ls -la $OUT; grep -E "Duration|Issued Warp|L1/TEX Cache Throughput|Eligible Warps" $OUT/swiglu_details.txt | head
