#!/usr/bin/env bash
# mv-ncu call 1: Nsight Compute on the 7B's decode matvecs as the captured decode graph runs them (main's code:
# carry/mu.tar.xz, dir mu/, the merge-unroll build 1020b5c), to count the L1 wavefronts of their global loads
# against the bytes they use (MemoryWorkloadAnalysis_Tables), with speed of light, warp states and the L1.
# Carry exactly carry/mu.tar.xz.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu); $NCU --version > $O/ncu-version.txt 2>&1; tail -1 $O/ncu-version.txt
mkdir -p /tmp/x && xz -dc $C/mu.tar.xz | tar xf - -C /tmp/x; chmod +x /tmp/x/*/*
G=/tmp/x/mu/graphrun
mkdir -p /tmp/gr; $G synth --preset 7b -o /tmp/gr/7b.gguf 2>&1 | tail -1
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(40)]))")
for k in 'matvec_q4_k_q8_add' 'matvec_q4_k_q8_swiglu' 'matvec_q6_k_q8_add' 'qkv_q4_k_q6_k_q8_f16'; do
  timeout 150 $NCU --target-processes all -k regex:"^$k\$" --launch-skip 30 --launch-count 3 \
    --section SpeedOfLight --section MemoryWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables --section WarpStateStats \
    --section LaunchStats --section Occupancy --import-source no -o /tmp/rep_$k $G run /tmp/gr/7b.gguf -p "$P" -n 40 > $O/ncu_run_$k.log 2>&1
  echo "$k: ncu exit $?"
  $NCU --import /tmp/rep_$k.ncu-rep --page details > $O/details_$k.txt 2>&1
  $NCU --import /tmp/rep_$k.ncu-rep --page raw --csv > $O/raw_$k.csv 2>&1
  grep -E "Grid Size|Duration|DRAM Throughput|L1/TEX Cache Throughput|L2 Cache Throughput|Memory Throughput|Issue Slots|Warp Cycles Per Issued|Achieved Occupancy" $O/details_$k.txt | head -30
  pack
done
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
