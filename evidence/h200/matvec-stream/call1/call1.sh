#!/usr/bin/env bash
# device call 1 (2026-12-02, fourth session): where the big decode matvecs lose bandwidth.
# mvbench2 (this folder) built here from main's generated matvec family (8b2d39e):
#   nvcc 13.0 -O3 -arch=sm_90 -std=c++17 -DFAM='"fam.cu"' mvbench2.cu -o mvbench2, carried in carry/.
set -u
O=$OUT/r; mkdir -p $O
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
chmod +x carry/mvbench2
timeout 200 carry/mvbench2 plain > $O/mvbench2_plain.txt 2>&1; echo "rc $?" >> $O/mvbench2_plain.txt
timeout 200 carry/mvbench2 pdl > $O/mvbench2_pdl.txt 2>&1; echo "rc $?" >> $O/mvbench2_pdl.txt
cat $O/mvbench2_plain.txt $O/mvbench2_pdl.txt
