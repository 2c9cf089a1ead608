#!/usr/bin/env bash
# matvec-ring call 2: Nsight of the generated Q4_K SwiGLU and Q6_K add/none decode matvecs (7B shapes) in
# mvbulk (MVB_BASE_ONLY: the generated kernels, read4, the K-split sweep and the hoist variants).
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu)
xz -dc carry/mvbulk.xz > /tmp/mvbulk && chmod +x /tmp/mvbulk
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
MVB_BASE_ONLY=1 timeout 60 /tmp/mvbulk > $OUT/mvbulk_ks.txt 2>&1; cat $OUT/mvbulk_ks.txt
for k in matvec_q4_k_q8_swiglu matvec_q6_k_q8_add matvec_q6_k_q8_none; do
  MVB_BASE_ONLY=1 timeout 150 $NCU --set full --import-source yes -k $k --launch-skip 25 --launch-count 1 -o $OUT/$k /tmp/mvbulk > $OUT/$k.log 2>&1
  $NCU -i $OUT/$k.ncu-rep --page details > $OUT/$k.details.txt 2>&1
  $NCU -i $OUT/$k.ncu-rep --page source --csv --print-source sass > $OUT/$k.sass.csv 2>&1
  echo "$k done $SECONDS s"
done
grep -E "Duration|DRAM Throughput|L1/TEX Cache Throughput|Issue Slots Busy|Achieved Occupancy|Registers Per|Stall|wavefront|Wavefront" $OUT/*.details.txt | head -60
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
