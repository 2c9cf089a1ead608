#!/usr/bin/env bash
# device call 2 (2026-12-02): Nsight Compute (full set, SM clock locked by ncu) of the base decode
# matvec kernels on the 7B shapes in mvbench2 (call 1's binary, plain launches), and of the read kernel.
set -u
O=$OUT/r; mkdir -p $O
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 PATH=$PATH:/usr/local/cuda/bin
chmod +x carry/mvbench2
for k in matvec_q4_k_q8_add matvec_q6_k_q8_add matvec_q4_k_q8_swiglu read16; do
  timeout 150 ncu --set full --import-source no --kernel-name regex:"^$k" --launch-skip 30 --launch-count 1 carry/mvbench2 plain > $O/ncu_$k.txt 2>&1
  echo "== $k rc $?"; grep -E "^    (Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Registers Per|Issue Slots Busy|No Eligible|Warp Cycles Per Issued|Executed Ipc A)" $O/ncu_$k.txt | head -12
done
